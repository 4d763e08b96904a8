package audit_test

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/influx"
	"github.com/tapproof/tapproof/signed"
)

const (
	utility  = "flint"
	lab      = "state-lab"
	firmware = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

var (
	t0     = time.Date(2025, 8, 4, 6, 30, 0, 0, time.UTC)
	devKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
)

// fixture is a utility's log and the points tapproof's InfluxDB writer
// writes for it.
type fixture struct {
	leaves   []tapproof.Leaf
	accepted []tapproof.Accepted // the readings and lab samples, as the writer gets them
	cp       *log.Checkpoint
}

// builder appends leaves of every kind to a fixture.
type builder struct {
	tb testing.TB
	f  fixture
}

func (b *builder) add(leaf []byte) uint64 {
	i := uint64(len(b.f.leaves))
	b.f.leaves = append(b.f.leaves, tapproof.Leaf{Index: i, Bytes: leaf})
	return i
}

func (b *builder) sign(payloadType string, v any) []byte {
	b.tb.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		b.tb.Fatal(err)
	}
	raw, err := signed.Sign(context.Background(), devKey, payloadType, p)
	if err != nil {
		b.tb.Fatal(err)
	}
	return raw
}

// reading appends a reading leaf; r is in canonical units.
func (b *builder) reading(r tapproof.Reading) uint64 {
	b.tb.Helper()
	raw, err := signed.SignReading(context.Background(), devKey, r)
	if err != nil {
		b.tb.Fatal(err)
	}
	i := b.add(raw)
	b.f.accepted = append(b.f.accepted, tapproof.Accepted{Reading: r, Index: i})
	return i
}

// labSample appends a lab sample leaf of ppb lead at site.
func (b *builder) labSample(n int, site string, ppb float64) uint64 {
	b.tb.Helper()
	at := t0.AddDate(0, 0, n)
	s := tapproof.LabSample{Lab: lab, SampleID: fmt.Sprintf("L2025-%03d", n), Utility: utility, Site: site,
		Tier: 1, Liter: tapproof.FirstLiter, Analyte: tapproof.Lead, Value: ppb, Unit: tapproof.MicrogramsPerLiter,
		DetectionLimit: 0.5, CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour), Period: "2025H2"}
	i := b.add(b.sign(tapproof.LabSamplePayloadType, s))
	b.f.accepted = append(b.f.accepted, tapproof.Accepted{Reading: s.Reading(i), Index: i})
	return i
}

// done signs nothing: the checkpoint is the log's tree head, as
// anchor.OpenCheckpoint returns it.
func (b *builder) done() fixture {
	b.tb.Helper()
	f := b.f
	f.cp = checkpointOf(b.tb, f.leaves)
	return f
}

func checkpointOf(tb testing.TB, leaves []tapproof.Leaf) *log.Checkpoint {
	tb.Helper()
	r := anchor.NewReplay()
	for _, l := range leaves {
		if err := r.Append(l.Bytes); err != nil {
			tb.Fatal(err)
		}
	}
	root, err := r.Root()
	if err != nil {
		tb.Fatal(err)
	}
	return &log.Checkpoint{Origin: "tapproof.local/log/" + utility, Size: r.Size(), Hash: root}
}

func lead(device, site string, seq uint64, ppb float64, at time.Time) tapproof.Reading {
	return tapproof.Reading{Utility: utility, Site: site, Device: device, Seq: seq, Analyte: tapproof.Lead,
		Value: ppb, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV, SampledAt: at, Firmware: firmware, DetectionLimit: 0.5}
}

// Leaf indices of the small fixture.
type small struct {
	fixture
	enrollment, reading, nirs, notice, low, high1, high2 uint64
}

// smallLog is a log of every kind of leaf: an enrollment, lead and NIRS
// readings, a notice record, and lab samples, two of them above 15 ug/L.
func smallLog(tb testing.TB) small {
	b := &builder{tb: tb}
	var s small
	s.enrollment = b.add(b.sign(tapproof.EnrollmentPayloadType, tapproof.Enrollment{Device: "pb-1", Utility: utility, Site: "elm",
		Kind: tapproof.ASV, PublicKey: devKey.Public().(ed25519.PublicKey), Firmware: firmware, EnrolledAt: t0}))
	s.reading = b.reading(lead("pb-1", "elm", 7, 3.25, t0.Add(123456789*time.Nanosecond)))
	b.reading(lead("pb-1", "elm", 8, 4, t0.Add(time.Minute)))
	s.nirs = b.reading(tapproof.Reading{Utility: utility, Site: "plant", Device: "nirs-1", Seq: 3, Analyte: tapproof.Turbidity,
		Value: 0.42, Unit: tapproof.NTU, Method: tapproof.NIRS, SampledAt: t0, Firmware: firmware, Model: "pls-snv-2026.1"})
	s.notice = b.add([]byte(`{"type":"tapproof.notice.v1","alert":"individual_compliance-state-lab.flint-9"}`))
	s.low = b.labSample(1, "home-01", 3)
	s.high1 = b.labSample(2, "home-02", 22)
	b.labSample(3, "home-03", 5)
	s.high2 = b.labSample(4, "home-04", 31)
	b.add(b.sign(tapproof.InvalidationPayloadType, tapproof.Invalidation{Utility: utility, Lab: lab, SampleID: "L2025-002",
		SampleIndex: s.high1, Reason: "outside the protocol", Reviewer: "mi-egle", DecidedAt: t0}))
	s.fixture = b.done()
	return s
}

// memSource serves leaves from memory.
type memSource struct{ leaves []tapproof.Leaf }

func (s *memSource) Leaves(_ context.Context, start, count uint64) ([]tapproof.Leaf, error) {
	if start >= uint64(len(s.leaves)) {
		return nil, nil
	}
	return s.leaves[start:min(start+count, uint64(len(s.leaves)))], nil
}

// memStore holds points as InfluxDB would: one per series and time.
type memStore struct {
	points []audit.Point
}

// written returns the store tapproof's writer leaves for as: each point
// built by the writer's schema (influx.PointValues), grouped by series as
// InfluxDB answers a GROUP BY *.
func written(tb testing.TB, as []tapproof.Accepted) *memStore {
	tb.Helper()
	type keyed struct {
		series string
		p      audit.Point
	}
	ps := make([]keyed, 0, len(as))
	series := map[string]*audit.Series{}
	for _, a := range as {
		v, err := influx.PointValues(a)
		if err != nil {
			tb.Fatal(err)
		}
		tags := v.Tags()
		k := fmt.Sprint(tags)
		if series[k] == nil {
			series[k] = &audit.Series{Tags: tags}
		}
		ps = append(ps, keyed{k, pointOf(series[k], v.Time.UnixNano(), v.Fields())})
	}
	slices.SortStableFunc(ps, func(a, b keyed) int {
		if c := strings.Compare(a.series, b.series); c != 0 {
			return c
		}
		return cmp.Compare(a.p.Time, b.p.Time)
	})
	st := &memStore{points: make([]audit.Point, len(ps))}
	for i, k := range ps {
		st.points[i] = k.p
	}
	return st
}

// pointOf is the point InfluxDB holds of fields.
func pointOf(s *audit.Series, t int64, fields map[string]any) audit.Point {
	p := audit.Point{Series: s, Time: t}
	for k, v := range fields {
		switch {
		case k == influx.FieldValue:
			p.Value, p.Has = v.(float64), p.Has|audit.HasValue
		case k == influx.FieldDetectionLimit:
			p.DetectionLimit, p.Has = v.(float64), p.Has|audit.HasDetectionLimit
		case k == influx.FieldSeq:
			p.Seq, p.Has = v.(int64), p.Has|audit.HasSeq
		case k == influx.FieldLeafIndex:
			p.LeafIndex, p.Has = v.(int64), p.Has|audit.HasLeafIndex
		default:
			p.Other = append(p.Other, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return p
}

// find returns the index of the point of device and seq.
func (st *memStore) find(tb testing.TB, device string, seq int64) int {
	tb.Helper()
	for i, p := range st.points {
		if p.Series.Tags[influx.TagDevice] == device && p.Seq == seq {
			return i
		}
	}
	tb.Fatalf("no point of %s seq %d", device, seq)
	return -1
}

func (st *memStore) remove(i int) { st.points = slices.Delete(st.points, i, i+1) }

// withTags returns p in a series of its own, with its tags changed by set.
func withTags(p audit.Point, set map[string]string) audit.Point {
	tags := map[string]string{}
	for k, v := range p.Series.Tags {
		tags[k] = v
	}
	for k, v := range set {
		tags[k] = v
	}
	p.Series = &audit.Series{Tags: tags}
	return p
}

func (st *memStore) Points(_ context.Context, u string, fn func(*audit.Point) error) error {
	var p audit.Point
	for _, q := range st.points {
		if q.Series.Tags[influx.TagUtility] != u {
			continue
		}
		p = q
		if err := fn(&p); err != nil {
			return err
		}
	}
	return nil
}

// parallel runs fn(i) for i in [0, n) on every core.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}
