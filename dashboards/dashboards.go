// The v1 dashboard JSON model is what Grafana's file provisioning loads in
// every Grafana version tapproof supports; the SDK deprecates it in favour of
// dashboardv2, which only Grafana 12 behind a feature flag reads.
//lint:file-ignore SA1019 the v1 dashboard model is the one file provisioning loads

package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/influx"
)

// Data source UIDs. They must match
// deploy/grafana/provisioning/datasources/tapproof.yaml, which provisions
// the data sources under these UIDs.
const (
	DatasourceInfluxDB   = "tapproof-influxdb"
	DatasourcePrometheus = "tapproof-prometheus"
)

// PrometheusPluginID is the plugin id of Grafana's Prometheus data source.
const PrometheusPluginID = "prometheus"

// Dashboard UIDs, stable so that links and bookmarks survive regeneration.
const (
	UIDOverview   = "tapproof-overview"
	UIDCompliance = "tapproof-compliance"
	UIDOperations = "tapproof-operations"
)

// Tag is the Grafana tag every tapproof dashboard carries.
const Tag = "tapproof"

// Config chooses what the generated dashboards show.
type Config struct {
	// LeadRule is the lead action level the dashboards draw and compare
	// with. A dashboard shows one rule; a deployment whose utilities fall
	// under different rules generates one set per jurisdiction.
	LeadRule tapproof.Rule
}

// DefaultConfig returns the configuration for jurisdiction j at time at:
// the strictest lead rule of tapproof.DefaultRules in force there and then
// (15 ppb federally until 31 Oct 2027, 10 ppb from 1 Nov 2027; 12 ppb in
// Michigan from 2025).
func DefaultConfig(j tapproof.Jurisdiction, at time.Time) (Config, error) {
	r, ok := tapproof.RuleFor(tapproof.DefaultRules, tapproof.Lead, j, at)
	if !ok {
		return Config{}, fmt.Errorf("dashboards config: no lead rule for %s at %s", j, at.Format(time.DateOnly))
	}
	return Config{LeadRule: r}, nil
}

// Validate reports whether c can be rendered.
func (c Config) Validate() error {
	if c.LeadRule.Analyte != tapproof.Lead {
		return fmt.Errorf("dashboards config: lead rule %q is for analyte %q", c.LeadRule.Name(), c.LeadRule.Analyte)
	}
	if !(c.LeadRule.Level > 0) {
		return fmt.Errorf("dashboards config: lead rule %q has no positive level", c.LeadRule.Name())
	}
	if u, _ := tapproof.Lead.CanonicalUnit(); c.LeadRule.Unit != u {
		return fmt.Errorf("dashboards config: lead rule %q is in %s, want %s", c.LeadRule.Name(), c.LeadRule.Unit, u)
	}
	return nil
}

// Dashboard is one generated dashboard.
type Dashboard struct {
	// Name is the file name stem under dashboards/json, e.g. "overview".
	Name string
	// Dashboard is the SDK's dashboard model.
	Dashboard dashboard.Dashboard
}

// All returns every tapproof dashboard for cfg, in a fixed order.
func All(cfg Config) ([]Dashboard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	builders := []struct {
		name  string
		build func(Config) *dashboard.DashboardBuilder
	}{
		{"overview", overview},
		{"compliance", compliance},
		{"operations", operations},
	}
	out := make([]Dashboard, 0, len(builders))
	for _, b := range builders {
		d, err := b.build(cfg).Build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.name, err)
		}
		numberPanels(&d)
		out = append(out, Dashboard{Name: b.name, Dashboard: d})
	}
	return out, nil
}

// JSON returns d as Grafana dashboard JSON: indented, with a final newline,
// the form committed under dashboards/json.
func (d Dashboard) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep <, > and & of queries readable
	if err := enc.Encode(d.Dashboard); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.Name, err)
	}
	return buf.Bytes(), nil
}

// FileName is the name of d's JSON file: Name plus ".json".
func (d Dashboard) FileName() string { return d.Name + ".json" }

// Write writes each dashboard's JSON to dir, creating dir if needed, and
// removes other .json files from dir so that a deleted dashboard does not
// linger in Grafana.
func Write(dir string, ds []Dashboard) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write dashboards: %w", err)
	}
	keep := make(map[string]bool, len(ds))
	var errs []error
	for _, d := range ds {
		b, err := d.JSON()
		if err != nil {
			return err
		}
		keep[d.FileName()] = true
		if err := os.WriteFile(filepath.Join(dir, d.FileName()), b, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("write dashboards: %w", err))
		}
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return fmt.Errorf("write dashboards: %w", err)
	}
	for _, f := range old {
		if !keep[filepath.Base(f)] {
			if err := os.Remove(f); err != nil {
				errs = append(errs, fmt.Errorf("write dashboards: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// numberPanels gives every panel a stable id, 1, 2, ... in layout order, so
// that panel links (viewPanel=N) survive regeneration.
func numberPanels(d *dashboard.Dashboard) {
	var id uint32
	for i := range d.Panels {
		id++
		switch p := d.Panels[i]; {
		case p.Panel != nil:
			p.Panel.Id = cog.ToPtr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
			for j := range p.RowPanel.Panels {
				id++
				p.RowPanel.Panels[j].Id = cog.ToPtr(id)
			}
		}
	}
}

// influxRef and promRef are the data sources the dashboards query.
func influxRef() *common.DataSourceRef {
	return &common.DataSourceRef{Type: cog.ToPtr(InfluxDBPluginID), Uid: cog.ToPtr(DatasourceInfluxDB)}
}

func promRef() *common.DataSourceRef {
	return &common.DataSourceRef{Type: cog.ToPtr(PrometheusPluginID), Uid: cog.ToPtr(DatasourcePrometheus)}
}

// schema expands the {placeholders} of InfluxQL text into the quoted
// identifiers of the point schema, which package influx owns.
var schema = strings.NewReplacer(
	"{reading}", ident(influx.Measurement),
	"{utility}", ident(influx.TagUtility),
	"{site}", ident(influx.TagSite),
	"{device}", ident(influx.TagDevice),
	"{analyte}", ident(influx.TagAnalyte),
	"{method}", ident(influx.TagMethod),
	"{model}", ident(influx.TagModel),
	"{value}", ident(influx.FieldValue),
)

// influxQL formats an InfluxQL query and expands its schema placeholders.
// A placeholder left unexpanded is a programming error and panics, which
// the generator and the tests both catch.
func influxQL(format string, args ...any) string {
	q := schema.Replace(fmt.Sprintf(format, args...))
	if i := strings.IndexByte(q, '{'); i >= 0 {
		panic(fmt.Sprintf("dashboards: unknown placeholder in InfluxQL %q", q[i:]))
	}
	return q
}

// ident quotes an InfluxQL identifier.
func ident(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// lit quotes an InfluxQL string literal.
func lit[S ~string](s S) string {
	return `'` + strings.ReplaceAll(string(s), `'`, `\'`) + `'`
}

// Scopes of the InfluxQL queries: the dashboard's utility and sites. The
// utility variable is single-valued on the reading dashboards and
// multi-valued on the operations dashboard; both forms match the tag
// exactly.
const (
	inUtility    = `{utility} = '$utility'`
	inUtilities  = `{utility} =~ /^$utility$/`
	inSites      = `{site} =~ /^$site$/`
	readingScope = inUtility + ` AND ` + inSites
)

// promQuery returns a PromQL target with a legend.
func promQuery(refID, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(*promRef()).
		RefId(refID).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// utilityVariable is the single-valued utility variable of the reading
// dashboards, listing the utilities that have readings in InfluxDB.
func utilityVariable() *dashboard.QueryVariableBuilder {
	q := influxQL(`SHOW TAG VALUES FROM {reading} WITH KEY = {utility}`)
	return dashboard.NewQueryVariableBuilder("utility").
		Label("Utility").
		Description("The water system. Its id is the utility tag of readings and the log label of the log metrics.").
		Datasource(*influxRef()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnDashboardLoad).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// siteVariable lists the sites of the selected utility (or utilities);
// several may be chosen, and All is every site.
func siteVariable(utilityScope string) *dashboard.QueryVariableBuilder {
	q := influxQL(`SHOW TAG VALUES FROM {reading} WITH KEY = {site} WHERE %s`, utilityScope)
	return dashboard.NewQueryVariableBuilder("site").
		Label("Site").
		Description("Sampling points of the utility.").
		Datasource(*influxRef()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true)
}

// levelThresholds colours values above rule's level red. Grafana colours
// a value that meets a step, while an exceedance is strictly greater than
// the level (40 CFR 141.80(c)), so the red step starts at the next float
// above the level: exactly 15 ppb stays green, as the rule says.
func levelThresholds(rule tapproof.Rule) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{
			{Value: nil, Color: "green"},
			{Value: cog.ToPtr(math.Nextafter(rule.Level, math.Inf(1))), Color: "red"},
		})
}

// ruleText describes rule for panel descriptions.
func ruleText(rule tapproof.Rule) string {
	unit := string(rule.Unit)
	if rule.Unit == tapproof.MicrogramsPerLiter {
		unit = "µg/L (ppb)"
	}
	return fmt.Sprintf("Action level %s %s (rule %s, %s; %s). A value strictly above it exceeds it.",
		formatLevel(rule.Level), unit, rule.Name(), rule.Jurisdiction, rule.Source)
}

// formatLevel prints a level without trailing zeros: 15, 1.3.
func formatLevel(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
}

// unitOf is the Grafana unit for an analyte's canonical unit.
func unitOf(a tapproof.Analyte) string {
	u, _ := a.CanonicalUnit()
	switch u {
	case tapproof.MicrogramsPerLiter:
		return "conppb" // µg/L of lead in water is parts per billion
	case tapproof.NTU:
		return "suffix: NTU"
	default:
		return "suffix: " + string(u)
	}
}
