package anchor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
)

func TestReplay(t *testing.T) {
	s, v := newLogKey(t)
	leaves := make([][]byte, 1000)
	for i := range leaves {
		leaves[i] = fmt.Appendf(nil, "leaf %d", i)
	}
	// checkpoint signs the tree of the first n leaves, as computed by the
	// merkle module's reference implementation.
	checkpoint := func(n int) []byte {
		tree := testonly.New(rfc6962.DefaultHasher)
		tree.AppendData(leaves[:n]...)
		cp, err := anchor.SignCheckpoint(s, uint64(n), tree.Hash())
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	replay := func(ls [][]byte) *anchor.Replay {
		p := anchor.NewReplay()
		for _, l := range ls {
			if err := p.Append(l); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	for _, n := range []int{0, 1, 2, 3, 511, 512, 513, 1000} {
		cp, err := anchor.OpenCheckpoint(checkpoint(n), v)
		if err != nil {
			t.Fatal(err)
		}
		if err := replay(leaves[:n]).Verify(cp); err != nil {
			t.Errorf("replay of %d leaves: %v", n, err)
		}
	}

	cp, err := anchor.OpenCheckpoint(checkpoint(1000), v)
	if err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(leaves)
	changed[700] = []byte("leaf 700, edited")
	dropped := slices.Delete(slices.Clone(leaves), 400, 401)
	swapped := slices.Clone(leaves)
	swapped[10], swapped[11] = swapped[11], swapped[10]
	forged := append(slices.Clone(dropped), []byte("leaf 1000"))
	for name, tc := range map[string]struct {
		leaves [][]byte
		want   string
	}{
		"a leaf changed":                  {changed, "a leaf was changed"},
		"a leaf dropped":                  {dropped, "999 leaves"},
		"two leaves swapped":              {swapped, "a leaf was changed"},
		"a leaf dropped and one appended": {forged, "a leaf was changed"},
		"one leaf more":                   {append(slices.Clone(leaves), []byte("x")), "1001 leaves"},
	} {
		if err := replay(tc.leaves).Verify(cp); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Verify = %v, want an error saying %q", name, err, tc.want)
		}
	}
}

// pages is a LeafSource whose function says what it serves for each
// request.
type pages func(start, count uint64) []tapproof.Leaf

func (p pages) Leaves(_ context.Context, start, count uint64) ([]tapproof.Leaf, error) {
	return p(start, count), nil
}

func TestReadBack(t *testing.T) {
	s, v := newLogKey(t)
	var leaves []tapproof.Leaf
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := range 2300 { // three pages
		l := tapproof.Leaf{Index: uint64(i), Bytes: fmt.Appendf(nil, "leaf %d", i)}
		leaves = append(leaves, l)
		tree.AppendData(l.Bytes)
	}
	signed, err := anchor.SignCheckpoint(s, uint64(len(leaves)), tree.Hash())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := anchor.OpenCheckpoint(signed, v)
	if err != nil {
		t.Fatal(err)
	}
	honest := func(ls []tapproof.Leaf) pages {
		return func(start, count uint64) []tapproof.Leaf {
			return ls[min(start, uint64(len(ls))):min(start+count, uint64(len(ls)))]
		}
	}
	var kept int
	if err := anchor.ReadBack(t.Context(), honest(leaves), cp, func(tapproof.Leaf) { kept++ }); err != nil || kept != len(leaves) {
		t.Fatalf("ReadBack of the whole log = %v after %d leaves", err, kept)
	}
	moved := slices.Clone(leaves)
	moved[5].Index = 6
	altered := slices.Clone(leaves)
	altered[1999] = tapproof.Leaf{Index: 1999, Bytes: []byte("leaf 1999, amended")}
	for name, tc := range map[string]struct {
		src  pages
		want string
	}{
		"the end left out": {honest(leaves[:1500]), "stopped at leaf 1500 of the 2300"},
		"a leaf moved":     {honest(moved), "leaf 6 served where leaf 5"},
		"a leaf altered":   {honest(altered), "changed"},
		"a page repeated":  {func(start, count uint64) []tapproof.Leaf { return leaves[:count] }, "leaf 0 served where leaf 1000"},
	} {
		if err := anchor.ReadBack(t.Context(), tc.src, cp, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadBack = %v, want an error saying %q", name, err, tc.want)
		}
	}
}
