package audit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof/audit"
)

// The chunks InfluxDB 1.8 sends for SELECT * ... GROUP BY * with
// chunk_size=2, as captured from influxd 1.8.10, plus a point of a
// string field.
const chunked = `{"results":[{"statement_id":0,"series":[{"name":"reading","tags":{"analyte":"lead","device":"d1","extra":"","method":"ASV","site":"s1","unit":"ug/L","utility":"u"},"columns":["time","detection_limit","leaf_index","note","seq","value"],"values":[[1700000000000000001,null,3,null,1,1.5],[1700000000000000002,0.5,4,null,2,2]]}],"partial":true}]}
{"results":[{"statement_id":0,"series":[{"name":"reading","tags":{"analyte":"lead","device":"d2","extra":"","method":"ASV","site":"s1","unit":"ug/L","utility":"u"},"columns":["time","detection_limit","leaf_index","note","seq","value"],"values":[[1700000000000000002,null,5,null,2,2]]}],"partial":true}]}
{"results":[{"statement_id":0,"series":[{"name":"reading","tags":{"analyte":"lead","device":"d2","extra":"x","method":"ASV","site":"s1","unit":"ug/L","utility":"u"},"columns":["time","detection_limit","leaf_index","note","seq","value"],"values":[[1700000000000000003,null,9.5,"hi, \"there\"",3,-2.5e-3]]}]}]}
`

// points collects what Points hands out, copied.
func points(t *testing.T, st audit.Store) ([]audit.Point, error) {
	t.Helper()
	var out []audit.Point
	err := st.Points(context.Background(), "u", func(p *audit.Point) error {
		q := *p
		q.Other = append([]string(nil), p.Other...)
		out = append(out, q)
		return nil
	})
	return out, err
}

// TestInfluxPoints: the client sends one chunked SELECT as a GET, with
// InfluxDB 1.8's user:password as basic auth, and reads the rows of every
// chunk, nulls as absent fields and values of another type as other fields.
func TestInfluxPoints(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		fmt.Fprint(w, chunked)
	}))
	defer srv.Close()
	c, err := audit.NewInflux(audit.InfluxConfig{URL: srv.URL, Database: "tapproof/autogen", Token: "auditor:s3cret", ChunkSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := points(t, c)
	if err != nil {
		t.Fatal(err)
	}
	q := got.URL.Query()
	if got.Method != http.MethodGet || got.URL.Path != "/query" || q.Get("db") != "tapproof" || q.Get("rp") != "autogen" ||
		q.Get("epoch") != "ns" || q.Get("chunked") != "true" || q.Get("chunk_size") != "2" ||
		q.Get("q") != `SELECT * FROM "reading" WHERE "utility" = 'u' GROUP BY *` {
		t.Errorf("request = %s %s", got.Method, got.URL)
	}
	if user, pass, ok := got.BasicAuth(); !ok || user != "auditor" || pass != "s3cret" {
		t.Errorf("auth = %q, want basic auditor:s3cret", got.Header.Get("Authorization"))
	}
	type row struct {
		Device string
		Time   int64
		Value  float64
		DL     float64
		Seq    int64
		Index  int64
		Has    audit.Fields
		Other  []string
		Extra  string
	}
	var rows []row
	for _, p := range ps {
		rows = append(rows, row{p.Series.Tags["device"], p.Time, p.Value, p.DetectionLimit, p.Seq, p.LeafIndex, p.Has, p.Other, p.Series.Tags["extra"]})
	}
	all := audit.HasValue | audit.HasSeq | audit.HasLeafIndex
	want := []row{
		{"d1", 1700000000000000001, 1.5, 0, 1, 3, all, nil, ""},
		{"d1", 1700000000000000002, 2, 0.5, 2, 4, all | audit.HasDetectionLimit, nil, ""},
		{"d2", 1700000000000000002, 2, 0, 2, 5, all, nil, ""},
		{"d2", 1700000000000000003, -0.0025, 0, 3, 0, audit.HasValue | audit.HasSeq, []string{"leaf_index=9.5", `note="hi, \"there\""`}, "x"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}

	// An API token goes in the Token scheme.
	c, _ = audit.NewInflux(audit.InfluxConfig{URL: srv.URL, Database: "tapproof", Token: "read-only-token"})
	if _, err := points(t, c); err != nil {
		t.Fatal(err)
	}
	if a := got.Header.Get("Authorization"); a != "Token read-only-token" {
		t.Errorf("Authorization = %q, want the token", a)
	}
	if q := got.URL.Query(); q.Get("chunk_size") != fmt.Sprint(audit.DefaultChunkSize) || q.Has("rp") {
		t.Errorf("request = %s, want the default chunk size and no rp", got.URL)
	}
}

// TestInfluxPointsFails: an answer that is an error, is cut short, or is
// not InfluxDB's is an error, never fewer points.
func TestInfluxPointsFails(t *testing.T) {
	lines := strings.SplitAfter(chunked, "\n")
	for _, tt := range []struct {
		name, body string
		status     int
	}{
		{"unauthorized", `{"error":"authorization failed"}`, http.StatusUnauthorized},
		{"no database", `{"results":[{"statement_id":0,"error":"database not found: tapproof"}]}`, http.StatusOK},
		{"an error midway", lines[0] + `{"error":"query interrupted"}` + "\n", http.StatusOK},
		{"cut after a partial chunk", lines[0] + lines[1], http.StatusOK},
		{"cut inside a chunk", lines[0] + lines[1][:40], http.StatusOK},
		{"not rows", `{"results":[{"statement_id":0,"series":[{"name":"reading","columns":["time","value"],"values":[{"a":1}]}]}]}`, http.StatusOK},
		{"no time column", `{"results":[{"statement_id":0,"series":[{"name":"reading","columns":["value"],"values":[[1]]}]}]}`, http.StatusOK},
		{"time not in nanoseconds", `{"results":[{"statement_id":0,"series":[{"name":"reading","columns":["time","value"],"values":[["2025-08-04T06:30:00Z",1]]}]}]}`, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c, err := audit.NewInflux(audit.InfluxConfig{URL: srv.URL, Database: "tapproof"})
			if err != nil {
				t.Fatal(err)
			}
			if ps, err := points(t, c); err == nil {
				t.Errorf("Points = %d points, nil error; want an error", len(ps))
			} else {
				t.Log(err)
			}
		})
	}
	// An empty answer: no points, no error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"results":[{"statement_id":0}]}`)
	}))
	defer srv.Close()
	c, _ := audit.NewInflux(audit.InfluxConfig{URL: srv.URL, Database: "tapproof"})
	if ps, err := points(t, c); err != nil || len(ps) != 0 {
		t.Errorf("empty answer: %d points, %v", len(ps), err)
	}
	for _, cfg := range []audit.InfluxConfig{{Database: "tapproof"}, {URL: "http://x"}, {URL: "http://x", Database: "d", ChunkSize: -1}} {
		if _, err := audit.NewInflux(cfg); err == nil {
			t.Errorf("NewInflux(%+v) accepted it", cfg)
		}
	}
	if s := fmt.Sprint(audit.InfluxConfig{URL: "http://x", Database: "d", Token: "auditor:hunter2"}); strings.Contains(s, "hunter2") {
		t.Errorf("InfluxConfig prints its token: %s", s)
	}
}
