package anchor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"google.golang.org/grpc"

	"github.com/tapproof/tapproof"
)

// provingLog is a fakeLog that also serves its integrated tree's root and
// proofs, computed by transparency-dev/merkle's reference tree, and counts
// the leaves read from it.
type provingLog struct {
	*fakeLog
	mu   sync.Mutex
	read int
}

func (p *provingLog) tree() *testonly.Tree {
	p.fakeLog.mu.Lock()
	defer p.fakeLog.mu.Unlock()
	t := testonly.New(rfc6962.DefaultHasher)
	for i := int64(0); i < p.integrated; i++ {
		t.AppendData(p.stored[i].LeafValue)
	}
	return t
}

func (p *provingLog) GetLeavesByRange(ctx context.Context, req *trillian.GetLeavesByRangeRequest, opts ...grpc.CallOption) (*trillian.GetLeavesByRangeResponse, error) {
	resp, err := p.fakeLog.GetLeavesByRange(ctx, req, opts...)
	p.mu.Lock()
	p.read += len(resp.GetLeaves())
	p.mu.Unlock()
	return resp, err
}

func (p *provingLog) GetLatestSignedLogRoot(context.Context, *trillian.GetLatestSignedLogRootRequest, ...grpc.CallOption) (*trillian.GetLatestSignedLogRootResponse, error) {
	t := p.tree()
	root, err := (&types.LogRootV1{TreeSize: t.Size(), RootHash: t.Hash()}).MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &trillian.GetLatestSignedLogRootResponse{SignedLogRoot: &trillian.SignedLogRoot{LogRoot: root}}, nil
}

func (p *provingLog) GetInclusionProof(_ context.Context, req *trillian.GetInclusionProofRequest, _ ...grpc.CallOption) (*trillian.GetInclusionProofResponse, error) {
	h, err := p.tree().InclusionProof(uint64(req.LeafIndex), uint64(req.TreeSize))
	return &trillian.GetInclusionProofResponse{Proof: &trillian.Proof{Hashes: h}}, err
}

func (p *provingLog) GetConsistencyProof(_ context.Context, req *trillian.GetConsistencyProofRequest, _ ...grpc.CallOption) (*trillian.GetConsistencyProofResponse, error) {
	h, err := p.tree().ConsistencyProof(uint64(req.FirstTreeSize), uint64(req.SecondTreeSize))
	return &trillian.GetConsistencyProofResponse{Proof: &trillian.Proof{Hashes: h}}, err
}

func (p *provingLog) leavesRead() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.read
}

// write stores leaf at index as someone other than tapproof would, and
// integrates what it can.
func (p *provingLog) write(index uint64, leaf []byte) {
	p.fakeLog.mu.Lock()
	p.stored[int64(index)] = &trillian.LogLeaf{LeafIndex: int64(index), LeafValue: leaf}
	p.fakeLog.mu.Unlock()
	p.integrate()
}

// journalOf serves leaves as the journal does, counting those served.
type journalOf struct {
	mu     sync.Mutex
	leaves [][]byte
	served int
}

func (j *journalOf) Leaves(_ context.Context, start, count uint64) ([]tapproof.Leaf, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []tapproof.Leaf
	for i := start; i < start+count && i < uint64(len(j.leaves)); i++ {
		out = append(out, tapproof.Leaf{Index: i, Bytes: j.leaves[i]})
	}
	j.served += len(out)
	return out, nil
}

func (j *journalOf) add(es []tapproof.Leaf) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range es {
		j.leaves = append(j.leaves, e.Bytes)
	}
}

func (j *journalOf) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.served
}

type memCheckpoints struct {
	signed []byte
	size   uint64
}

func (m *memCheckpoints) LatestCheckpoint(context.Context, string) ([]byte, error) {
	return m.signed, nil
}

func (m *memCheckpoints) PutCheckpoint(_ context.Context, _ string, size uint64, signed []byte) error {
	m.signed, m.size = signed, size
	return nil
}

// appendJournaled journals es and appends them, as the anchor sink does.
func appendJournaled(t *testing.T, l *Log, f *provingLog, j *journalOf, es []tapproof.Leaf) {
	t.Helper()
	j.add(es)
	if err := l.Append(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	f.integrate()
}

func TestCheckpointChecksAppendedLeaves(t *testing.T) {
	ctx := t.Context()
	f := &provingLog{fakeLog: newFakeLog()}
	j := &journalOf{}
	s, v := testKey(t, "tapproof.local/log/test")
	open := func() *Log {
		l, err := (&Client{log: f}).Log(LogConfig{TreeID: 1, Signer: s, Verifier: v})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l, store := open(), &memCheckpoints{}
	sign := func(l *Log, want uint64) {
		t.Helper()
		if _, grew, err := l.Checkpoint(ctx, store, j); err != nil || !grew || store.size != want {
			t.Fatalf("Checkpoint() = %v, %v; store at %d, want a checkpoint of %d", grew, err, store.size, want)
		}
	}
	sign(l, 0)
	appendJournaled(t, l, f, j, entries(0, 1000, "r"))
	sign(l, 1000)
	if n := j.count(); n != 0 {
		t.Errorf("the journal served %d leaves for leaves this log appended, want 0", n)
	}
	appendJournaled(t, l, f, j, entries(1000, 300, "r"))
	sign(l, 1300)

	// A restart: a new Log, nothing recorded. The range of the stored
	// checkpoint comes from Trillian, proven against the checkpoint; the
	// leaves the anchor appended before the restart and that the cursor
	// will not deliver again, from the journal.
	j.add(entries(1300, 50, "r"))
	if err := l.Append(ctx, entries(1300, 50, "r")); err != nil {
		t.Fatal(err)
	}
	f.integrate()
	l = open()
	readBefore := f.leavesRead()
	appendJournaled(t, l, f, j, entries(1350, 10, "r"))
	sign(l, 1360)
	if got := j.count(); got != 50 {
		t.Errorf("after a restart the journal served %d leaves, want the 50 appended before it", got)
	}
	if got := f.leavesRead() - readBefore; got != 1 {
		t.Errorf("after a restart %d leaves were read from trillian, want 1 (the checkpoint's last)", got)
	}

	// Behind tapproof's back: a leaf at the next index, which the
	// journal does not have.
	foreign := []byte("not tapproof's")
	f.write(1360, foreign)
	_, grew, err := l.Checkpoint(ctx, store, j)
	fe, ok := errors.AsType[*ForeignLeafError](err)
	if !ok || grew {
		t.Fatalf("Checkpoint() with a foreign leaf = %v, %v; want a *ForeignLeafError", grew, err)
	}
	want := &ForeignLeafError{Origin: "tapproof.local/log/test", Size: 1361, Root: f.tree().Hash(),
		Index: 1360, Found: rfc6962.DefaultHasher.HashLeaf(foreign)}
	if fmt.Sprint(fe) != fmt.Sprint(want) {
		t.Errorf("Checkpoint() = %v\nwant %v", fe, want)
	}
	if store.size != 1360 {
		t.Errorf("store at %d after the foreign leaf, want 1360: nothing signed", store.size)
	}

	// The journal has the leaf tapproof will append there: the foreign
	// one is in its place.
	j.add(entries(1360, 1, "r"))
	_, _, err = l.Checkpoint(ctx, store, j)
	fe, ok = errors.AsType[*ForeignLeafError](err)
	if !ok || fe.Index != 1360 || !bytes.Equal(fe.Appended, rfc6962.DefaultHasher.HashLeaf(j.leaves[1360])) ||
		!bytes.Equal(fe.Found, want.Found) || fe.Expected == nil || bytes.Equal(fe.Expected, fe.Root) {
		t.Errorf("Checkpoint() with the journal ahead = %v, want a *ForeignLeafError at 1360 naming both leaves and roots", err)
	}
	if err := l.Append(ctx, entries(1360, 1, "r")); !errors.As(err, new(*ConflictError)) {
		t.Errorf("Append(1360) = %v, want a *ConflictError", err)
	}
}

// A leaf written at an index tapproof appended and recorded, before
// Trillian integrated it, replaced by an attacker's (Trillian's storage
// written directly): the recorded hash, not the journal, is the evidence.
func TestCheckpointRecordedLeafReplaced(t *testing.T) {
	ctx := t.Context()
	f := &provingLog{fakeLog: newFakeLog()}
	j := &journalOf{}
	l := newFakeBackedLog(t, f.fakeLog, 0)
	l.log = f
	store := &memCheckpoints{}
	appendJournaled(t, l, f, j, entries(0, 10, "r"))
	if _, _, err := l.Checkpoint(ctx, store, j); err != nil {
		t.Fatal(err)
	}
	appendJournaled(t, l, f, j, entries(10, 5, "r"))
	f.write(12, []byte("swapped"))
	_, _, err := l.Checkpoint(ctx, store, j)
	fe, ok := errors.AsType[*ForeignLeafError](err)
	if !ok || fe.Index != 12 || !bytes.Equal(fe.Appended, rfc6962.DefaultHasher.HashLeaf(j.leaves[12])) {
		t.Fatalf("Checkpoint() = %v, want a *ForeignLeafError at 12", err)
	}
	if j.count() != 0 {
		t.Errorf("the journal served %d leaves, want none: every leaf was recorded", j.count())
	}
}

func TestRunEveryStopsOnForeignLeaf(t *testing.T) {
	fe := &ForeignLeafError{Origin: "o", Index: 3}
	err := runEvery(t.Context(), 0, func(context.Context) error { return fmt.Errorf("checkpoint: %w", fe) },
		func(err error) { t.Errorf("onErr(%v), want the error returned", err) })
	if !errors.Is(err, fe) {
		t.Errorf("runEvery() = %v, want the foreign leaf", err)
	}
}

// BenchmarkAppendChecked measures what checking costs per reading: the
// leaf hash Append records and the check at the next checkpoint.
func BenchmarkAppendChecked(b *testing.B) {
	leaf := bytes.Repeat([]byte("x"), 600) // a reading's envelope
	a := &appended{}
	hashes := make([][]byte, 1)
	var i uint64
	b.ReportAllocs()
	for b.Loop() {
		hashes[0] = rfc6962.DefaultHasher.HashLeaf(leaf)
		a.add([]uint64{i}, hashes)
		i++
		if i%1000 == 0 {
			r, first, pending := a.snapshot()
			if r == nil {
				r = rangeFactory.NewEmptyRange(0)
			}
			for _, h := range pending[r.End()-first:] {
				if err := r.Append(h, nil); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := rootOf(r); err != nil {
				b.Fatal(err)
			}
			a.commit(r)
		}
	}
}
