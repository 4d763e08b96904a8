package anchor

import (
	"bytes"
	"context"
	"fmt"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/tapproof/tapproof"
)

// Replay recomputes a log's RFC 6962 root hash from its leaves, given in
// order from leaf 0, in constant memory. Checked against a signed
// checkpoint, it proves that the leaves are exactly the log's first Size
// leaves: none left out, none added, none changed. This is how an auditor
// who reads a whole log back knows that nothing was dropped from what it
// computes on, which inclusion proofs of chosen leaves cannot show.
type Replay struct {
	r *compact.Range
}

// NewReplay returns a Replay of an empty log.
func NewReplay() *Replay {
	f := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	return &Replay{r: f.NewEmptyRange(0)}
}

// Append adds the next leaf.
func (p *Replay) Append(leaf []byte) error {
	return p.r.Append(rfc6962.DefaultHasher.HashLeaf(leaf), nil)
}

// Size is the number of leaves appended.
func (p *Replay) Size() uint64 { return p.r.End() }

// Root is the root hash of the leaves appended.
func (p *Replay) Root() ([]byte, error) {
	if p.r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return p.r.GetRootHash(nil)
}

// Verify checks that the leaves appended are those of the tree cp commits
// to. cp should come from OpenCheckpoint, which checked its signature.
func (p *Replay) Verify(cp *log.Checkpoint) error {
	if p.Size() != cp.Size {
		return fmt.Errorf("replay: %d leaves, but the checkpoint is of a tree of %d", p.Size(), cp.Size)
	}
	root, err := p.Root()
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if !bytes.Equal(root, cp.Hash) {
		return fmt.Errorf("replay: the %d leaves hash to root %x, but the checkpoint commits to %x: a leaf was changed, left out or reordered", cp.Size, root, cp.Hash)
	}
	return nil
}

// LeafSource serves a log's leaves from start on: at most count, fewer past
// the end of the log. httpapi.Client.Log implements it.
type LeafSource interface {
	Leaves(ctx context.Context, start, count uint64) ([]tapproof.Leaf, error)
}

// readBackPage is how many leaves ReadBack asks a source for at once.
const readBackPage = 1000

// ReadBack reads every leaf that checkpoint cp covers from src, in order,
// and hands each to keep. It trusts nothing src says: each leaf must come
// at its index, and together they must hash to cp's root, so a leaf left
// out, added, moved or altered is an error. keep sees each leaf before the
// root is checked; whatever it kept is proven only if ReadBack returns nil.
func ReadBack(ctx context.Context, src LeafSource, cp *log.Checkpoint, keep func(tapproof.Leaf)) error {
	replay := NewReplay()
	for replay.Size() < cp.Size {
		start := replay.Size()
		page, err := src.Leaves(ctx, start, min(cp.Size-start, readBackPage))
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return fmt.Errorf("%s: the source stopped at leaf %d of the %d the checkpoint covers", cp.Origin, start, cp.Size)
		}
		for _, l := range page {
			if l.Index != replay.Size() || l.Index >= cp.Size {
				return fmt.Errorf("%s: leaf %d served where leaf %d of %d was due", cp.Origin, l.Index, replay.Size(), cp.Size)
			}
			if err := replay.Append(l.Bytes); err != nil {
				return err
			}
			if keep != nil {
				keep(l)
			}
		}
	}
	if err := replay.Verify(cp); err != nil {
		return fmt.Errorf("%s: %w", cp.Origin, err)
	}
	return nil
}
