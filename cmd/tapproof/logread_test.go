package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
)

// TestReadLogCatchesOmissions: readLog accepts a log served whole and
// refuses one served with a leaf left out or changed.
func TestReadLogCatchesOmissions(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "tapproof.local/log/flint")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	var leaves [][]byte
	for i := range 2500 { // three pages
		leaves = append(leaves, fmt.Appendf(nil, `{"type":"tapproof.notice.v1","alert_id":"a-%d"}`, i))
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData(leaves...)
	cp, err := anchor.SignCheckpoint(signer, uint64(len(leaves)), tree.Hash())
	if err != nil {
		t.Fatal(err)
	}
	serve := func(served [][]byte) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/v1/logs/flint/checkpoint":
				w.Write(cp)
			case r.URL.Path == "/v1/logs/flint/leaves":
				start, _ := strconv.Atoi(r.URL.Query().Get("start"))
				count, _ := strconv.Atoi(r.URL.Query().Get("count"))
				enc := json.NewEncoder(w)
				for i := start; i < min(start+count, len(served)); i++ {
					enc.Encode(tapproof.Leaf{Index: uint64(i), Bytes: served[i]})
				}
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}

	got, signed, err := readLog(t.Context(), serve(leaves), "flint", verifier)
	if err != nil || len(got) != len(leaves) || string(signed) != string(cp) || got[2499].Index != 2499 {
		t.Fatalf("readLog of the whole log = %d leaves, %v", len(got), err)
	}
	changed := slices.Clone(leaves)
	changed[1700] = []byte(`{"type":"tapproof.notice.v1","alert_id":"a-1700","recipients":0}`)
	for name, tc := range map[string]struct {
		served [][]byte
		want   string
	}{
		"a leaf left out":                {slices.Delete(slices.Clone(leaves), 10, 11), "stopped at leaf 2499 of the 2500"},
		"a leaf left out, another added": {append(slices.Delete(slices.Clone(leaves), 10, 11), []byte("x")), "a leaf was changed"},
		"a leaf changed":                 {changed, "a leaf was changed"},
		"the end left out":               {leaves[:2000], "stopped at leaf 2000 of the 2500"},
	} {
		if _, _, err := readLog(t.Context(), serve(tc.served), "flint", verifier); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: readLog = %v, want an error saying %q", name, err, tc.want)
		}
	}
}
