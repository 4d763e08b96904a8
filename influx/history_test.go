package influx_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/influx"
)

func TestHistory(t *testing.T) {
	base := influxURL(t)
	db := newDatabase(t, base)
	w := newWriter(t, influx.Config{URL: base, Database: db})
	day := func(d, h int) time.Time { return time.Date(2027, time.October, 30+d, h, 15, 0, 0, time.UTC) }
	sensor := func(device string, seq uint64, v float64, at time.Time, site string) tapproof.Accepted {
		return tapproof.Accepted{Index: seq + 100, Reading: tapproof.Reading{Utility: "springfield", Site: site, Device: device, Seq: seq,
			Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV, SampledAt: at}}
	}
	lab := tapproof.LabSample{Lab: "state-lab", Utility: "springfield", Site: "elm", Analyte: tapproof.Lead, Value: 12, Unit: tapproof.MicrogramsPerLiter,
		CollectedAt: day(2, 9)}.Reading(77)
	batch := []tapproof.Accepted{
		sensor("pb-1", 1, 3, day(0, 1), "elm"),
		sensor("pb-1", 2, 14, day(0, 5), "elm"), // the peak of 30 Oct
		sensor("pb-2", 1, 6, day(0, 7), "elm"),
		sensor("pb-1", 3, 11, day(2, 3), "elm"), // the peak of 1 Nov, the day the level drops to 10
		sensor("pb-1", 4, 2, day(2, 4), "elm"),
		sensor("pb-3", 1, 40, day(2, 4), "oak"), // another site
		sensor("pb-1", 5, 9, day(9, 4), "elm"),  // after the window
		{Index: 77, Reading: lab},
		{Index: 78, Reading: tapproof.Reading{Utility: "springfield", Site: "elm", Device: "nirs-1", Seq: 1, Analyte: tapproof.Turbidity,
			Value: 90, Unit: tapproof.NTU, Method: tapproof.NIRS, Model: "m1", SampledAt: day(1, 1)}}, // not lead
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	r, err := influx.NewReader(influx.Config{URL: base, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.History(context.Background(), "springfield", "elm", day(0, 0).Truncate(24*time.Hour), day(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, g := range got {
		summary = append(summary, fmt.Sprintf("%s %s %s/%d %g %s", g.SampledAt.Format(time.RFC3339), g.Method, g.Device, g.Seq, g.Value, g.Unit))
	}
	want := []string{
		"2027-10-30T00:00:00Z ASV pb-1/2 14 ug/L",
		"2027-11-01T00:00:00Z ASV pb-1/3 11 ug/L",
		"2027-11-01T09:15:00Z lab " + lab.Device + "/77 12 ug/L",
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("History (-want +got):\n%s", diff)
	}
	if _, err := r.History(context.Background(), "springfield", "elm' OR 1=1", day(0, 0), day(5, 0)); err == nil {
		t.Error("History accepted an invalid site id")
	}
}

// The dashboards plot the same peaks: PeakQuery without columns is the
// overview dashboard's query.
func TestPeakQuery(t *testing.T) {
	q := influx.PeakQuery(`"utility" = '$utility'`, tapproof.Lead)
	want := `SELECT max("value") FROM "reading" WHERE "utility" = '$utility' AND "analyte" = 'lead' AND "method" != 'lab' AND $timeFilter GROUP BY time($__interval), "site" fill(none)`
	if q != want {
		t.Errorf("PeakQuery =\n%s\nwant\n%s", q, want)
	}
	if q := influx.PeakQuery("true", tapproof.Lead, "seq", "device"); !strings.HasPrefix(q, `SELECT max("value"), "seq", "device" FROM`) {
		t.Errorf("PeakQuery with columns = %s", q)
	}
}
