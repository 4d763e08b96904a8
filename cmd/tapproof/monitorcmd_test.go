package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/signed"
)

// serveLog serves leaves as the log of utility flint, as much of the
// tapproof API as a monitor's first pass reads, and returns its URL and the
// log's note verifier key.
func serveLog(t *testing.T, leaves [][]byte) (url, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "tapproof.local/log/flint")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData(leaves...)
	cp, err := anchor.SignCheckpoint(signer, uint64(len(leaves)), tree.Hash())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/logs/flint/checkpoint":
			w.Write(cp)
		case "/v1/logs/flint/leaves":
			start, _ := strconv.Atoi(r.URL.Query().Get("start"))
			count, _ := strconv.Atoi(r.URL.Query().Get("count"))
			enc := json.NewEncoder(w)
			for i := start; i < min(start+count, len(leaves)); i++ {
				enc.Encode(tapproof.Leaf{Index: uint64(i), Bytes: leaves[i]})
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, vkey
}

// TestMonitorComplianceFlags: --rounding and --jurisdiction reach the
// monitor's recomputation of compliance. Of 16 collection events of
// 2026H2, one has two samples (20 and 5 µg/L of lead): with the default
// half-up rounding (rank 14) and the federal 15 µg/L the period is not
// exceeded either way; rounding up (rank 15) under the federal level, or
// half-up under Michigan's 12 µg/L, one reduction exceeds and the other
// does not, a compliance_undetermined finding. Bad values are refused.
func TestMonitorComplianceFlags(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 8, 3, 8, 0, 0, 0, time.UTC)
	sample := func(id, site string, v float64) []byte {
		b, err := json.Marshal(tapproof.LabSample{Lab: "acme-labs", SampleID: id, Utility: "flint", Site: site, Tier: 1, Liter: tapproof.FirstLiter,
			Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1, CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour), Period: "2026H2"})
		if err != nil {
			t.Fatal(err)
		}
		env, err := signed.Sign(context.Background(), key, tapproof.LabSamplePayloadType, b)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	var leaves [][]byte
	for i := range 13 {
		leaves = append(leaves, sample(fmt.Sprintf("S%d", i), fmt.Sprintf("site-%d", i), 5))
	}
	leaves = append(leaves, sample("S13", "site-13", 13), sample("S14", "site-14", 20),
		sample("S15", "site-15", 20), sample("S15-redraw", "site-15", 5))
	url, vkey := serveLog(t, leaves)
	run := func(flags ...string) (string, error) {
		args := append([]string{"monitor", "--once", "--server", url, "--log", "flint=" + vkey, "--state", t.TempDir(),
			"--lab-key", "acme-labs=" + base64.StdEncoding.EncodeToString(pub)}, flags...)
		return runCmd(t, args...)
	}

	if out, err := run(); err != nil || strings.Contains(out, "compliance_undetermined") {
		t.Errorf("half-up, federal rules = %v:\n%s\nwant no finding", err, out)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--rounding", "up"}, "against the action level 15 ug/L (us-lead-lcr@v1)"},
		{[]string{"--jurisdiction", "flint=US-MI"}, "against the action level 12 ug/L (us-mi-lead@v1)"},
	} {
		out, err := run(tc.flags...)
		if !errors.Is(err, exitWrong) || !strings.Contains(out, "compliance_undetermined: monitoring period 2026H2, lead: undetermined from leaf 16 on") ||
			!strings.Contains(out, tc.want) {
			t.Errorf("%v = %v:\n%s\nwant a compliance_undetermined finding %s", tc.flags, err, out, tc.want)
		}
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--rounding", "nearest"}, "--rounding"},
		{[]string{"--jurisdiction", "lansing=US-MI"}, "no --log lansing"},
		{[]string{"--jurisdiction", "US-MI"}, "want utility=JURISDICTION"},
	} {
		if _, err := run(tc.flags...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v = %v, want an error naming %q", tc.flags, err, tc.want)
		}
	}
}
