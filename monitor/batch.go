package monitor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/sync/errgroup"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
)

// MaxPage is the most leaves the monitor asks the server for at once, the
// API's limit (httpapi.MaxLeaves).
const MaxPage = 1000

// Bounds on what a batch keeps of its leaf findings: beyond them the
// findings are counted, not kept.
const (
	maxKeptProblems  = 100_000
	maxKeptLeafBytes = 64 << 20
)

// leafProblem is a finding on one leaf of a batch.
type leafProblem struct {
	index uint64
	typ   leafType
	leaf  []byte // nil once maxKeptLeafBytes are kept
	problem
}

// batch is what reading a log's new leaves found: the frontier and devices
// after them, and the findings on them.
type batch struct {
	frontier *compact.Range
	devices  map[string]Device
	counts   Counts
	problems []leafProblem   // by index
	dropped  map[Kind]uint64 // findings beyond maxKeptProblems
	// compliance are the lab sample and invalidation leaves, in order.
	compliance []tapproof.Leaf

	mu        sync.Mutex
	keptBytes int
}

func (b *batch) add(e *entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) >= maxKeptProblems {
		b.dropped[e.problem.kind]++
		return
	}
	p := leafProblem{index: e.index, typ: e.typ, problem: *e.problem}
	if b.keptBytes+len(e.leaf) <= maxKeptLeafBytes {
		p.leaf = e.leaf
		b.keptBytes += len(e.leaf)
	}
	b.problems = append(b.problems, p)
}

func (b *batch) count(e *entry) {
	c := &b.counts
	switch e.typ {
	case typeReading:
		c.Readings++
	case typeEnrollment:
		c.Enrollments++
	case typeRevocation:
		c.Revocations++
	case typeLabSample:
		c.LabSamples++
	case typeInvalidation:
		c.Invalidations++
	case typeNotice:
		c.Notices++
	case typeSetAside:
		c.SetAside++
	default:
		c.Other++
	}
	if e.unchecked {
		c.Unchecked++
	}
}

// page is a run of consecutive leaves, parsed.
type page struct {
	entries []entry
	verify  []int // the entries whose signature is still to be verified
}

// leavesError reports leaves served other than where the checkpoint puts
// them: an inconsistent_leaves finding, not a failure to reach the server.
type leavesError struct{ msg string }

// Error says which leaf was out of place.
func (e *leavesError) Error() string { return e.msg }

// signatureBatch is how many readings' signatures a worker checks at once
// (signed.Batch): half the cost of one at a time from a few dozen on, and
// a batch with a bad signature in it is checked again one by one.
const signatureBatch = 64

// readBatch reads leaves [st.Size, to) of the log and checks them on top
// of st. Pages are fetched and parsed a few at a time, concurrently; one
// goroutine takes them in order, appends each leaf hash to the frontier
// and checks the leaf against the devices before it; and workers verify
// the readings' signatures, in batches, in any order. The error is a *leavesError if
// the server served leaves out of place, ctx's error, or a failure to
// fetch.
func (f *follower) readBatch(ctx context.Context, st *State, to uint64) (*batch, error) {
	rng, err := st.frontier()
	if err != nil {
		return nil, err
	}
	b := &batch{frontier: rng, devices: maps.Clone(st.Devices), dropped: map[Kind]uint64{}}
	if b.devices == nil {
		b.devices = map[string]Device{}
	}
	workers, pageSize := f.m.workers, f.m.pageSize

	type result struct {
		p   *page
		err error
	}
	g, gctx := errgroup.WithContext(ctx)
	futures := make(chan chan result, f.m.prefetch)
	g.Go(func() error {
		defer close(futures)
		for start := st.Size; start < to; start += pageSize {
			end := min(start+pageSize, to)
			fut := make(chan result, 1)
			select {
			case futures <- fut:
			case <-gctx.Done():
				return nil
			}
			g.Go(func() error {
				p, err := f.fetchPage(gctx, start, end, to)
				fut <- result{p, err}
				return nil
			})
		}
		return nil
	})
	verify := make(chan *page, workers)
	for range workers {
		g.Go(func() error {
			var sigs signed.Batch
			for p := range verify {
				for chunk := range slices.Chunk(p.verify, signatureBatch) {
					for _, i := range chunk {
						sigs.Add(p.entries[i].env, p.entries[i].key)
					}
					for k, err := range sigs.Verify(gctx) {
						switch e := &p.entries[chunk[k]]; {
						case err != nil:
							e.badSignature()
							b.add(e)
						case e.notPermitted != nil:
							e.problem = e.notPermitted
							b.add(e)
						}
					}
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(verify)
		for fut := range futures {
			var r result
			select {
			case r = <-fut:
			case <-gctx.Done():
				return gctx.Err()
			}
			if r.err != nil {
				return r.err
			}
			p := r.p
			for i := range p.entries {
				e := &p.entries[i]
				if err := b.frontier.Append(e.hash, nil); err != nil {
					return fmt.Errorf("frontier: %w", err)
				}
				sequence(e, b.devices)
				b.count(e)
				if e.typ == typeLabSample || e.typ == typeInvalidation {
					b.compliance = append(b.compliance, tapproof.Leaf{Index: e.index, Bytes: e.leaf})
				}
				switch {
				case e.problem != nil:
					b.add(e)
				case e.key != nil:
					p.verify = append(p.verify, i)
				}
			}
			select {
			case verify <- p:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return gctx.Err()
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.frontier.End() != to {
		return nil, fmt.Errorf("read leaves up to %d of %d", b.frontier.End(), to)
	}
	slices.SortFunc(b.problems, func(x, y leafProblem) int {
		switch {
		case x.index < y.index:
			return -1
		case x.index > y.index:
			return 1
		}
		return 0
	})
	return b, nil
}

// fetchPage fetches and parses leaves [start, end) of the tree of size to,
// asking again from where a short answer stopped.
func (f *follower) fetchPage(ctx context.Context, start, end, to uint64) (*page, error) {
	p := &page{entries: make([]entry, 0, end-start)}
	next := start
	for next < end {
		ls, err := f.m.cfg.API.Leaves(ctx, f.utility, next, end-next)
		if err != nil {
			return nil, fmt.Errorf("leaves from %d: %w", next, err)
		}
		if len(ls) == 0 {
			return nil, fmt.Errorf("leaves from %d: the server served none, though its checkpoint covers %d", next, to)
		}
		for _, l := range ls {
			if next >= end {
				return nil, &leavesError{fmt.Sprintf("asked for leaves %d to %d, the server served more", start, end-1)}
			}
			if l.Index != next {
				return nil, &leavesError{fmt.Sprintf("the server served leaf %d where leaf %d was due", l.Index, next)}
			}
			p.entries = append(p.entries, f.checker.parse(ctx, next, l.Bytes))
			next++
		}
	}
	return p, nil
}

// isLeavesError reports whether err is a *leavesError.
func isLeavesError(err error) bool {
	_, ok := errors.AsType[*leavesError](err)
	return ok
}
