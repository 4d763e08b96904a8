package influx_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/influx"
)

func TestLatestReadings(t *testing.T) {
	base := influxURL(t)
	db := newDatabase(t, base)
	w := newWriter(t, influx.Config{URL: base, Database: db})
	now := time.Now().UTC().Truncate(time.Millisecond)
	mk := func(device string, seq uint64, a tapproof.Analyte, v float64, ago time.Duration, site string) tapproof.Accepted {
		unit, _ := a.CanonicalUnit()
		return tapproof.Accepted{Index: seq, Reading: tapproof.Reading{Utility: "springfield", Site: site, Device: device, Seq: seq,
			Analyte: a, Value: v, Unit: unit, Method: tapproof.ASV, SampledAt: now.Add(-ago)}}
	}
	batch := []tapproof.Accepted{
		mk("pb-1", 1, tapproof.Lead, 3, 3*time.Minute, "elm"),
		mk("pb-1", 2, tapproof.Lead, 17, 1*time.Minute, "elm"), // newest of pb-1
		mk("pb-2", 1, tapproof.Lead, 4, 2*time.Minute, "elm"),
		mk("pb-3", 1, tapproof.Lead, 9, time.Second, "oak"), // another site
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	r, err := influx.NewReader(influx.Config{URL: base, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.LatestReadings(context.Background(), "springfield", "elm")
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, g := range got {
		summary = append(summary, g.Device+" "+string(g.Analyte)+" "+g.SampledAt.Format(time.RFC3339Nano))
	}
	want := []string{
		"pb-1 lead " + now.Add(-time.Minute).Format(time.RFC3339Nano),
		"pb-2 lead " + now.Add(-2*time.Minute).Format(time.RFC3339Nano),
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("LatestReadings (-want +got):\n%s", diff)
	}
	if len(got) > 0 && (got[0].Value != 17 || got[0].Seq != 2) {
		t.Errorf("newest reading = %+v, want pb-1 seq 2 value 17", got[0])
	}
	if _, err := r.LatestReadings(context.Background(), "springfield", "elm' OR 1=1"); err == nil {
		t.Error("LatestReadings accepted an invalid site id")
	}
}
