package influx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/influx"
)

const firmware = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

var t0 = time.Date(2026, time.March, 14, 9, 26, 53, 589793238, time.UTC)

// accepted returns n lead readings spread over two devices.
func accepted(n int) []tapproof.Accepted {
	out := make([]tapproof.Accepted, n)
	for i := range out {
		dev := fmt.Sprintf("asv-%d", i%2+1)
		out[i] = tapproof.Accepted{
			Reading: tapproof.Reading{
				Utility: "springfield", Site: "elm-st-12", Device: dev, Seq: uint64(i/2 + 1),
				Analyte: tapproof.Lead, Value: 3.25 + float64(i), Unit: tapproof.MicrogramsPerLiter,
				Method: tapproof.ASV, SampledAt: t0.Add(time.Duration(i/2) * time.Minute),
				Firmware: firmware, DetectionLimit: 0.5,
			},
			Index: uint64(i),
		}
	}
	return out
}

func TestPoint(t *testing.T) {
	lead := tapproof.Reading{
		Utility: "springfield", Site: "elm-st-12", Device: "asv-1", Seq: 7,
		Analyte: tapproof.Lead, Value: 16, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: t0, Firmware: firmware, DetectionLimit: 0.5,
	}
	nirs := tapproof.Reading{
		Utility: "springfield", Site: "plant-1", Device: "nirs-1", Seq: 3,
		Analyte: tapproof.Turbidity, Value: 0.42, Unit: tapproof.NTU, Method: tapproof.NIRS,
		SampledAt: t0, Firmware: firmware, Model: "pls-snv-2026.02",
	}
	lab := lead
	lab.Method, lab.Model, lab.DetectionLimit = tapproof.Lab, "ignored-not-nirs", 0

	tests := []struct {
		name   string
		in     tapproof.Accepted
		tags   map[string]string
		fields map[string]any
	}{
		{
			name: "lead sensor with detection limit",
			in:   tapproof.Accepted{Reading: lead, Index: 41},
			tags: map[string]string{
				"utility": "springfield", "site": "elm-st-12", "device": "asv-1",
				"analyte": "lead", "method": "ASV", "unit": "ug/L",
			},
			fields: map[string]any{"value": 16.0, "seq": int64(7), "leaf_index": int64(41), "detection_limit": 0.5},
		},
		{
			name: "NIRS carries its model",
			in:   tapproof.Accepted{Reading: nirs, Index: 0},
			tags: map[string]string{
				"utility": "springfield", "site": "plant-1", "device": "nirs-1",
				"analyte": "turbidity", "method": "NIRS", "unit": "[NTU]", "model": "pls-snv-2026.02",
			},
			fields: map[string]any{"value": 0.42, "seq": int64(3), "leaf_index": int64(0)},
		},
		{
			name: "model only for NIRS, no zero detection limit",
			in:   tapproof.Accepted{Reading: lab, Index: 9},
			tags: map[string]string{
				"utility": "springfield", "site": "elm-st-12", "device": "asv-1",
				"analyte": "lead", "method": "lab", "unit": "ug/L",
			},
			fields: map[string]any{"value": 16.0, "seq": int64(7), "leaf_index": int64(9)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := influx.Point(tt.in)
			if err != nil {
				t.Fatalf("Point(%v) error: %v", tt.in, err)
			}
			if p.Name() != "reading" {
				t.Errorf("measurement = %q, want reading", p.Name())
			}
			tags := map[string]string{}
			for _, tag := range p.TagList() {
				tags[tag.Key] = tag.Value
			}
			if diff := cmp.Diff(tt.tags, tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			fields := map[string]any{}
			for _, f := range p.FieldList() {
				fields[f.Key] = f.Value
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if want := t0.Truncate(time.Millisecond).Add(time.Duration(tt.in.Reading.Seq)); !p.Time().Equal(want) {
				t.Errorf("time = %v, want %v (sampled_at to the ms, plus seq ns)", p.Time(), want)
			}
			// PointValues is the same schema, for audits to compare with.
			v, err := influx.PointValues(tt.in)
			if err != nil {
				t.Fatalf("PointValues(%v) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.tags, v.Tags()); diff != "" {
				t.Errorf("PointValues tags (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.fields, v.Fields()); diff != "" {
				t.Errorf("PointValues fields (-want +got):\n%s", diff)
			}
			if !v.Time.Equal(p.Time()) {
				t.Errorf("PointValues time = %v, want the point's %v", v.Time, p.Time())
			}
			// The encoding is deterministic, which makes rewrites idempotent.
			q, _ := influx.Point(tt.in)
			if a, b := lineProtocol(p), lineProtocol(q); a != b {
				t.Errorf("two encodings differ:\n%s\n%s", a, b)
			}
		})
	}

	t.Run("seq beyond int64", func(t *testing.T) {
		r := lead
		r.Seq = math.MaxInt64 + 1
		if _, err := influx.Point(tapproof.Accepted{Reading: r}); err == nil {
			t.Errorf("Point(seq %d) = nil error, want error", r.Seq)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  influx.Config
		want bool
	}{
		{influx.Config{URL: "http://127.0.0.1:8086", Database: "tapproof"}, true},
		{influx.Config{URL: "https://influx.example/prefix", Database: "tapproof/autogen", Token: "u:p"}, true},
		{influx.Config{Database: "tapproof"}, false},
		{influx.Config{URL: "127.0.0.1:8086", Database: "tapproof"}, false},
		{influx.Config{URL: "http://127.0.0.1:8086"}, false},
		{influx.Config{URL: "http://127.0.0.1:8086", Database: "x", Timeout: -1}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.want {
			t.Errorf("Validate(%v) = %v, want ok %v", tt.cfg, err, tt.want)
		}
	}
	if s := fmt.Sprint(influx.Config{URL: "http://x", Database: "d", Token: "admin:hunter2"}); strings.Contains(s, "hunter2") {
		t.Errorf("Config prints its token: %s", s)
	}
}

// newDatabase creates a fresh database for t and drops it afterwards.
func newDatabase(t *testing.T, base string) string {
	t.Helper()
	name := "t_" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
	ctx := context.Background()
	if err := influx.EnsureDatabase(ctx, base, "", name); err != nil {
		t.Fatalf("EnsureDatabase: %v", err)
	}
	t.Cleanup(func() { influxQL(t, base, name, `DROP DATABASE "`+name+`"`) })
	return name
}

func newWriter(t *testing.T, cfg influx.Config) *influx.Writer {
	t.Helper()
	w, err := influx.New(cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(w.Close)
	return w
}

func count(t *testing.T, base, db string) int64 {
	t.Helper()
	s := influxQL(t, base, db, `SELECT count("value") FROM "reading"`)
	if len(s) == 0 {
		return 0
	}
	n, err := s[0].Values[0][1].(json.Number).Int64()
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestWriteIdempotent(t *testing.T) {
	base := influxURL(t)
	db := newDatabase(t, base)
	w := newWriter(t, influx.Config{URL: base, Database: db, Timeout: 20 * time.Second})
	ctx := context.Background()
	if err := w.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	const n = 200
	batch := accepted(n)
	if err := w.Write(ctx, batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := count(t, base, db); got != n {
		t.Fatalf("after one write: count(value) = %d, want %d", got, n)
	}
	if err := w.Write(ctx, batch); err != nil {
		t.Fatalf("Write again: %v", err)
	}
	if err := w.Write(ctx, batch[10:20]); err != nil {
		t.Fatalf("Write part again: %v", err)
	}
	if got := count(t, base, db); got != n {
		t.Errorf("after rewrites: count(value) = %d, want %d", got, n)
	}

	// Field types, as dashboards expect them.
	fieldTypes := map[string]string{}
	for _, row := range influxQL(t, base, db, `SHOW FIELD KEYS FROM "reading"`)[0].Values {
		fieldTypes[row[0].(string)] = row[1].(string)
	}
	wantTypes := map[string]string{"value": "float", "seq": "integer", "leaf_index": "integer", "detection_limit": "float"}
	if diff := cmp.Diff(wantTypes, fieldTypes); diff != "" {
		t.Errorf("field types (-want +got):\n%s", diff)
	}
	var tagKeys []string
	for _, row := range influxQL(t, base, db, `SHOW TAG KEYS FROM "reading"`)[0].Values {
		tagKeys = append(tagKeys, row[0].(string))
	}
	if diff := cmp.Diff([]string{"analyte", "device", "method", "site", "unit", "utility"}, tagKeys); diff != "" {
		t.Errorf("tag keys (-want +got):\n%s", diff)
	}

	// One point in full: batch[5] is device asv-2, seq 3.
	s := influxQL(t, base, db, `SELECT * FROM "reading" WHERE "device" = 'asv-2' AND "seq" = 3`)
	if len(s) != 1 || len(s[0].Values) != 1 {
		t.Fatalf("SELECT one point: got %+v", s)
	}
	got := map[string]string{}
	for i, c := range s[0].Columns {
		got[c] = fmt.Sprint(s[0].Values[0][i])
	}
	r := batch[5].Reading
	want := map[string]string{
		"time":    fmt.Sprint(influx.Timestamp(r).UnixNano()),
		"utility": "springfield", "site": "elm-st-12", "device": "asv-2",
		"analyte": "lead", "method": "ASV", "unit": "ug/L",
		"value": "8.25", "seq": "3", "leaf_index": "5", "detection_limit": "0.5",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("point asv-2/3 (-want +got):\n%s", diff)
	}
}

func TestWriteSameMillisecondKeepsBoth(t *testing.T) {
	base := influxURL(t)
	db := newDatabase(t, base)
	w := newWriter(t, influx.Config{URL: base, Database: db})
	batch := accepted(2)
	for i := range batch {
		batch[i].Reading.Device = "asv-1"
		batch[i].Reading.Seq = uint64(10 + i)
		batch[i].Reading.SampledAt = t0.Add(123 * time.Microsecond)
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := count(t, base, db); got != 2 {
		t.Errorf("count(value) = %d, want 2: readings sampled in the same millisecond must stay two points", got)
	}
}

func TestWriteNIRSModel(t *testing.T) {
	base := influxURL(t)
	db := newDatabase(t, base)
	w := newWriter(t, influx.Config{URL: base, Database: db + "/autogen"})
	a := tapproof.Accepted{Reading: tapproof.Reading{
		Utility: "springfield", Site: "plant-1", Device: "nirs-1", Seq: 1,
		Analyte: tapproof.Iron, Value: 0.31, Unit: tapproof.MilligramsPerLiter, Method: tapproof.NIRS,
		SampledAt: t0, Firmware: firmware, Model: "pls-snv-2026.02",
	}, Index: 3}
	if err := w.Write(context.Background(), []tapproof.Accepted{a}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	s := influxQL(t, base, db, `SELECT "value" FROM "reading" GROUP BY "model"`)
	if len(s) != 1 || s[0].Tags["model"] != "pls-snv-2026.02" {
		t.Errorf("GROUP BY model: got %+v, want one series with model pls-snv-2026.02", s)
	}
}

func TestWriteSkipsUnencodable(t *testing.T) {
	base := influxURL(t)
	db := newDatabase(t, base)
	w := newWriter(t, influx.Config{URL: base, Database: db})
	batch := accepted(4)
	batch[2].Reading.Seq = math.MaxUint64
	err := w.Write(context.Background(), batch)
	var we *influx.WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Write = %v, want *WriteError", err)
	}
	if influx.Retryable(err) {
		t.Errorf("Retryable(%v) = true, want false", err)
	}
	if diff := cmp.Diff([]string{batch[2].Reading.Key()}, we.Skipped); diff != "" {
		t.Errorf("Skipped (-want +got):\n%s", diff)
	}
	if got := count(t, base, db); got != 3 {
		t.Errorf("count(value) = %d, want 3", got)
	}
}

func TestWriteErrors(t *testing.T) {
	base := influxURL(t)
	ctx := context.Background()

	t.Run("field type conflict is permanent", func(t *testing.T) {
		db := newDatabase(t, base)
		// Someone else wrote "value" as an integer first, in the same shard.
		w0 := newWriter(t, influx.Config{URL: base, Database: db})
		line := fmt.Sprintf("reading,utility=x value=1i %d", t0.UnixNano())
		resp, err := http.Post(base+"/write?db="+db, "text/plain", strings.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("seeding conflicting point: status %d", resp.StatusCode)
		}
		err = w0.Write(ctx, accepted(1))
		var we *influx.WriteError
		if !errors.As(err, &we) || we.StatusCode != http.StatusBadRequest || we.Retryable {
			t.Errorf("Write = %#v, want non-retryable *WriteError with status 400", err)
		}
	})

	t.Run("missing database is retryable", func(t *testing.T) {
		w := newWriter(t, influx.Config{URL: base, Database: "no_such_db"})
		err := w.Write(ctx, accepted(1))
		var we *influx.WriteError
		if !errors.As(err, &we) || !we.Retryable || we.StatusCode == 0 {
			t.Errorf("Write = %#v, want retryable *WriteError with a status", err)
		}
	})

	t.Run("unreachable server is retryable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		w := newWriter(t, influx.Config{URL: url, Database: "x", Timeout: 2 * time.Second})
		err := w.Write(ctx, accepted(1))
		var we *influx.WriteError
		if !errors.As(err, &we) || !we.Retryable || we.StatusCode != 0 {
			t.Errorf("Write = %#v, want retryable *WriteError without status", err)
		}
		if err := w.Ping(ctx); err == nil {
			t.Errorf("Ping(closed server) = nil, want error")
		}
	})

	t.Run("overloaded server is retryable", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}))
		t.Cleanup(srv.Close)
		w := newWriter(t, influx.Config{URL: srv.URL, Database: "x"})
		err := w.Write(ctx, accepted(1))
		var we *influx.WriteError
		if !errors.As(err, &we) || !we.Retryable || we.StatusCode != http.StatusTooManyRequests || we.RetryAfter != 7*time.Second {
			t.Errorf("Write = %#v, want retryable 429 with RetryAfter 7s", err)
		}
	})
}

func TestEnsureDatabaseIsIdempotent(t *testing.T) {
	base := influxURL(t)
	db := newDatabase(t, base)
	for range 2 {
		if err := influx.EnsureDatabase(context.Background(), base, "", db+"/autogen"); err != nil {
			t.Fatalf("EnsureDatabase(%q) again: %v", db, err)
		}
	}
	found := false
	for _, row := range influxQL(t, base, "", "SHOW DATABASES")[0].Values {
		found = found || row[0] == db
	}
	if !found {
		t.Errorf("SHOW DATABASES does not list %s", db)
	}
}

func lineProtocol(p *write.Point) string {
	var sb strings.Builder
	write.PointToLineProtocolBuffer(p, &sb, time.Nanosecond)
	return sb.String()
}
