package dashboards_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promql "github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/dashboards"
	"github.com/tapproof/tapproof/monitor"
	"github.com/tapproof/tapproof/witness"
)

// exported is every metric tapproof exports, with its labels and, for
// labels with a fixed set of values, those values (nil: any value). It is
// the one list the dashboards and alerting rules are checked against; keep
// it in step with the code that registers the metrics:
//
//	ingest/metrics.go         tapproof_ingest_*
//	alerts/metrics.go         tapproof_alerts_raised_total, tapproof_screening_events_total
//	alerts/webhook/metrics.go tapproof_webhook_deliveries_total
//	alerts/residents/metrics.go tapproof_notice_deliveries_total
//	platform/sinks.go         tapproof_sink_*, tapproof_journal_pending_entries,
//	                          tapproof_ingest_pending_messages, tapproof_log_size_leaves,
//	                          tapproof_checkpoint_timestamp_seconds, tapproof_publish_to_proof_seconds,
//	                          tapproof_oldest_unanchored_seconds, tapproof_journal_set_aside_total,
//	                          tapproof_log_leaves_read_total, tapproof_log_leader
//	platform/stall.go         tapproof_consumer_stalled_seconds
//	platform/witnessing.go    tapproof_witness_*, tapproof_witnessed_*
//	platform/audit.go         tapproof_audit_*
//	monitor/metrics.go        tapproof_monitor_* (tapproof monitor)
//	alerts/metrics.go         tapproof_alerts_invalid_total
//	broker/authorizer.go      tapproof_broker_connections_total
//	ingest/metrics.go         tapproof_ingest_lane_readings_total (the alert lane)
//
// Histograms are listed by their base name; their _bucket, _sum and _count
// series are allowed, with the label le on _bucket.
var exported = map[string]map[string][]string{
	"tapproof_ingest_accepted_total":                  {"analyte": nil, "kind": nil},
	"tapproof_ingest_rejected_total":                  {"reason": reasons()},
	"tapproof_ingest_retries_total":                   {},
	"tapproof_ingest_decision_seconds":                {},
	"tapproof_sink_entries_total":                     {"sink": {"anchor", "influx", "exceedance"}},
	"tapproof_sink_errors_total":                      {"sink": {"anchor", "influx", "exceedance", "checkpoint", "witness"}},
	"tapproof_alerts_raised_total":                    {"class": {string(tapproof.Screening), string(tapproof.IndividualCompliance), string(tapproof.SystemExceedance), string(tapproof.SystemUndetermined)}},
	"tapproof_webhook_deliveries_total":               {"result": {"delivered", "retried", "failed"}},
	"tapproof_screening_events_total":                 {"event": {"pending", "fired", "updated", "suppressed", "recovering", "cleared", "abandoned", "flapping"}},
	"tapproof_notice_deliveries_total":                {"channel": {"email", "webhook"}, "result": {"delivered", "retried", "failed"}},
	"tapproof_journal_pending_entries":                {"log": nil, "sink": {"anchor", "influx", "exceedance"}},
	"tapproof_ingest_pending_messages":                {},
	"tapproof_log_size_leaves":                        {"log": nil},
	"tapproof_checkpoint_timestamp_seconds":           {"log": nil},
	"tapproof_publish_to_proof_seconds":               {},
	"tapproof_oldest_unanchored_seconds":              {"log": nil},
	"tapproof_leader":                                 {},
	"tapproof_witness_submissions_total":              {"log": nil, "witness": nil, "result": {witness.ResultCosigned, witness.ResultConflict, witness.ResultAhead, witness.ResultRefused, witness.ResultFailed}},
	"tapproof_witness_policy_unmet_total":             {"log": nil},
	"tapproof_witnessed_log_size_leaves":              {"log": nil},
	"tapproof_witnessed_checkpoint_timestamp_seconds": {"log": nil},
	"tapproof_audit_runs_total":                       {"log": nil, "result": {"done", "deferred", "failed"}},
	"tapproof_audit_findings":                         {"log": nil, "kind": {string(audit.Missing), string(audit.Changed), string(audit.WithoutLeaf)}},
	"tapproof_audit_timestamp_seconds":                {"log": nil},
	"tapproof_audit_log_size_leaves":                  {"log": nil},
	// tapproof monitor's own /metrics, on a regulator's machine.
	"tapproof_monitor_findings_total":                 {"log": nil, "kind": monitorKinds()},
	"tapproof_monitor_verified_size_leaves":           {"log": nil},
	"tapproof_monitor_leaves_checked_total":           {"log": nil},
	"tapproof_monitor_leaves_unchecked_total":         {"log": nil},
	"tapproof_monitor_set_aside_leaves_total":         {"log": nil},
	"tapproof_monitor_last_success_timestamp_seconds": {"log": nil},
	"tapproof_monitor_poll_errors_total":              {"log": nil},
	"tapproof_monitor_webhook_deliveries_total":       {"result": {"delivered", "retried", "failed"}},
	"tapproof_consumer_stalled_seconds":               {"log": nil, "consumer": {"ingest", "anchor", "influx", "exceedance"}},
	"tapproof_checkpoint_refused_total":               {"log": nil, "reason": {"inconsistent", "foreign_leaf"}},
	"tapproof_subscription_refusals_total":            {"reason": nil},
	"tapproof_subscriptions_expired_total":            {},
	"tapproof_public_rate_limited_total":              {"limit": {"read", "subscribe"}},
	"tapproof_registry_foreign_changes_total":         {},
	"tapproof_journal_set_aside_total":                {"sink": {"anchor", "influx", "exceedance"}, "reason": {tapproof.SetAsideUnsealed, tapproof.SetAsideUndecodable}},
	"tapproof_log_leaves_read_total":                  {"source": {"journal", "trillian"}},
	"tapproof_log_leader":                             {"log": nil},
	"tapproof_alerts_invalid_total":                   {"reason": {"undecodable", "invalid"}},
	"tapproof_ingest_lane_readings_total":             {"result": {"checked", "skipped", "dropped"}},
	"tapproof_broker_connections_total":               {"result": {"allowed", "refused"}, "kind": {"", "device", "lab", "reviewer"}, "reason": {"", "malformed", "no_key", "bad_signature", "unknown_key", "revoked"}},
}

// histograms are the metrics of exported that are histograms.
var histograms = []string{"tapproof_ingest_decision_seconds", "tapproof_publish_to_proof_seconds"}

// collectorPrefixes are the metrics of the Go and process collectors
// tapproof registers; up is the series Prometheus records for every scrape.
var (
	collectorPrefixes = []string{"go_", "process_"}
	scrapeSeries      = []string{"up"}
)

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"job", "instance"}

func reasons() []string {
	var out []string
	for _, r := range tapproof.Reasons {
		out = append(out, string(r))
	}
	return out
}

// promValues are what Grafana substitutes in PromQL.
var promValues = map[string]string{
	"$__rate_interval": "1m",
	"$__interval":      "30s",
	"$__range":         "1h",
	"$utility":         "springfield",
}

// labelValues matches a Grafana Prometheus variable query.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// TestPromQLInDashboards parses every PromQL expression of every dashboard
// and checks that it names only metrics and labels tapproof exports.
func TestPromQLInDashboards(t *testing.T) {
	qs := on(queries(t, dashboardsFor(t, fixedConfig(t))), dashboards.DatasourcePrometheus)
	if len(qs) < 15 {
		t.Fatalf("found %d PromQL queries, want at least 15", len(qs))
	}
	for _, q := range qs {
		text := substitute(t, q.ID, q.Text, promValues)
		if m := labelValues.FindStringSubmatch(text); m != nil {
			checkExpr(t, q.ID, m[1])
			checkLabel(t, q.ID, m[1], m[2])
			continue
		}
		checkExpr(t, q.ID, text)
	}
}

// TestPromQLInRules does the same for the alerting rules and the series of
// their unit tests.
func TestPromQLInRules(t *testing.T) {
	dir := filepath.Join("..", "deploy", "prometheus")
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(dir, "alerts.yml"), &rules)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			checkExpr(t, g.Name+"/"+r.Alert+r.Record, r.Expr)
		}
	}
	if n == 0 {
		t.Fatal("no rules in alerts.yml")
	}

	var tests struct {
		Tests []struct {
			Name        string `yaml:"name"`
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(dir, "alerts_test.yml"), &tests)
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			lset, err := promql.ParseMetric(s.Series)
			if err != nil {
				t.Errorf("alerts_test.yml %q: series %s: %v", tc.Name, s.Series, err)
				continue
			}
			checkSeries(t, "alerts_test.yml "+tc.Name, lset)
		}
	}
}

// TestExportedListIsComplete is a guard against the list above drifting
// from the code: every tapproof_ metric name registered in the code appears
// in exported. A metric listed but not found in the code is only logged:
// metrics are added to the list before their code lands.
func TestExportedListIsComplete(t *testing.T) {
	re := regexp.MustCompile(`"(tapproof_[a-z_]+)"`)
	inCode := map[string]bool{}
	// Every package of the module that may register a metric: all but
	// this one, the test harnesses, the tools and the deployment files.
	skip := map[string]bool{".git": true, "dashboards": true, "internal": true, "bench": true, "deploy": true, "testdata": true, "node_modules": true}
	err := filepath.WalkDir("..", func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skip[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(f, ".go") || strings.HasSuffix(f, "_test.go") {
			return nil
		}
		for _, name := range namesIn(t, f, re) {
			if _, ok := exported[name]; ok {
				inCode[name] = true
			}
			if !isMetricName(name) {
				continue
			}
			if _, ok := exported[name]; !ok {
				t.Errorf("%s registers %s, which the exported list in dashboards/promql_test.go lacks: add it there (and to a dashboard or rule if operators need it)", f, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range exported {
		if !inCode[name] {
			t.Errorf("%s is in the exported list but no package registers it: remove it, or the dashboards and rules check a metric that does not exist", name)
		}
	}
}

// isMetricName tells metric names from other tapproof_ strings (NATS
// key-value buckets such as tapproof_devices).
func isMetricName(s string) bool {
	for _, suffix := range []string{"_total", "_seconds", "_leaves", "_entries", "_messages", "_bytes"} {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// namesIn returns the string literals of f matching re's first group.
func namesIn(t *testing.T, f string, re *regexp.Regexp) []string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// checkExpr parses expr and checks every series selector in it.
func checkExpr(t *testing.T, id, expr string) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", id, expr, err)
		return
	}
	selectors := 0
	promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
		vs, ok := n.(*promql.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		checkSelector(t, id, vs)
		return nil
	})
	if selectors == 0 {
		t.Errorf("%s: %q selects no series", id, expr)
	}
}

// checkSelector checks a selector's metric name, label names and, for
// labels with a fixed set of values, the values it matches.
func checkSelector(t *testing.T, id string, vs *promql.VectorSelector) {
	t.Helper()
	name := vs.Name
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	known, ok := metricLabels(name)
	if !ok {
		t.Errorf("%s: %s is not a metric tapproof exports", id, name)
		return
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel || slices.Contains(targetLabels, m.Name) {
			continue
		}
		values, ok := known[m.Name]
		if !ok {
			t.Errorf("%s: %s has no label %s", id, name, m.Name)
			continue
		}
		if values == nil {
			continue
		}
		for _, v := range alternatives(m) {
			if !slices.Contains(values, v) {
				t.Errorf("%s: %s{%s} matches %q, which is not one of %v", id, name, m.Name, v, values)
			}
		}
	}
}

// checkSeries checks a series of a rule unit test like a selector.
func checkSeries(t *testing.T, id string, lset labels.Labels) {
	t.Helper()
	var ms []*labels.Matcher
	lset.Range(func(l labels.Label) {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	})
	checkSelector(t, id, &promql.VectorSelector{Name: lset.Get(model.MetricNameLabel), LabelMatchers: ms})
}

// checkLabel checks that the metric of selector has label.
func checkLabel(t *testing.T, id, selector, label string) {
	t.Helper()
	e, err := promql.ParseExpr(selector)
	if err != nil {
		t.Errorf("%s: %v", id, err)
		return
	}
	vs, ok := e.(*promql.VectorSelector)
	if !ok {
		t.Errorf("%s: label_values of %q, want a series selector", id, selector)
		return
	}
	known, ok := metricLabels(vs.Name)
	if !ok {
		return // reported by checkExpr
	}
	if _, ok := known[label]; !ok && !slices.Contains(targetLabels, label) {
		t.Errorf("%s: %s has no label %s", id, vs.Name, label)
	}
}

// metricLabels returns the labels of a series name tapproof exports, or
// false.
func metricLabels(name string) (map[string][]string, bool) {
	if l, ok := exported[name]; ok {
		return l, true
	}
	for _, h := range histograms {
		switch name {
		case h + "_bucket":
			l := map[string][]string{"le": nil}
			for k, v := range exported[h] {
				l[k] = v
			}
			return l, true
		case h + "_sum", h + "_count":
			return exported[h], true
		}
	}
	if slices.Contains(scrapeSeries, name) {
		return map[string][]string{}, true
	}
	for _, p := range collectorPrefixes {
		if strings.HasPrefix(name, p) {
			return nil, true // any label: the collectors own theirs
		}
	}
	return nil, false
}

// alternatives returns the values a matcher can match: its value for = and
// !=, the branches of a|b|c for =~ and !~ (a regular expression of any
// other form is returned whole).
func alternatives(m *labels.Matcher) []string {
	switch m.Type {
	case labels.MatchRegexp, labels.MatchNotRegexp:
		if regexp.QuoteMeta(strings.ReplaceAll(m.Value, "|", "")) == strings.ReplaceAll(m.Value, "|", "") {
			return strings.Split(m.Value, "|")
		}
		return []string{m.Value}
	}
	return []string{m.Value}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func monitorKinds() []string {
	var out []string
	for _, k := range monitor.Kinds {
		out = append(out, string(k))
	}
	return out
}
