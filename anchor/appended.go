package anchor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ForeignLeafError reports that the tree Trillian serves is not the tree of
// the leaves tapproof appended: a leaf was written into Trillian behind
// tapproof's back (at an index tapproof had not appended, or in place of the
// leaf it appended), or Trillian's root hash does not match its leaves.
// Nothing was signed. It keeps the evidence.
type ForeignLeafError struct {
	Origin string
	Size   uint64 // the tree Trillian serves
	Root   []byte // its root hash
	// Expected is the root hash of the leaves tapproof appended, at Size;
	// nil if tapproof has appended fewer than Size leaves.
	Expected []byte
	// Index is the first leaf that differs, and Appended and Found the RFC
	// 6962 leaf hashes of the leaf tapproof appended there (nil: none) and
	// of the leaf Trillian holds there. If every leaf matches (Trillian's
	// root itself is wrong), Index is Size and both are nil.
	Index    uint64
	Appended []byte
	Found    []byte
}

// Error summarises the evidence on one line.
func (e *ForeignLeafError) Error() string {
	var leaf string
	switch {
	case e.Appended == nil && e.Found == nil:
		leaf = "no leaf differs, but the roots do"
	case e.Appended == nil:
		leaf = fmt.Sprintf("at index %d trillian holds leaf hash %x where tapproof appended none", e.Index, e.Found)
	default:
		leaf = fmt.Sprintf("at index %d trillian holds leaf hash %x where tapproof appended %x", e.Index, e.Found, e.Appended)
	}
	expected := "unknown: tapproof appended fewer leaves"
	if e.Expected != nil {
		expected = fmt.Sprintf("%x", e.Expected)
	}
	return fmt.Sprintf("log %s holds a leaf tapproof did not append: tree of size %d has root %x, the leaves tapproof appended hash to %s; %s",
		e.Origin, e.Size, e.Root, expected, leaf)
}

// maxPending bounds the leaf hashes Append keeps for the checkpointer
// (32 MiB): beyond, while no checkpoint is signed, the checkpointer reads
// the leaves back from its LeafSource instead.
const maxPending = 1 << 20

// appended is a Log's own account of the leaves tapproof appended, which
// Checkpoint checks Trillian's tree against before it signs: the compact
// range of the tree of the last checkpoint it checked, and the RFC 6962
// leaf hashes of the leaves Append stored since. Each leaf is hashed once,
// when appended; a check costs one hash per new leaf and a root.
type appended struct {
	mu sync.Mutex
	// checked is the compact range [0, n) of the last tree checked and
	// signed; nil until the first check, and after a restart.
	checked *compact.Range
	// pending holds the leaf hashes of the leaves Append stored at first,
	// first+1, ...; those before checked's end are dropped.
	first   uint64
	pending [][]byte
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// add records the leaves Append stored, in ascending index order. A leaf
// appended again is already recorded; one after a gap (a restart, another
// replica's appends) starts the record afresh, the checkpointer reading
// what lies between from its source.
func (a *appended) add(indices []uint64, hashes [][]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, idx := range indices {
		end := a.first + uint64(len(a.pending))
		switch {
		case idx >= a.first && idx < end:
			// Appended again: recorded already.
		case idx == end:
			if len(a.pending) < maxPending {
				a.pending = append(a.pending, hashes[i])
			}
		case a.checked != nil && idx < a.checked.End():
			// Under the tree checked last.
		case len(a.pending) < maxPending:
			a.first, a.pending = idx, [][]byte{hashes[i]}
		}
	}
}

// snapshot returns the checked range's copy and the pending hashes.
func (a *appended) snapshot() (*compact.Range, uint64, [][]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var r *compact.Range
	if a.checked != nil {
		r, _ = rangeFactory.NewRange(a.checked.Begin(), a.checked.End(), slices.Clone(a.checked.Hashes()))
	}
	return r, a.first, a.pending
}

// commit makes r, a tree checked and signed, the base of the next check.
func (a *appended) commit(r *compact.Range) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checked = r
	end := a.first + uint64(len(a.pending))
	switch {
	case end <= r.End():
		a.first, a.pending = r.End(), nil
	case a.first < r.End():
		a.pending = slices.Clone(a.pending[r.End()-a.first:])
		a.first = r.End()
	}
}

// checkAppended checks that the tree Trillian serves, of size and root,
// which extends prev (the tree of the last signed checkpoint, size 0 if
// none), is the tree of the leaves tapproof appended: those Append
// recorded, and, for any it did not see in this process, those src
// serves. It returns the compact range of the tree, to commit once the
// checkpoint is stored, or a *ForeignLeafError.
func (l *Log) checkAppended(ctx context.Context, src LeafSource, prevSize uint64, prevRoot []byte, size uint64, root []byte) (*compact.Range, error) {
	base, first, pending := l.appended.snapshot()
	if base == nil || base.End() != prevSize {
		var err error
		if base, err = l.rangeAt(ctx, prevSize, prevRoot); err != nil {
			return nil, err
		}
	}
	// The leaf hashes tapproof appended. size is Trillian's word, the
	// party being checked: the slice grows with what is found, not with it.
	want := make([][]byte, 0, min(size-prevSize, uint64(len(pending))+readBackPage))
	for i := prevSize; i < size; {
		if i >= first && i < first+uint64(len(pending)) {
			n := min(first+uint64(len(pending)), size) - i
			want = append(want, pending[i-first:i-first+n]...)
			i += n
			continue
		}
		// Not appended by this process (before a restart, by another
		// replica) or not yet: read until the next recorded leaf.
		stop := size
		if first > i && first < size {
			stop = first
		}
		leaves, err := src.Leaves(ctx, i, min(stop-i, readBackPage))
		if err != nil {
			return nil, fmt.Errorf("check %s against the leaves appended: %w", l.cfg.Origin, err)
		}
		for _, lf := range leaves {
			if lf.Index != i {
				return nil, fmt.Errorf("check %s against the leaves appended: source gave leaf %d where %d was due", l.cfg.Origin, lf.Index, i)
			}
			want = append(want, rfc6962.DefaultHasher.HashLeaf(lf.Bytes))
			i++
		}
		if len(leaves) == 0 {
			break // tapproof has appended no leaf at i: Trillian has
		}
	}
	foreign := &ForeignLeafError{Origin: l.cfg.Origin, Size: size, Root: root}
	r := base
	for _, h := range want {
		if err := r.Append(h, nil); err != nil {
			return nil, err
		}
	}
	if uint64(len(want)) == size-prevSize {
		got, err := rootOf(r)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(got, root) {
			return r, nil
		}
		foreign.Expected = got
	}
	if err := l.locateForeign(ctx, foreign, prevSize, want); err != nil {
		return nil, err
	}
	return nil, foreign
}

// locateForeign finds, in Trillian's leaves from start on, the first that
// is not the one whose hash want holds, and puts it in e; Index is e.Size
// if there is none.
func (l *Log) locateForeign(ctx context.Context, e *ForeignLeafError, start uint64, want [][]byte) error {
	for i := start; i < e.Size; {
		leaves, err := l.leaves(ctx, i, min(e.Size-i, readBackChunk))
		if err != nil {
			return err
		}
		if len(leaves) == 0 {
			return fmt.Errorf("leaf %d: %w", i, ErrNotIntegrated)
		}
		for _, lf := range leaves {
			found := rfc6962.DefaultHasher.HashLeaf(lf)
			if k := i - start; k >= uint64(len(want)) || !bytes.Equal(want[k], found) {
				e.Index, e.Found = i, found
				if k < uint64(len(want)) {
					e.Appended = want[k]
				}
				return nil
			}
			i++
		}
	}
	e.Index = e.Size
	return nil
}

// rangeAt returns the compact range of the tree of the given size and
// root, which a checkpoint this log signed commits to: from Trillian, the
// last leaf and its inclusion proof (whose hashes, for the last leaf, are
// those of the range before it, right to left), proven against root. Were
// Trillian to serve other hashes, they would not hash to root.
func (l *Log) rangeAt(ctx context.Context, size uint64, root []byte) (*compact.Range, error) {
	if size == 0 {
		return rangeFactory.NewEmptyRange(0), nil
	}
	leaf, err := l.Leaf(ctx, size-1)
	if err != nil {
		return nil, err
	}
	p, err := l.InclusionProof(ctx, size-1, size)
	if err != nil {
		return nil, err
	}
	hash := rfc6962.DefaultHasher.HashLeaf(leaf)
	inconsistent := func(err error) error {
		return &InconsistencyError{Origin: l.cfg.Origin, OldSize: size, OldRoot: root, NewSize: size, NewRoot: root, Proof: p,
			Err: fmt.Errorf("the last leaf of the checkpoint's tree and its inclusion proof do not hash to its root: %w", err)}
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, size-1, size, hash, p, root); err != nil {
		return nil, inconsistent(err)
	}
	hashes := slices.Clone(p)
	slices.Reverse(hashes)
	r, err := rangeFactory.NewRange(0, size-1, hashes)
	if err != nil {
		return nil, inconsistent(err)
	}
	if err := r.Append(hash, nil); err != nil {
		return nil, err
	}
	if got, err := rootOf(r); err != nil || !bytes.Equal(got, root) {
		return nil, inconsistent(errors.Join(err, fmt.Errorf("the range hashes to %x", got)))
	}
	return r, nil
}

func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}
