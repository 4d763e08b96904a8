package dashboards_test

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/tapproof/tapproof/dashboards"
)

// query is one query of a generated dashboard: a panel target or a
// template variable's query.
type query struct {
	// ID names the query: "<dashboard>/<panel title>/<refId>" for a target,
	// "<dashboard>/$<variable>" for a variable.
	ID string
	// Datasource is the data source UID the query runs on.
	Datasource string
	// Text is the InfluxQL or PromQL text (for a Prometheus variable, the
	// label_values(...) call).
	Text string
}

// queries returns every query of ds: the targets of every panel (rows
// included) and the queries of every query variable. It fails the test on
// a target type it does not know.
func queries(t *testing.T, ds []dashboards.Dashboard) []query {
	t.Helper()
	var out []query
	for _, d := range ds {
		for _, v := range d.Dashboard.Templating.List {
			if v.Type != dashboard.VariableTypeQuery {
				continue
			}
			if v.Query == nil || v.Query.String == nil || v.Datasource == nil || v.Datasource.Uid == nil {
				t.Fatalf("%s: variable %s has no query or data source", d.Name, v.Name)
			}
			out = append(out, query{ID: d.Name + "/$" + v.Name, Datasource: *v.Datasource.Uid, Text: *v.Query.String})
		}
		var panels []dashboard.Panel
		for _, p := range d.Dashboard.Panels {
			switch {
			case p.Panel != nil:
				panels = append(panels, *p.Panel)
			case p.RowPanel != nil:
				panels = append(panels, p.RowPanel.Panels...)
			}
		}
		for _, p := range panels {
			title := "(untitled)"
			if p.Title != nil {
				title = *p.Title
			}
			for _, target := range p.Targets {
				q, err := toQuery(target)
				if err != nil {
					t.Fatalf("%s/%s: %v", d.Name, title, err)
				}
				q.ID = fmt.Sprintf("%s/%s/%s", d.Name, title, q.ID)
				out = append(out, q)
			}
		}
	}
	return out
}

// toQuery converts a panel target; its ID is the refId.
func toQuery(target variants.Dataquery) (query, error) {
	switch q := target.(type) {
	case dashboards.InfluxQLQuery:
		if q.Datasource == nil || q.Datasource.Uid == nil {
			return query{}, fmt.Errorf("target %s has no data source", q.RefId)
		}
		return query{ID: q.RefId, Datasource: *q.Datasource.Uid, Text: q.Query}, nil
	case prometheus.Dataquery:
		if q.Datasource == nil || q.Datasource.Uid == nil || q.RefId == nil {
			return query{}, fmt.Errorf("prometheus target without data source or refId")
		}
		return query{ID: *q.RefId, Datasource: *q.Datasource.Uid, Text: q.Expr}, nil
	case *prometheus.Dataquery:
		return toQuery(*q)
	case *dashboards.InfluxQLQuery:
		return toQuery(*q)
	}
	return query{}, fmt.Errorf("target of unexpected type %T", target)
}

// on returns the queries of qs that run on the data source uid.
func on(qs []query, uid string) []query {
	var out []query
	for _, q := range qs {
		if q.Datasource == uid {
			out = append(out, q)
		}
	}
	return out
}

// substitute replaces Grafana's macros and template variables in text with
// concrete values, as Grafana would before sending the query, and fails the
// test if a variable is left.
func substitute(t *testing.T, id, text string, values map[string]string) string {
	t.Helper()
	// Longest names first, so that $__rate_interval is not taken for
	// $__rate followed by _interval.
	names := slices.SortedFunc(maps.Keys(values), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(values))
	for _, k := range names {
		pairs = append(pairs, k, values[k])
	}
	out := strings.NewReplacer(pairs...).Replace(text)
	// A "$" may remain as a regular expression's end anchor, "$/" or "$)".
	for i := strings.IndexByte(out, '$'); i >= 0; i = indexFrom(out, '$', i+1) {
		if i+1 < len(out) && (out[i+1] == '_' || out[i+1] >= 'a' && out[i+1] <= 'z' || out[i+1] >= 'A' && out[i+1] <= 'Z') {
			t.Fatalf("%s: unsubstituted variable in %q", id, out)
		}
	}
	return out
}

func indexFrom(s string, c byte, from int) int {
	if from >= len(s) {
		return -1
	}
	i := strings.IndexByte(s[from:], c)
	if i < 0 {
		return -1
	}
	return from + i
}
