//lint:file-ignore SA1019 the v1 dashboard model is the one file provisioning loads (see dashboards.go)

package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/text"

	"github.com/tapproof/tapproof"
)

// Periods are the choices of the compliance dashboard's period variable,
// as InfluxQL durations: about a quarter, six months (the standard lead
// monitoring period) and a year. The first is the default.
var Periods = []string{"182d", "91d", "365d"}

// labLead restricts a query to the certified lab lead samples of the
// selected utility. It ignores the site selection on purpose: a system's
// 90th percentile is over all of its compliance samples.
var labLead = fmt.Sprintf(`%s AND {analyte} = %s AND {method} = %s`, inUtility, lit(tapproof.Lead), lit(tapproof.Lab))

// compliance is the compliance dashboard: certified lab samples and the
// 90th percentile of each monitoring period against the action level.
func compliance(cfg Config) *dashboard.DashboardBuilder {
	rule := cfg.LeadRule
	level := formatLevel(rule.Level)
	lab := labLead
	d := dashboard.NewDashboardBuilder("tapproof · Compliance").
		Uid(UIDCompliance).
		Description("Certified lab lead samples and the 90th percentile of each monitoring period against the action level (40 CFR 141.80(c)).").
		Tags([]string{Tag}).
		Time("now-1y", "now").
		Timezone("utc").
		WithVariable(utilityVariable()).
		WithVariable(siteVariable(inUtility)).
		WithVariable(dashboard.NewIntervalVariableBuilder("period").
			Label("Period").
			Description("Length of the monitoring period the 90th percentile is computed over. Periods start at multiples of the length since 1970-01-01 UTC; " +
				"for an exact period, set the time range to it and read the time-range panels.").
			Values(dashboard.StringOrMap{String: cog.ToPtr(strings.Join(Periods, ","))}).
			Current(dashboard.VariableOption{
				Selected: cog.ToPtr(true),
				Text:     dashboard.StringOrArrayOfString{String: cog.ToPtr(Periods[0])},
				Value:    dashboard.StringOrArrayOfString{String: cog.ToPtr(Periods[0])},
			})).
		Link(dashboardLinks())

	d.WithRow(dashboard.NewRowBuilder(fmt.Sprintf("90th percentile against the action level (%s ppb)", level)))
	d.WithPanel(newStat().
		Title("90th percentile of the time range").
		Description("90th percentile of every lab lead sample of the utility in the time range, all sites. " + ruleText(rule) + " " + percentileNote).
		WithTarget(NewInfluxQL(influxQL(`SELECT percentile({value}, 90) AS "p90" FROM {reading} WHERE %s AND $timeFilter`, lab))).
		Unit(unitOf(tapproof.Lead)).
		Decimals(1).
		Thresholds(levelThresholds(rule)).
		ColorMode(common.BigValueColorModeBackground).
		Span(6).Height(6))
	d.WithPanel(newStat().
		Title("Samples in the time range").
		Description("Number of lab lead samples the 90th percentile is computed from. With 5 samples the rule averages the two highest; with fewer it takes the highest.").
		WithTarget(NewInfluxQL(influxQL(`SELECT count({value}) AS "samples" FROM {reading} WHERE %s AND $timeFilter`, lab))).
		Unit("short").
		Decimals(0).
		Span(6).Height(6))
	d.WithPanel(text.NewPanelBuilder().
		Title("How to read the 90th percentile").
		Mode(text.TextModeMarkdown).
		Content(percentileHelp(rule)).
		Span(12).Height(6))
	d.WithPanel(newTimeSeries().
		Title("90th percentile per period").
		Description("90th percentile of the lab lead samples of each period ($period), all sites. " + ruleText(rule) + " " + percentileNote).
		WithTarget(NewInfluxQL(influxQL(`SELECT percentile({value}, 90) AS "p90" FROM {reading} WHERE %s AND $timeFilter GROUP BY time($period) fill(none)`, lab)).Alias("90th percentile")).
		Unit(unitOf(tapproof.Lead)).
		Min(0).
		Thresholds(levelThresholds(rule)).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashedAndArea)).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(60).
		Span(16).Height(9))
	d.WithPanel(newTimeSeries().
		Title("Samples per period").
		Description("Number of lab lead samples in each period ($period), all sites.").
		WithTarget(NewInfluxQL(influxQL(`SELECT count({value}) AS "samples" FROM {reading} WHERE %s AND $timeFilter GROUP BY time($period) fill(none)`, lab)).Alias("samples")).
		Unit("short").
		Decimals(0).
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(60).
		Span(8).Height(9))

	d.WithRow(dashboard.NewRowBuilder("Samples"))
	d.WithPanel(newTable().
		Title(fmt.Sprintf("Lab samples above the action level (%s ppb)", level)).
		Description("Individual certified lab lead samples strictly above the action level at the selected sites: each requires a consumer notice and is never suppressed. " + ruleText(rule)).
		WithTarget(NewInfluxQL(influxQL(`SELECT {value} AS "lead", {site}, {device} FROM {reading} WHERE %s AND `+inSites+` AND {value} > %s AND $timeFilter`, lab, level)).Table()).
		Unit(unitOf(tapproof.Lead)).
		Thresholds(levelThresholds(rule)).
		CellOptions(common.TableCellOptions{TableColorTextCellOptions: &common.TableColorTextCellOptions{Type: "color-text"}}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName("Time").Desc(true)}).
		Span(12).Height(10))
	d.WithPanel(newTable().
		Title("All lab samples").
		Description("Every certified lab lead sample at the selected sites in the time range, newest first.").
		WithTarget(NewInfluxQL(influxQL(`SELECT {value} AS "lead", {site}, {device} FROM {reading} WHERE %s AND `+inSites+` AND $timeFilter`, lab)).Table()).
		Unit(unitOf(tapproof.Lead)).
		Thresholds(levelThresholds(rule)).
		CellOptions(common.TableCellOptions{TableColorTextCellOptions: &common.TableColorTextCellOptions{Type: "color-text"}}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName("Time").Desc(true)}).
		Span(12).Height(10))

	d.WithRow(dashboard.NewRowBuilder("Exclusions"))
	d.WithPanel(text.NewPanelBuilder().
		Title("Excluded samples").
		Mode(text.TextModeMarkdown).
		Content(exclusionsNote).
		Span(24).Height(5))
	return d
}

// percentileNote says how InfluxQL's percentile relates to the rule.
const percentileNote = "InfluxQL's percentile is the nearest-rank value (rank n × 0.9 rounded half up); " +
	"the official result is the one tapproof computes with the rounding rule configured for the state."

// percentileHelp explains the 90th percentile panels.
func percentileHelp(rule tapproof.Rule) string {
	return fmt.Sprintf(`An **action level exceedance** is a period whose 90th percentile of compliance tap samples is
**strictly above %s ppb** (rule %s; exactly %s ppb is not an exceedance).

These panels use InfluxQL's `+"`PERCENTILE(\"value\", 90)`"+`: sort the n samples, take rank n × 0.9 rounded half up.
That matches the rule for n < 5 and for whole ranks; with n = 5 the rule averages the two highest samples,
and states differ on fractional ranks. The official 90th percentile, with the state's rounding rule and
exclusions, is the one tapproof computes and logs.`, formatLevel(rule.Level), rule.Name(), formatLevel(rule.Level))
}

// exclusionsNote is the exclusions placeholder.
const exclusionsNote = `Samples are never deleted. A state-approved invalidation is a signed, reasoned entry appended to
the utility's log, and anyone holding a checkpoint can check that the sample and its exclusion are both there.

Exclusions are not exported to InfluxDB yet, so the panels above count **every** logged lab sample:
until they are, subtract approved exclusions from the 90th percentile by hand and keep the log entries as the record.`
