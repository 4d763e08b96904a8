package audit

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tapproof/tapproof/influx"
)

// matcher compares InfluxDB's points, one at a time, with the points the
// leaves call for.
type matcher struct {
	e           *expected
	points      int
	newer       int
	newestIndex uint64
	// The series of the last point, looked up once per series.
	last   *Series
	lastPS pointSeries
	// changed holds, for each want in state differs, the point found.
	changed map[int32]heldPoint
	without []Finding
}

// pointSeries is a point's series as the audit knows it.
type pointSeries struct {
	tags   tagSet
	id     int32 // the series of a leaf's point with these tags, -1 if none
	device int32 // the device of a leaf, -1 if none
}

// heldPoint is a copy of a point, kept beyond fn.
type heldPoint struct {
	ps pointSeries
	p  Point
}

func newMatcher(e *expected) *matcher {
	return &matcher{e: e, changed: map[int32]heldPoint{}}
}

// schemaTags are the tag keys of the schema.
var schemaTags = map[string]bool{
	influx.TagUtility: true, influx.TagSite: true, influx.TagDevice: true, influx.TagAnalyte: true,
	influx.TagMethod: true, influx.TagUnit: true, influx.TagModel: true,
}

func (m *matcher) seriesOf(s *Series) pointSeries {
	if s == m.last && s != nil {
		return m.lastPS
	}
	var tags map[string]string
	if s != nil {
		tags = s.Tags
	}
	ps := pointSeries{tags: tagSet{
		utility: tags[influx.TagUtility], site: tags[influx.TagSite], device: tags[influx.TagDevice],
		analyte: tags[influx.TagAnalyte], method: tags[influx.TagMethod], unit: tags[influx.TagUnit], model: tags[influx.TagModel],
	}, id: -1, device: -1}
	var extra []string
	for k, v := range tags {
		if !schemaTags[k] && v != "" {
			extra = append(extra, k+"="+v)
		}
	}
	slices.Sort(extra)
	ps.tags.extra = strings.Join(extra, ",")
	if id, ok := m.e.seriesID[ps.tags]; ok {
		ps.id = int32(id)
	}
	if d, ok := m.e.devices[ps.tags.device]; ok {
		ps.device = int32(d)
	}
	m.last, m.lastPS = s, ps
	return ps
}

// point takes one of InfluxDB's points.
func (m *matcher) point(p *Point) error {
	m.points++
	ps := m.seriesOf(p.Series)
	wi := int32(-1)
	if ps.device >= 0 && p.Has&HasSeq != 0 {
		wi = m.byKey(key{device: uint32(ps.device), seq: uint64(p.Seq)}, &ps, p)
	}
	if wi < 0 && p.Has&HasLeafIndex != 0 && p.LeafIndex >= 0 {
		if uint64(p.LeafIndex) >= m.e.size {
			m.newer++
			m.newestIndex = max(m.newestIndex, uint64(p.LeafIndex))
			return nil
		}
		wi = m.byIndex(uint64(p.LeafIndex))
		if wi < 0 {
			m.withoutLeaf(ps, p, "leaf "+strconv.FormatInt(p.LeafIndex, 10)+" is not a reading or lab sample")
			return nil
		}
	}
	if wi < 0 {
		m.withoutLeaf(ps, p, "no reading or lab sample leaf of this device and seq")
		return nil
	}
	w := &m.e.wants[wi]
	same := m.same(w, &ps, p)
	switch {
	case same && w.state == unseen:
		w.state = matched
	case same && w.state == differs:
		// The point found first was a second one; this is the leaf's.
		h := m.changed[wi]
		delete(m.changed, wi)
		m.withoutLeaf(h.ps, &h.p, secondPoint(w))
		w.state = matched
	case !same && w.state == unseen:
		h := heldPoint{ps: ps, p: *p}
		h.p.Other = slices.Clone(p.Other)
		m.changed[wi] = h
		w.state = differs
	default:
		m.withoutLeaf(ps, p, secondPoint(w))
	}
	return nil
}

func secondPoint(w *want) string {
	return "a second point of leaf " + strconv.FormatUint(w.index, 10) + ", whose own point is there"
}

// byKey returns the want of a reading key, -1 if none: of several leaves
// of one key, one whose point p equals, else one whose index p carries,
// else one not yet seen.
func (m *matcher) byKey(k key, ps *pointSeries, p *Point) int32 {
	first, ok := m.e.byKey[k]
	if !ok {
		return -1
	}
	dups := m.e.dupKeys[k]
	if len(dups) == 0 {
		return first
	}
	all := append([]int32{first}, dups...)
	for _, i := range all {
		if w := &m.e.wants[i]; w.state != matched && m.same(w, ps, p) {
			return i
		}
	}
	for _, i := range all {
		if p.Has&HasLeafIndex != 0 && m.e.wants[i].index == uint64(p.LeafIndex) {
			return i
		}
	}
	for _, i := range all {
		if m.e.wants[i].state == unseen {
			return i
		}
	}
	return first
}

// byIndex returns the want of the leaf at index, -1 if it calls for none.
func (m *matcher) byIndex(index uint64) int32 {
	ws := m.e.wants
	i := sort.Search(len(ws), func(i int) bool { return ws[i].index >= index })
	if i < len(ws) && ws[i].index == index {
		return int32(i)
	}
	return -1
}

// same reports whether p is exactly w's point.
func (m *matcher) same(w *want, ps *pointSeries, p *Point) bool {
	return ps.id == int32(w.series) && p.Time == w.time &&
		p.Has&HasValue != 0 && p.Value == w.value &&
		p.Has&HasSeq != 0 && p.Seq >= 0 && uint64(p.Seq) == w.seq &&
		p.Has&HasLeafIndex != 0 && p.LeafIndex >= 0 && uint64(p.LeafIndex) == w.index &&
		(p.Has&HasDetectionLimit != 0) == (w.dl != 0) && (w.dl == 0 || p.DetectionLimit == w.dl) &&
		len(p.Other) == 0
}

// withoutLeaf records p as a point no leaf accounts for.
func (m *matcher) withoutLeaf(ps pointSeries, p *Point, note string) {
	f := Finding{
		Kind: WithoutLeaf, Device: ps.tags.device, Site: ps.tags.site, Analyte: ps.tags.analyte,
		Method: ps.tags.method, Unit: ps.tags.unit, Time: time.Unix(0, p.Time).UTC(), Note: note,
	}
	if p.Has&HasSeq != 0 && p.Seq >= 0 {
		f.Seq = uint64(p.Seq)
	}
	if p.Has&HasLeafIndex != 0 && p.LeafIndex >= 0 {
		i := uint64(p.LeafIndex)
		f.Index = &i
	}
	if p.Has&HasValue != 0 {
		f.Value = p.Value
	}
	m.without = append(m.without, f)
}

// findings returns every finding, once all points have been seen, in leaf
// index order (findings without an index last).
func (m *matcher) findings() []Finding {
	out := m.without
	for i := range m.e.wants {
		w := &m.e.wants[i]
		switch w.state {
		case unseen:
			out = append(out, m.wantFinding(Missing, w))
		case differs:
			f := m.wantFinding(Changed, w)
			h := m.changed[int32(i)]
			f.Diffs = m.diff(w, &h.ps, &h.p)
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		if c := cmp.Compare(indexOrMax(a.Index), indexOrMax(b.Index)); c != 0 {
			return c
		}
		if c := cmp.Compare(slices.Index(Kinds, a.Kind), slices.Index(Kinds, b.Kind)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Device, b.Device); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
			return c
		}
		return a.Time.Compare(b.Time)
	})
	if out == nil {
		out = []Finding{}
	}
	return out
}

func indexOrMax(i *uint64) uint64 {
	if i == nil {
		return ^uint64(0)
	}
	return *i
}

// wantFinding describes w's point.
func (m *matcher) wantFinding(k Kind, w *want) Finding {
	ts := &m.e.series[w.series]
	i := w.index
	return Finding{
		Kind: k, Device: ts.device, Seq: w.seq, Index: &i, Site: ts.site, Analyte: ts.analyte,
		Method: ts.method, Value: w.value, Unit: ts.unit, Time: time.Unix(0, w.time).UTC(),
	}
}

// diff lists how p differs from w's point.
func (m *matcher) diff(w *want, ps *pointSeries, p *Point) []Diff {
	var out []Diff
	add := func(what, want, got string) {
		if want != got {
			out = append(out, Diff{What: what, Want: want, Got: got})
		}
	}
	ws := &m.e.series[w.series]
	for _, t := range []struct{ key, want, got string }{
		{influx.TagUtility, ws.utility, ps.tags.utility},
		{influx.TagSite, ws.site, ps.tags.site},
		{influx.TagDevice, ws.device, ps.tags.device},
		{influx.TagAnalyte, ws.analyte, ps.tags.analyte},
		{influx.TagMethod, ws.method, ps.tags.method},
		{influx.TagUnit, ws.unit, ps.tags.unit},
		{influx.TagModel, ws.model, ps.tags.model},
	} {
		add("tag "+t.key, orNone(t.want), orNone(t.got))
	}
	if ps.tags.extra != "" {
		add("other tags", None, ps.tags.extra)
	}
	add("time", formatTime(w.time), formatTime(p.Time))
	add("field "+influx.FieldValue, formatFloat(w.value), fieldFloat(p, HasValue, p.Value))
	add("field "+influx.FieldSeq, strconv.FormatUint(w.seq, 10), fieldInt(p, HasSeq, p.Seq))
	add("field "+influx.FieldLeafIndex, strconv.FormatUint(w.index, 10), fieldInt(p, HasLeafIndex, p.LeafIndex))
	wantDL := None
	if w.dl != 0 {
		wantDL = formatFloat(w.dl)
	}
	add("field "+influx.FieldDetectionLimit, wantDL, fieldFloat(p, HasDetectionLimit, p.DetectionLimit))
	if len(p.Other) > 0 {
		add("other fields", None, strings.Join(p.Other, ","))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return None
	}
	return s
}

func formatTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func fieldFloat(p *Point, f Fields, v float64) string {
	if p.Has&f == 0 {
		return None
	}
	return formatFloat(v)
}

func fieldInt(p *Point, f Fields, v int64) string {
	if p.Has&f == 0 {
		return None
	}
	return strconv.FormatInt(v, 10)
}
