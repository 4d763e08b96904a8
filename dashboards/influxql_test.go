package dashboards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/dashboards"
	"github.com/tapproof/tapproof/influx"
	"github.com/tapproof/tapproof/internal/localstack"
)

// t0 is the start of the seeded day. It is a multiple of the 6-hour
// $__interval and lies inside one 182-day $period bucket.
var t0 = time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)

// seed is the data every InfluxQL query runs against: one day of the
// utility springfield (sites site-a and site-b), plus readings that the
// queries must leave out: another utility and a reading before the range.
func seed() []tapproof.Accepted {
	type r struct {
		utility, site, device string
		method                tapproof.Method
		analyte               tapproof.Analyte
		model                 string
		hour                  int
		value                 float64
	}
	rows := []r{
		// Screening sensors.
		{"springfield", "site-a", "asv-a", tapproof.ASV, tapproof.Lead, "", 1, 3},
		{"springfield", "site-a", "asv-a", tapproof.ASV, tapproof.Lead, "", 2, 20},
		{"springfield", "site-a", "asv-a", tapproof.ASV, tapproof.Lead, "", 7, 4},
		{"springfield", "site-b", "flu-b", tapproof.Fluorescence, tapproof.Lead, "", 1, 5},
		{"springfield", "site-b", "flu-b", tapproof.Fluorescence, tapproof.Lead, "", 13, 15},
		// NIRS surrogates, two calibration models.
		{"springfield", "site-a", "nirs-a", tapproof.NIRS, tapproof.Turbidity, "pls-v3", 1, 0.5},
		{"springfield", "site-a", "nirs-a", tapproof.NIRS, tapproof.TOC, "pls-v3", 1, 2},
		{"springfield", "site-a", "nirs-a", tapproof.NIRS, tapproof.Iron, "pls-v3", 1, 0.25},
		{"springfield", "site-a", "nirs-a", tapproof.NIRS, tapproof.Iron, "pls-v3", 2, 0.75},
		{"springfield", "site-a", "nirs-a", tapproof.NIRS, tapproof.Turbidity, "pls-v4", 8, 0.75},
		// Certified lab samples: 11 of them, one exactly at the action level
		// (not an exceedance), two above it. Sorted: 2 3 4 5 6 7 8 9 15 16 30;
		// InfluxQL's 90th percentile is rank floor(11 × 0.9 + 0.5) = 10: 16.
		{"springfield", "site-a", "lab-a", tapproof.Lab, tapproof.Lead, "", 3, 2},
		{"springfield", "site-a", "lab-a", tapproof.Lab, tapproof.Lead, "", 4, 3},
		{"springfield", "site-a", "lab-a", tapproof.Lab, tapproof.Lead, "", 5, 4},
		{"springfield", "site-a", "lab-a", tapproof.Lab, tapproof.Lead, "", 6, 5},
		{"springfield", "site-a", "lab-a", tapproof.Lab, tapproof.Lead, "", 7, 6},
		{"springfield", "site-a", "lab-a", tapproof.Lab, tapproof.Lead, "", 8, 15},
		{"springfield", "site-b", "lab-b", tapproof.Lab, tapproof.Lead, "", 9, 7},
		{"springfield", "site-b", "lab-b", tapproof.Lab, tapproof.Lead, "", 10, 8},
		{"springfield", "site-b", "lab-b", tapproof.Lab, tapproof.Lead, "", 11, 9},
		{"springfield", "site-b", "lab-b", tapproof.Lab, tapproof.Lead, "", 12, 16},
		{"springfield", "site-b", "lab-b", tapproof.Lab, tapproof.Lead, "", 13, 30},
		// Left out: another utility, and a reading two days before the range.
		{"shelbyville", "site-z", "asv-z", tapproof.ASV, tapproof.Lead, "", 1, 99},
		{"shelbyville", "site-z", "lab-z", tapproof.Lab, tapproof.Lead, "", 2, 50},
		{"shelbyville", "site-z", "nirs-z", tapproof.NIRS, tapproof.Iron, "pls-v3", 2, 9},
		{"springfield", "site-a", "asv-a", tapproof.ASV, tapproof.Lead, "", -48, 77},
	}
	seq := map[string]uint64{}
	out := make([]tapproof.Accepted, 0, len(rows))
	for i, x := range rows {
		seq[x.device]++
		unit, _ := x.analyte.CanonicalUnit()
		out = append(out, tapproof.Accepted{
			Reading: tapproof.Reading{
				Utility: x.utility, Site: x.site, Device: x.device, Seq: seq[x.device],
				Analyte: x.analyte, Value: x.value, Unit: unit, Method: x.method, Model: x.model,
				SampledAt: t0.Add(time.Duration(x.hour) * time.Hour),
				Firmware:  strings.Repeat("ab", 32),
			},
			Index: uint64(i),
		})
	}
	return out
}

// grafanaValues are the values Grafana would substitute for the macros and
// variables when the dashboards show springfield, all sites, over the
// seeded day.
var grafanaValues = map[string]string{
	"$timeFilter": fmt.Sprintf("time >= %dms and time <= %dms", t0.UnixMilli(), t0.Add(24*time.Hour).UnixMilli()),
	"$__interval": "6h",
	"$period":     dashboards.Periods[0],
	"$utility":    "springfield",
	"$site":       "(site-a|site-b)",
}

// wantInfluxQL is what each InfluxQL query returns on the seed: for every
// series ("<measurement> <tag>=<value>,..."), its rows without the time
// column. Every InfluxQL query of every dashboard must be listed here.
var wantInfluxQL = map[string]map[string][]string{
	"overview/$utility":   {"reading": {"utility shelbyville", "utility springfield"}},
	"overview/$site":      {"reading": {"site site-a", "site site-b"}},
	"compliance/$utility": {"reading": {"utility shelbyville", "utility springfield"}},
	"compliance/$site":    {"reading": {"site site-a", "site site-b"}},
	"operations/$site":    {"reading": {"site site-a", "site site-b"}},

	"overview/Lead by site, sensors (action level 15 ppb)/A": {
		"reading site=site-a": {"20", "4"},
		"reading site=site-b": {"5", "15"},
	},
	"overview/Latest lead by site, sensors/A": {
		"reading site=site-a": {"4"},
		"reading site=site-b": {"15"},
	},
	"overview/Turbidity (NIRS) by site and model/A": {
		"reading model=pls-v3,site=site-a": {"0.5"},
		"reading model=pls-v4,site=site-a": {"0.75"},
	},
	"overview/Total organic carbon (NIRS) by site and model/A": {
		"reading model=pls-v3,site=site-a": {"2"},
	},
	"overview/Iron (NIRS) by site and model/A": {
		"reading model=pls-v3,site=site-a": {"0.5"},
	},

	"compliance/90th percentile of the time range/A": {"reading": {"16"}},
	"compliance/Samples in the time range/A":         {"reading": {"11"}},
	"compliance/90th percentile per period/A":        {"reading": {"16"}},
	"compliance/Samples per period/A":                {"reading": {"11"}},
	"compliance/Lab samples above the action level (15 ppb)/A": {
		"reading": {"16 site-b lab-b", "30 site-b lab-b"},
	},
	"compliance/All lab samples/A": {
		"reading": {
			"2 site-a lab-a", "3 site-a lab-a", "4 site-a lab-a", "5 site-a lab-a", "6 site-a lab-a", "15 site-a lab-a",
			"7 site-b lab-b", "8 site-b lab-b", "9 site-b lab-b", "16 site-b lab-b", "30 site-b lab-b",
		},
	},

	"operations/Readings stored per site/A": {
		"reading site=site-a": {"9", "5"},
		"reading site=site-b": {"1", "3", "3"},
	},
	"operations/Latest reading per device/A": {
		"reading analyte=iron,device=nirs-a,site=site-a":      {"0.75"},
		"reading analyte=lead,device=asv-a,site=site-a":       {"4"},
		"reading analyte=lead,device=lab-a,site=site-a":       {"15"},
		"reading analyte=toc,device=nirs-a,site=site-a":       {"2"},
		"reading analyte=turbidity,device=nirs-a,site=site-a": {"0.75"},
		"reading analyte=lead,device=flu-b,site=site-b":       {"15"},
		"reading analyte=lead,device=lab-b,site=site-b":       {"30"},
	},
}

// TestInfluxQLQueries runs every InfluxQL query of every dashboard, with
// Grafana's macros and variables filled in, against a real InfluxDB holding
// the seed, and compares the series it returns.
func TestInfluxQLQueries(t *testing.T) {
	ds := dashboardsFor(t, fixedConfig(t))
	qs := on(queries(t, ds), dashboards.DatasourceInfluxDB)
	if len(qs) == 0 {
		t.Fatal("no InfluxQL queries found")
	}
	seen := map[string]bool{}
	for _, q := range qs {
		if seen[q.ID] {
			t.Fatalf("two InfluxQL queries are named %s; give panels distinct titles", q.ID)
		}
		seen[q.ID] = true
		if _, ok := wantInfluxQL[q.ID]; !ok {
			t.Errorf("InfluxQL query %s has no expectation in wantInfluxQL:\n%s", q.ID, q.Text)
		}
	}
	for id := range wantInfluxQL {
		if !seen[id] {
			t.Errorf("wantInfluxQL lists %s, which no dashboard has", id)
		}
	}
	if t.Failed() {
		return
	}

	st := localstack.ForTest(t)
	w, err := influx.New(influx.Config{URL: st.InfluxURL, Database: st.InfluxDatabase})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Write(ctx, seed()); err != nil {
		t.Fatalf("Write(seed) = %v", err)
	}

	for _, q := range qs {
		t.Run(q.ID, func(t *testing.T) {
			text := substitute(t, q.ID, q.Text, grafanaValues)
			got := summarize(runInfluxQL(t, st.InfluxURL, st.InfluxDatabase, text))
			if diff := cmp.Diff(wantInfluxQL[q.ID], got); diff != "" {
				t.Errorf("%s\nreturned (-want +got):\n%s", text, diff)
			}
		})
	}
}

// influxSeries is one series of an InfluxDB /query response.
type influxSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// runInfluxQL runs q through InfluxDB's 1.x query API, as Grafana's InfluxQL
// data source does, and returns the series of its one statement.
func runInfluxQL(t *testing.T, baseURL, db, q string) []influxSeries {
	t.Helper()
	form := url.Values{"db": {db}, "q": {q}, "epoch": {"ms"}}
	resp, err := http.PostForm(baseURL+"/query", form)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Results []struct {
			Series []influxSeries `json:"series"`
			Error  string         `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("query: status %s: %v", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || body.Error != "" {
		t.Fatalf("query %q: status %s: %s", q, resp.Status, body.Error)
	}
	if len(body.Results) != 1 {
		t.Fatalf("query %q: %d results, want 1", q, len(body.Results))
	}
	if e := body.Results[0].Error; e != "" {
		t.Fatalf("query %q: %s", q, e)
	}
	return body.Results[0].Series
}

// summarize maps each series to its rows, time column left out: the key is
// "<name> <tag>=<value>,..." with tags sorted, a row its values joined by
// spaces. Two series with the same key are merged in order.
func summarize(ss []influxSeries) map[string][]string {
	out := map[string][]string{}
	for _, s := range ss {
		key := s.Name
		if len(s.Tags) > 0 {
			tags := make([]string, 0, len(s.Tags))
			for k, v := range s.Tags {
				tags = append(tags, k+"="+v)
			}
			slices.Sort(tags)
			key += " " + strings.Join(tags, ",")
		}
		for _, row := range s.Values {
			var cells []string
			for i, v := range row {
				if i < len(s.Columns) && s.Columns[i] == "time" {
					continue
				}
				cells = append(cells, fmt.Sprint(v))
			}
			out[key] = append(out[key], strings.Join(cells, " "))
		}
	}
	return out
}
