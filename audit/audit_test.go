package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/influx"
	"github.com/tapproof/tapproof/signed"
)

func run(t *testing.T, f fixture, st audit.Store) *audit.Report {
	t.Helper()
	rep, err := audit.Run(context.Background(), &memSource{f.leaves}, st, utility, f.cp)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func ptr(i uint64) *uint64 { return &i }

// TestAuditClean: InfluxDB holding exactly what the writer wrote for the
// log's readings and lab samples is clean, and the report counts them.
func TestAuditClean(t *testing.T) {
	f := smallLog(t)
	rep := run(t, f.fixture, written(t, f.accepted))
	if !rep.Clean() {
		t.Fatalf("findings on a faithful InfluxDB: %+v", rep.Findings)
	}
	if rep.Leaves != 7 || rep.Points != 7 || rep.Size != uint64(len(f.leaves)) || rep.Newer != 0 || rep.Unwritten != 0 ||
		rep.Utility != utility || rep.Origin != f.cp.Origin || string(rep.Root) != string(f.cp.Hash) {
		t.Errorf("report = %+v; want 7 leaves and 7 points at the checkpoint of %d", rep, len(f.leaves))
	}
	// The points InfluxDB's writer writes from the leaves themselves, as
	// it decodes them (signed.LoggedReading, LoggedLabSample): the same.
	var fromLeaves []tapproof.Accepted
	for _, l := range f.leaves {
		if r, err := signed.LoggedReading(l.Bytes); err == nil {
			fromLeaves = append(fromLeaves, tapproof.Accepted{Reading: r, Index: l.Index})
		} else if s, err := signed.LoggedLabSample(l.Bytes); err == nil {
			fromLeaves = append(fromLeaves, tapproof.Accepted{Reading: s.Reading(l.Index), Index: l.Index})
		}
	}
	if rep := run(t, f.fixture, written(t, fromLeaves)); !rep.Clean() || rep.Points != 7 {
		t.Errorf("points written from the decoded leaves: %d, findings %+v", rep.Points, rep.Findings)
	}
	// Other utilities' points are not this audit's.
	other := written(t, f.accepted)
	for i := range other.points {
		other.points[i] = withTags(other.points[i], map[string]string{influx.TagUtility: "springfield"})
	}
	st := written(t, f.accepted)
	st.points = append(st.points, other.points...)
	if rep := run(t, f.fixture, st); !rep.Clean() || rep.Points != 7 {
		t.Errorf("with another utility's points: %d points, findings %+v", rep.Points, rep.Findings)
	}
}

// TestAuditMissing is Flint's story: the two lab samples above the action
// level deleted from InfluxDB are named, with their device, seq and leaf.
func TestAuditMissing(t *testing.T) {
	f := smallLog(t)
	st := written(t, f.accepted)
	labDevice := tapproof.LabDevice(utility, lab)
	st.remove(st.find(t, labDevice, int64(f.high1)))
	st.remove(st.find(t, labDevice, int64(f.high2)))
	rep := run(t, f.fixture, st)
	want := []audit.Finding{
		{Kind: audit.Missing, Device: labDevice, Seq: f.high1, Index: ptr(f.high1), Site: "home-02", Analyte: "lead",
			Method: "lab", Value: 22, Unit: "ug/L", Time: t0.AddDate(0, 0, 2).Add(time.Duration(f.high1))},
		{Kind: audit.Missing, Device: labDevice, Seq: f.high2, Index: ptr(f.high2), Site: "home-04", Analyte: "lead",
			Method: "lab", Value: 31, Unit: "ug/L", Time: t0.AddDate(0, 0, 4).Add(time.Duration(f.high2))},
	}
	if diff := cmp.Diff(want, rep.Findings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if rep.Points != 5 || rep.Count(audit.Missing) != 2 {
		t.Errorf("points %d, missing %d; want 5 and 2", rep.Points, rep.Count(audit.Missing))
	}
}

// TestAuditChanged: a point of a leaf with anything other than what the
// leaf says is named as changed, with what differs.
func TestAuditChanged(t *testing.T) {
	f := smallLog(t)
	readingAt := t0.Add(123000000 * time.Nanosecond).Add(7) // sampled_at to the ms, plus seq ns
	tests := []struct {
		name   string
		device string
		seq    int64
		change func(p *audit.Point) audit.Point
		diffs  []audit.Diff
	}{
		{"value", "pb-1", 7, func(p *audit.Point) audit.Point { p.Value = 1.25; return *p },
			[]audit.Diff{{What: "field value", Want: "3.25", Got: "1.25"}}},
		{"time", "pb-1", 7, func(p *audit.Point) audit.Point { p.Time += int64(time.Hour); return *p },
			[]audit.Diff{{What: "time", Want: readingAt.Format(time.RFC3339Nano), Got: readingAt.Add(time.Hour).Format(time.RFC3339Nano)}}},
		{"leaf index", "pb-1", 7, func(p *audit.Point) audit.Point { p.LeafIndex = 0; return *p },
			[]audit.Diff{{What: "field leaf_index", Want: "1", Got: "0"}}},
		{"detection limit dropped", "pb-1", 7, func(p *audit.Point) audit.Point { p.Has &^= audit.HasDetectionLimit; return *p },
			[]audit.Diff{{What: "field detection_limit", Want: "0.5", Got: audit.None}}},
		{"a field tapproof does not write", "pb-1", 7, func(p *audit.Point) audit.Point { p.Other = []string{`note="resampled"`}; return *p },
			[]audit.Diff{{What: "other fields", Want: audit.None, Got: `note="resampled"`}}},
		{"site tag", "pb-1", 7, func(p *audit.Point) audit.Point { return withTags(*p, map[string]string{influx.TagSite: "oak"}) },
			[]audit.Diff{{What: "tag site", Want: "elm", Got: "oak"}}},
		{"model tag", "nirs-1", 3, func(p *audit.Point) audit.Point { return withTags(*p, map[string]string{influx.TagModel: "pls-2024"}) },
			[]audit.Diff{{What: "tag model", Want: "pls-snv-2026.1", Got: "pls-2024"}}},
		{"a tag tapproof does not write", "pb-1", 7, func(p *audit.Point) audit.Point { return withTags(*p, map[string]string{"review": "ok"}) },
			[]audit.Diff{{What: "other tags", Want: audit.None, Got: "review=ok"}}},
		// Found by the leaf index it carries.
		{"device tag", "pb-1", 7, func(p *audit.Point) audit.Point { return withTags(*p, map[string]string{influx.TagDevice: "pb-9"}) },
			[]audit.Diff{{What: "tag device", Want: "pb-1", Got: "pb-9"}}},
		{"seq", "pb-1", 7, func(p *audit.Point) audit.Point { p.Seq = 70; return *p },
			[]audit.Diff{{What: "field seq", Want: "7", Got: "70"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := written(t, f.accepted)
			i := st.find(t, tt.device, tt.seq)
			st.points[i] = tt.change(&st.points[i])
			rep := run(t, f.fixture, st)
			if len(rep.Findings) != 1 {
				t.Fatalf("findings = %+v, want one", rep.Findings)
			}
			got := rep.Findings[0]
			if got.Kind != audit.Changed || got.Device != tt.device || got.Seq != uint64(tt.seq) || got.Index == nil {
				t.Errorf("finding = %+v, want %s seq %d changed", got, tt.device, tt.seq)
			}
			if diff := cmp.Diff(tt.diffs, got.Diffs); diff != "" {
				t.Errorf("diffs (-want +got):\n%s", diff)
			}
		})
	}
	// Two changes at once: both named.
	st := written(t, f.accepted)
	i := st.find(t, tapproof.LabDevice(utility, lab), int64(f.high1))
	st.points[i].Value, st.points[i].Time = 2.2, st.points[i].Time+1
	rep := run(t, f.fixture, st)
	if len(rep.Findings) != 1 || len(rep.Findings[0].Diffs) != 2 || *rep.Findings[0].Index != f.high1 {
		t.Errorf("value and time changed: findings %+v, want one of leaf %d with two diffs", rep.Findings, f.high1)
	}
}

// TestAuditWithoutLeaf: a point no leaf accounts for is named, whatever
// leaf index it claims, and a second point of a reading is one whichever
// InfluxDB lists first.
func TestAuditWithoutLeaf(t *testing.T) {
	f := smallLog(t)
	labDevice := tapproof.LabDevice(utility, lab)
	// A fake low sample, claiming the index of a real one.
	st := written(t, f.accepted)
	fake := st.points[st.find(t, labDevice, int64(f.low))]
	fake.Seq, fake.Value, fake.Time = 999, 1, fake.Time+int64(time.Hour)
	st.points = append(st.points, fake)
	rep := run(t, f.fixture, st)
	want := []audit.Finding{{Kind: audit.WithoutLeaf, Device: labDevice, Seq: 999, Index: ptr(f.low), Site: "home-01", Analyte: "lead",
		Method: "lab", Value: 1, Unit: "ug/L", Time: time.Unix(0, fake.Time).UTC(), Note: "a second point of leaf 5, whose own point is there"}}
	if diff := cmp.Diff(want, rep.Findings); diff != "" {
		t.Errorf("a fake sample claiming leaf %d (-want +got):\n%s", f.low, diff)
	}

	for _, tt := range []struct {
		name  string
		index int64
		has   bool
		note  string
	}{
		{"claiming no leaf", 0, false, "no reading or lab sample leaf of this device and seq"},
		{"claiming the enrollment's leaf", int64(f.enrollment), true, "leaf 0 is not a reading or lab sample"},
		{"claiming the notice's leaf", int64(f.notice), true, "leaf 4 is not a reading or lab sample"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := written(t, f.accepted)
			fake := withTags(st.points[0], map[string]string{influx.TagDevice: "pb-fake"})
			fake.LeafIndex = tt.index
			if !tt.has {
				fake.Has &^= audit.HasLeafIndex
			}
			st.points = append(st.points, fake)
			rep := run(t, f.fixture, st)
			if len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.WithoutLeaf || rep.Findings[0].Device != "pb-fake" ||
				rep.Findings[0].Note != tt.note || (rep.Findings[0].Index != nil) != tt.has {
				t.Errorf("findings = %+v, want pb-fake without a leaf: %s", rep.Findings, tt.note)
			}
		})
	}

	// The reading written again at another time, the first point kept:
	// before or after it in InfluxDB's answer, the copy is the finding.
	for _, first := range []bool{true, false} {
		st := written(t, f.accepted)
		i := st.find(t, "pb-1", 7)
		dup := st.points[i]
		dup.Time += int64(time.Second)
		if first {
			st.points = append([]audit.Point{dup}, st.points...)
		} else {
			st.points = append(st.points, dup)
		}
		rep := run(t, f.fixture, st)
		if len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.WithoutLeaf || rep.Findings[0].Time.UnixNano() != dup.Time ||
			rep.Findings[0].Note != "a second point of leaf 1, whose own point is there" {
			t.Errorf("copy listed first %t: findings %+v, want the copy without a leaf", first, rep.Findings)
		}
	}
}

// TestAuditNewer: a point of a leaf the checkpoint does not cover yet is
// newer than the checkpoint, not a finding.
func TestAuditNewer(t *testing.T) {
	f := smallLog(t)
	st := written(t, f.accepted)
	next := withTags(st.points[0], map[string]string{influx.TagDevice: "pb-2"})
	next.LeafIndex = int64(f.cp.Size) + 40
	st.points = append(st.points, next)
	rep := run(t, f.fixture, st)
	if !rep.Clean() || rep.Newer != 1 || rep.NewestIndex == nil || *rep.NewestIndex != f.cp.Size+40 || rep.Points != 8 {
		t.Errorf("report = %+v, want clean with 1 point newer than the checkpoint, claiming leaf %d", rep, f.cp.Size+40)
	}
	// At a smaller checkpoint, the log's last points are newer too.
	short := f.fixture
	short.leaves = f.leaves[:f.high2]
	short.cp = checkpointOf(t, short.leaves)
	rep = run(t, short, written(t, f.accepted))
	if !rep.Clean() || rep.Newer != 1 || rep.Leaves != 6 {
		t.Errorf("at size %d: %+v, want clean, 6 leaves and the last sample newer", short.cp.Size, rep)
	}
}

// TestAuditUnwritten: a reading leaf that does not decode has no point,
// as the InfluxDB writer sets it aside; it is counted, not missing.
func TestAuditUnwritten(t *testing.T) {
	b := &builder{tb: t}
	b.reading(lead("pb-1", "elm", 1, 3, t0))
	bad := lead("pb-1", "elm", 0, 3, t0) // seq 0 does not decode
	b.add(b.sign(tapproof.ReadingPayloadType, bad))
	f := b.done()
	rep := run(t, f, written(t, f.accepted))
	if !rep.Clean() || rep.Leaves != 1 || rep.Unwritten != 1 {
		t.Errorf("report = %+v, want clean with 1 leaf and 1 unwritten", rep)
	}
}

// TestAuditLyingSource: a source whose leaves are not the checkpoint's
// fails the audit, however consistent InfluxDB is with what it serves.
func TestAuditLyingSource(t *testing.T) {
	f := smallLog(t)
	// The operator lowers the high sample in the log they serve and in
	// InfluxDB alike.
	lowered, err := signed.LoggedLabSample(f.leaves[f.high1].Bytes)
	if err != nil {
		t.Fatal(err)
	}
	lowered.Value = 2
	b := &builder{tb: t}
	forged := b.sign(tapproof.LabSamplePayloadType, lowered)
	accepted := append([]tapproof.Accepted(nil), f.accepted...)
	for i, a := range accepted {
		if a.Index == f.high1 {
			accepted[i].Reading = lowered.Reading(f.high1)
		}
	}
	for _, tt := range []struct {
		name   string
		leaves func() []tapproof.Leaf
	}{
		{"a leaf altered", func() []tapproof.Leaf {
			ls := append([]tapproof.Leaf(nil), f.leaves...)
			ls[f.high1] = tapproof.Leaf{Index: f.high1, Bytes: forged}
			return ls
		}},
		{"a leaf dropped", func() []tapproof.Leaf {
			ls := append([]tapproof.Leaf(nil), f.leaves[:f.high1]...)
			for _, l := range f.leaves[f.high1+1:] {
				l.Index--
				ls = append(ls, l)
			}
			return append(ls, tapproof.Leaf{Index: uint64(len(ls)), Bytes: []byte("{}")})
		}},
		{"the log cut short", func() []tapproof.Leaf { return f.leaves[:f.high1] }},
		{"two leaves swapped", func() []tapproof.Leaf {
			ls := append([]tapproof.Leaf(nil), f.leaves...)
			ls[f.high1].Bytes, ls[f.low].Bytes = ls[f.low].Bytes, ls[f.high1].Bytes
			return ls
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lie := tt.leaves()
			rep, err := audit.Run(context.Background(), &memSource{lie}, written(t, accepted), utility, f.cp)
			if err == nil {
				t.Fatalf("Run = %+v, nil error; want the read-back to fail", rep)
			}
			if rep != nil {
				t.Errorf("Run returned a report with its error: %+v", rep)
			}
			t.Log(err)
		})
	}
	// It is the checkpoint that catches the lie: at the lie's own tree
	// head, InfluxDB agrees with it.
	lie := append([]tapproof.Leaf(nil), f.leaves...)
	lie[f.high1] = tapproof.Leaf{Index: f.high1, Bytes: forged}
	if rep := run(t, fixture{leaves: lie, cp: checkpointOf(t, lie)}, written(t, accepted)); !rep.Clean() {
		t.Errorf("the lie at its own tree head: findings %+v, want none", rep.Findings)
	}
}

// failingStore fails after some points.
type failingStore struct{ st *memStore }

func (s failingStore) Points(ctx context.Context, u string, fn func(*audit.Point) error) error {
	n := 0
	return s.st.Points(ctx, u, func(p *audit.Point) error {
		if n++; n > 3 {
			return errors.New("connection reset")
		}
		return fn(p)
	})
}

// TestAuditStoreFails: InfluxDB failing midway is an error, not a report
// of missing points.
func TestAuditStoreFails(t *testing.T) {
	f := smallLog(t)
	_, err := audit.Run(context.Background(), &memSource{f.leaves}, failingStore{written(t, f.accepted)}, utility, f.cp)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("Run with a failing store: %v, want its error", err)
	}
	if _, err := audit.Run(context.Background(), &memSource{f.leaves}, written(t, f.accepted), "Flint'", f.cp); err == nil {
		t.Error("Run accepted an invalid utility id")
	}
}

// TestAuditText: one line per finding naming kind, device, seq, leaf and
// what differs, then the summary.
func TestAuditText(t *testing.T) {
	f := smallLog(t)
	st := written(t, f.accepted)
	labDevice := tapproof.LabDevice(utility, lab)
	st.remove(st.find(t, labDevice, int64(f.high1)))
	i := st.find(t, "pb-1", 7)
	st.points[i].Value = 30
	fake := withTags(st.points[i], map[string]string{influx.TagDevice: "pb-fake"})
	fake.Has &^= audit.HasLeafIndex
	st.points = append(st.points, fake)
	var b strings.Builder
	if err := run(t, f.fixture, st).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"CHANGED      device pb-1 seq 7 leaf 1: ASV lead 3.25 ug/L at 2025-08-04T06:30:00.123000007Z, site elm: field value want 3.25, got 30",
		"MISSING      device state-lab.flint seq 6 leaf 6: lab lead 22 ug/L at 2025-08-06T06:30:00.000000006Z, site home-02: not in InfluxDB",
		"WITHOUT_LEAF device pb-fake seq 7 leaf -: ASV lead 30 ug/L at 2025-08-04T06:30:00.123000007Z, site elm: no reading or lab sample leaf of this device and seq",
	}
	if diff := cmp.Diff(want, lines[:3]); diff != "" {
		t.Errorf("finding lines (-want +got):\n%s", diff)
	}
	if !strings.Contains(lines[len(lines)-1], "3 FINDINGS: 1 missing, 1 changed, 1 without a leaf") {
		t.Errorf("summary = %q", lines[len(lines)-1])
	}
}
