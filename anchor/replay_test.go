package anchor_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

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
