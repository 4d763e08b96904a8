//lint:file-ignore SA1019 the v1 dashboard model is the one file provisioning loads (see dashboards.go)

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// operations is the operations dashboard: is tapproof keeping up, and is
// every reading reaching the log and InfluxDB?
//
// Its utility variable comes from Prometheus (the log label of the log
// metrics), not from InfluxDB, so that the dashboard still works when
// InfluxDB is the thing that is down. It is multi-valued: operators often
// watch every log at once.
func operations(Config) *dashboard.DashboardBuilder {
	logs := `log=~"$utility"`
	d := dashboard.NewDashboardBuilder("tapproof · Operations").
		Uid(UIDOperations).
		Description("Ingest rate, rejections, consumer lag, publish-to-proof latency, log size and checkpoint age, webhook failures and sink errors.").
		Tags([]string{Tag}).
		Time("now-6h", "now").
		Refresh("30s").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewQueryVariableBuilder("utility").
			Label("Utility").
			Description("Logs (one per utility) that tapproof reports metrics for.").
			Datasource(*promRef()).
			Query(dashboard.StringOrMap{String: cog.ToPtr(`label_values(tapproof_log_size_leaves, log)`)}).
			Definition(`label_values(tapproof_log_size_leaves, log)`).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*")).
		WithVariable(siteVariable(inUtilities)).
		Link(dashboardLinks())

	d.WithRow(dashboard.NewRowBuilder("Ingest"))
	d.WithPanel(rate("Readings accepted per second", "Readings verified, validated and appended to their utility's journal, by analyte.",
		promQuery("A", `sum by (analyte) (rate(tapproof_ingest_accepted_total[$__rate_interval]))`, "{{analyte}}")))
	d.WithPanel(rate("Rejections per second by reason", "Messages refused, by reason; each is also published to tapproof.rejected.<reason>. "+
		"bad_signature, equivocation, replayed and firmware_mismatch deserve a look even when rare.",
		promQuery("A", `sum by (reason) (rate(tapproof_ingest_rejected_total[$__rate_interval])) > 0`, "{{reason}}")))
	d.WithPanel(newTimeSeries().
		Title("Consumer lag").
		Description("Readings waiting in JetStream for ingest, and journal entries waiting for each sink (anchor: the Trillian log; influx: InfluxDB). " +
			"Every replica reports the same consumers, hence max over replicas; the sinks' backlog is summed over the selected logs.").
		WithTarget(promQuery("A", `max(tapproof_ingest_pending_messages)`, "ingest")).
		WithTarget(promQuery("B", `sum by (sink) (max by (log, sink) (tapproof_journal_pending_entries{`+logs+`}))`, "{{sink}} sink")).
		Unit("short").
		Min(0).
		Span(8).Height(8))
	d.WithPanel(newTimeSeries().
		Title("Ingest decision latency").
		Description("Time from taking a message to its durable outcome (accepted or rejected).").
		WithTarget(promQuery("A", `histogram_quantile(0.5, sum by (le) (rate(tapproof_ingest_decision_seconds_bucket[$__rate_interval])))`, "p50")).
		WithTarget(promQuery("B", `histogram_quantile(0.99, sum by (le) (rate(tapproof_ingest_decision_seconds_bucket[$__rate_interval])))`, "p99")).
		Unit("s").
		Min(0).
		Span(12).Height(8))
	d.WithPanel(rate("Ingest retries per second", "Transient failures while deciding a reading; the reading is retried, never dropped.",
		promQuery("A", `sum(rate(tapproof_ingest_retries_total[$__rate_interval]))`, "retries")).
		Span(12))

	d.WithRow(dashboard.NewRowBuilder("Log"))
	d.WithPanel(newTimeSeries().
		Title("Publish-to-proof latency").
		Description("From a reading's receipt to the signed checkpoint that covers it: how long before a regulator can get a proof.").
		WithTarget(promQuery("A", `histogram_quantile(0.5, sum by (le) (rate(tapproof_publish_to_proof_seconds_bucket[$__rate_interval])))`, "p50")).
		WithTarget(promQuery("B", `histogram_quantile(0.99, sum by (le) (rate(tapproof_publish_to_proof_seconds_bucket[$__rate_interval])))`, "p99")).
		Unit("s").
		Min(0).
		Span(6).Height(8))
	d.WithPanel(newTimeSeries().
		Title("Log size").
		Description("Leaves in each utility's log.").
		WithTarget(promQuery("A", `max by (log) (tapproof_log_size_leaves{`+logs+`})`, "{{log}}")).
		Unit("short").
		Decimals(0).
		Span(6).Height(8))
	d.WithPanel(newTimeSeries().
		Title("Checkpoint age").
		Description("Time since each log's latest signed checkpoint. A log that receives nothing is not re-signed, so an idle log ages; a busy one must not.").
		WithTarget(promQuery("A", `time() - max by (log) (tapproof_checkpoint_timestamp_seconds{`+logs+`})`, "{{log}}")).
		Unit("s").
		Min(0).
		Thresholds(dashboard.NewThresholdsConfigBuilder().
			Mode(dashboard.ThresholdsModeAbsolute).
			Steps([]dashboard.Threshold{{Value: nil, Color: "green"}, {Value: cog.ToPtr(600.0), Color: "orange"}})).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
		Span(6).Height(8))
	d.WithPanel(newTimeSeries().
		Title("Oldest reading not yet anchored").
		Description("Age of the oldest accepted reading of each log that no signed checkpoint covers yet.").
		WithTarget(promQuery("A", `max by (log) (tapproof_oldest_unanchored_seconds{`+logs+`})`, "{{log}}")).
		Unit("s").
		Min(0).
		Span(6).Height(8))

	d.WithRow(dashboard.NewRowBuilder("Sinks and notifiers"))
	d.WithPanel(rate("Sink entries stored per second", "Journal entries stored by each sink.",
		promQuery("A", `sum by (sink) (rate(tapproof_sink_entries_total[$__rate_interval]))`, "{{sink}}")))
	d.WithPanel(rate("Sink errors per second", "Failed sink attempts (anchor: Trillian; influx: InfluxDB; checkpoint: signing or storing checkpoints), retried, never dropped; exceedance: monitoring periods whose 90th percentile could not be computed.",
		promQuery("A", `sum by (sink) (rate(tapproof_sink_errors_total[$__rate_interval]))`, "{{sink}}")))
	d.WithPanel(rate("Webhook deliveries per second", "Webhook delivery attempts by result. failed is final: the receiver never got the alert.",
		promQuery("A", `sum by (result) (rate(tapproof_webhook_deliveries_total[$__rate_interval]))`, "{{result}}")))

	d.WithRow(dashboard.NewRowBuilder("Readings in InfluxDB"))
	d.WithPanel(newTimeSeries().
		Title("Readings stored per site").
		Description("Readings stored in InfluxDB per site and interval. A site that falls silent shows as a gap.").
		WithTarget(NewInfluxQL(influxQL(`SELECT count({value}) FROM {reading} WHERE ` + inUtilities + ` AND ` + inSites + ` AND $timeFilter GROUP BY time($__interval), {site} fill(none)`)).Alias("$tag_site")).
		Unit("short").
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		Span(12).Height(8))
	d.WithPanel(newTable().
		Title("Latest reading per device").
		Description("Each device's latest stored reading per analyte in the time range; the time column shows devices that stopped reporting.").
		WithTarget(NewInfluxQL(influxQL(`SELECT last({value}) AS "value" FROM {reading} WHERE ` + inUtilities + ` AND ` + inSites + ` AND $timeFilter GROUP BY {site}, {device}, {analyte}`)).Table()).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName("Time").Desc(false)}).
		Span(12).Height(8))

	d.WithRow(dashboard.NewRowBuilder("Process"))
	d.WithPanel(newTimeSeries().
		Title("Resident memory").
		WithTarget(promQuery("A", `process_resident_memory_bytes{job="tapproof"}`, "{{instance}}")).
		Unit("bytes").
		Min(0).
		Span(12).Height(7))
	d.WithPanel(newTimeSeries().
		Title("Goroutines").
		WithTarget(promQuery("A", `go_goroutines{job="tapproof"}`, "{{instance}}")).
		Unit("short").
		Min(0).
		Span(12).Height(7))
	return d
}

// rate is a time series panel of per-second rates.
func rate(title, description string, q cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	return newTimeSeries().
		Title(title).
		Description(description).
		WithTarget(q).
		Unit("cps").
		Min(0).
		Span(8).Height(8)
}
