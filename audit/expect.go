package audit

import (
	"context"
	"errors"
	"math"
	"runtime"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/sync/errgroup"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/influx"
	"github.com/tapproof/tapproof/signed"
)

// tagSet is the tag set of a point. extra holds the tags outside the
// schema, "key=value,..." sorted; no leaf's point has any.
type tagSet struct {
	utility, site, device, analyte, method, unit, model, extra string
}

// want is the point one leaf calls for, its tag set interned.
type want struct {
	time   int64
	value  float64
	dl     float64 // 0: no detection_limit field
	seq    uint64
	index  uint64
	series uint32
	state  uint8
}

// States of a want as the points go by.
const (
	unseen  uint8 = iota
	matched       // a point equal to it
	differs       // a point of it, not equal; kept in matcher.changed
)

// key identifies a reading: its device, interned, and sequence number.
type key struct {
	device uint32
	seq    uint64
}

// expected is what the leaves of a checkpoint's tree call for in InfluxDB.
type expected struct {
	size  uint64
	wants []want // in leaf index order
	byKey map[key]int32
	// dupKeys holds further wants of a key already taken: two leaves of one
	// reading, which ingest never accepts.
	dupKeys   map[key][]int32
	series    []tagSet
	seriesID  map[tagSet]uint32
	devices   map[string]uint32
	unwritten int
}

// decodeBatch is how many leaves one decoding job takes.
const decodeBatch = 1024

// Kinds of leaf, as decodeLeaf sees them.
const (
	noPoint   = iota // not a reading or lab sample: no point
	unwritten        // a reading or lab sample tapproof writes no point for
	hasPoint
)

type decoded struct {
	kind int
	v    influx.Values
}

// readExpected reads back the leaves cp covers from src, decoding them on
// every core while anchor.ReadBack checks them, and returns the points they
// call for. Nothing it returns is to be used unless the error is nil.
func readExpected(ctx context.Context, src Source, cp *log.Checkpoint) (*expected, error) {
	if cp.Size > math.MaxInt32 {
		return nil, errors.New("the checkpoint covers more leaves than an audit can hold")
	}
	e := &expected{
		size:     cp.Size,
		wants:    make([]want, 0, cp.Size),
		byKey:    make(map[key]int32, cp.Size),
		dupKeys:  map[key][]int32{},
		seriesID: map[tagSet]uint32{},
		devices:  map[string]uint32{},
	}
	type job struct {
		leaves []tapproof.Leaf
		out    chan []decoded
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan job, workers)
	order := make(chan chan []decoded, 2*workers)
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for j := range jobs {
				out := make([]decoded, len(j.leaves))
				for i, l := range j.leaves {
					out[i] = decodeLeaf(l)
				}
				j.out <- out
			}
			return nil
		})
	}
	// The merge takes the batches in leaf order, so wants are in index order.
	g.Go(func() error {
		for out := range order {
			select {
			case ds := <-out:
				for _, d := range ds {
					e.add(d)
				}
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	// Each batch takes its place in order before a worker takes it, so the
	// merge never waits for a batch no worker will decode.
	batch := make([]tapproof.Leaf, 0, decodeBatch)
	send := func() {
		j := job{leaves: batch, out: make(chan []decoded, 1)}
		batch = make([]tapproof.Leaf, 0, decodeBatch)
		select {
		case order <- j.out:
		case <-gctx.Done():
			return
		}
		select {
		case jobs <- j:
		case <-gctx.Done():
		}
	}
	readErr := anchor.ReadBack(gctx, src, cp, func(l tapproof.Leaf) {
		batch = append(batch, l)
		if len(batch) == decodeBatch {
			send()
		}
	})
	if readErr == nil && len(batch) > 0 {
		send()
	}
	close(jobs)
	close(order)
	if err := g.Wait(); readErr == nil {
		readErr = err
	}
	if readErr != nil {
		return nil, readErr
	}
	return e, nil
}

// decodeLeaf returns the point tapproof writes for leaf l, if any. It
// decodes as signed.LoggedReading and signed.LoggedLabSample do for
// InfluxDB's writer, parsing the envelope once to learn its type.
func decodeLeaf(l tapproof.Leaf) decoded {
	env, err := signed.Parse(l.Bytes, 0)
	if err != nil {
		return decoded{kind: noPoint} // a record tapproof wrote: notice, revocation, set-aside
	}
	var r tapproof.Reading
	switch env.PayloadType() {
	case tapproof.ReadingPayloadType:
		if r, err = env.Reading(); err == nil {
			r, err = r.Canonical()
		}
	case tapproof.LabSamplePayloadType:
		var s tapproof.LabSample
		if s, err = env.LabSample(); err == nil {
			if s, err = s.Normalize(); err == nil {
				r = s.Reading(l.Index)
			}
		}
	default:
		return decoded{kind: noPoint}
	}
	if err != nil {
		return decoded{kind: unwritten}
	}
	v, err := influx.PointValues(tapproof.Accepted{Reading: r, Index: l.Index})
	if err != nil {
		return decoded{kind: unwritten}
	}
	return decoded{kind: hasPoint, v: v}
}

// add records the point of one leaf, the leaves coming in index order.
func (e *expected) add(d decoded) {
	switch d.kind {
	case noPoint:
		return
	case unwritten:
		e.unwritten++
		return
	}
	v := &d.v
	ts := tagSet{utility: v.Utility, site: v.Site, device: v.Device, analyte: v.Analyte, method: v.Method, unit: v.Unit, model: v.Model}
	sid, ok := e.seriesID[ts]
	if !ok {
		sid = uint32(len(e.series))
		e.series = append(e.series, ts)
		e.seriesID[ts] = sid
	}
	dev, ok := e.devices[v.Device]
	if !ok {
		dev = uint32(len(e.devices))
		e.devices[v.Device] = dev
	}
	i := int32(len(e.wants))
	e.wants = append(e.wants, want{
		time: v.Time.UnixNano(), value: v.Value, dl: v.DetectionLimit,
		seq: uint64(v.Seq), index: uint64(v.LeafIndex), series: sid,
	})
	k := key{device: dev, seq: uint64(v.Seq)}
	if _, taken := e.byKey[k]; taken {
		e.dupKeys[k] = append(e.dupKeys[k], i)
		return
	}
	e.byKey[k] = i
}
