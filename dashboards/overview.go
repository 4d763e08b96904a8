//lint:file-ignore SA1019 the v1 dashboard model is the one file provisioning loads (see dashboards.go)

package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/influx"
)

// Surrogates are the NIRS channels the overview charts, in panel order.
// Dissolved lead has no near-infrared signature; these channels are what a
// NIRS calibration model estimates instead.
var Surrogates = []tapproof.Analyte{tapproof.Turbidity, tapproof.TOC, tapproof.Iron}

// overview is the water quality overview: what a utility's operators look
// at first.
func overview(cfg Config) *dashboard.DashboardBuilder {
	rule := cfg.LeadRule
	level := formatLevel(rule.Level)
	d := dashboard.NewDashboardBuilder("tapproof · Water quality overview").
		Uid(UIDOverview).
		Description("Lead by site against the action level in force, NIRS surrogate channels and alerts raised.").
		Tags([]string{Tag}).
		Time("now-7d", "now").
		Refresh("1m").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(utilityVariable()).
		WithVariable(siteVariable(inUtility)).
		Link(dashboardLinks())

	d.WithRow(dashboard.NewRowBuilder("Lead (µg/L = ppb)"))
	d.WithPanel(newTimeSeries().
		Title(fmt.Sprintf("Lead by site, sensors (action level %s ppb)", level)).
		Description("Highest screening-sensor lead reading per site and interval (ASV, fluorescence; lab samples are on the compliance dashboard). " + ruleText(rule) +
			" Sensors screen; compliance is decided on certified lab samples.").
		// The residents' page plots the same peaks (influx.Reader.History).
		WithTarget(NewInfluxQL(influxQL("%s", influx.PeakQuery(readingScope, tapproof.Lead))).Alias("$tag_site")).
		Unit(unitOf(tapproof.Lead)).
		Min(0).
		Thresholds(levelThresholds(rule)).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashedAndArea)).
		ShowPoints(common.VisibilityModeAuto).
		Span(16).Height(10))
	d.WithPanel(newBarGauge().
		Title("Latest lead by site, sensors").
		Description("The latest screening-sensor lead reading of each site in the time range. " + ruleText(rule)).
		WithTarget(NewInfluxQL(influxQL(
			`SELECT last({value}) FROM {reading} WHERE `+readingScope+` AND {analyte} = %s AND {method} != %s AND $timeFilter GROUP BY {site}`,
			lit(tapproof.Lead), lit(tapproof.Lab))).Alias("$tag_site")).
		Unit(unitOf(tapproof.Lead)).
		Min(0).
		Thresholds(levelThresholds(rule)).
		Span(8).Height(10))

	d.WithRow(dashboard.NewRowBuilder("NIRS surrogate channels"))
	for _, a := range Surrogates {
		d.WithPanel(newTimeSeries().
			Title(fmt.Sprintf("%s (NIRS) by site and model", surrogateTitle(a))).
			Description("Mean NIRS estimate per site, interval and calibration model. NIRS cannot see dissolved lead; " +
				"this channel is a surrogate, and a change of model (a new series) can shift it.").
			WithTarget(NewInfluxQL(influxQL(
				`SELECT mean({value}) FROM {reading} WHERE `+readingScope+` AND {method} = %s AND {analyte} = %s AND $timeFilter GROUP BY time($__interval), {site}, {model} fill(none)`,
				lit(tapproof.NIRS), lit(a))).Alias("$tag_site · $tag_model")).
			Unit(unitOf(a)).
			Min(0).
			Span(8).Height(8))
	}

	d.WithRow(dashboard.NewRowBuilder("Alerts"))
	d.WithPanel(newStat().
		Title("Alerts raised in the time range").
		Description("Alerts stored for the first time, by class (screening, individual compliance sample, system exceedance), all utilities. " +
			"Open alerts with their details: GET /v1/alerts on the tapproof API.").
		WithTarget(promQuery("A", `sum by (class) (increase(tapproof_alerts_raised_total[$__range]))`, "{{class}}").Instant()).
		Unit("short").
		Decimals(0).
		Thresholds(dashboard.NewThresholdsConfigBuilder().
			Mode(dashboard.ThresholdsModeAbsolute).
			Steps([]dashboard.Threshold{{Value: nil, Color: "green"}, {Value: cog.ToPtr(1.0), Color: "red"}})).
		ColorMode(common.BigValueColorModeBackground).
		Span(8).Height(8))
	d.WithPanel(newTimeSeries().
		Title("Alerts raised per hour").
		Description("Rate of new alerts by class, per hour.").
		WithTarget(promQuery("A", `sum by (class) (rate(tapproof_alerts_raised_total[$__rate_interval])) * 3600`, "{{class}}")).
		Unit("short").
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		Span(16).Height(8))
	return d
}

// surrogateTitle names a surrogate channel in a panel title.
func surrogateTitle(a tapproof.Analyte) string {
	switch a {
	case tapproof.Turbidity:
		return "Turbidity"
	case tapproof.TOC:
		return "Total organic carbon"
	case tapproof.Iron:
		return "Iron"
	}
	return string(a)
}

// dashboardLinks links every tapproof dashboard to the others, keeping the
// time range and variables.
func dashboardLinks() *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder("tapproof").
		Type(dashboard.DashboardLinkTypeDashboards).
		Tags([]string{Tag}).
		AsDropdown(true).
		KeepTime(true).
		IncludeVars(true)
}
