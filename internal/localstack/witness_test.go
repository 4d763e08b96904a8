package localstack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	tnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// TestWitnessVerifierKey checks the verifier key derivation against
// transparency-dev/formats, which converts a plain Ed25519 vkey (from
// x/mod's note package) to the cosignature/v1 form independently.
func TestWitnessVerifierKey(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const name = "witness.state-regulator.example"
	got, err := cosignatureV1VerifierKey(name, pub)
	if err != nil {
		t.Fatalf("cosignatureV1VerifierKey: %v", err)
	}
	plain, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tnote.VKeyToCosignatureV1(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("cosignatureV1VerifierKey = %q, want %q", got, want)
	}
	if _, err := tnote.NewVerifierForCosignatureV1(got); err != nil {
		t.Errorf("NewVerifierForCosignatureV1(%q): %v", got, err)
	}
	for _, bad := range []string{"", "a b", "a+b"} {
		if _, err := cosignatureV1VerifierKey(bad, pub); err == nil {
			t.Errorf("cosignatureV1VerifierKey(%q) succeeded, want an error", bad)
		}
	}

	fp, err := sshFingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
		t.Errorf("sshFingerprint = %q, want SHA256: and 43 base64 characters", fp)
	}
}

// TestWitness runs a real litewitness: it registers a log, cosigns a first
// checkpoint and a larger one with a consistency proof, refuses a wrong
// old size and a bad proof, and after a SIGKILL and a restart still knows
// the log's size and signs with the same key.
func TestWitness(t *testing.T) {
	if testing.Short() {
		t.Skip("localstack: a real litewitness is skipped in -short mode")
	}
	begin := time.Now()
	w := WitnessForTest(t, "witness.state-regulator.example")
	t.Logf("WitnessForTest took %v", time.Since(begin).Round(time.Millisecond))
	ctx := t.Context()

	wv, err := tnote.NewVerifierForCosignatureV1(w.VerifierKey)
	if err != nil {
		t.Fatalf("NewVerifierForCosignatureV1(%q): %v", w.VerifierKey, err)
	}
	if logged := tail(w.LogFile(), 64<<10); !strings.Contains(logged, "vkey="+w.VerifierKey) {
		t.Errorf("litewitness did not log vkey=%s; its log:\n%s", w.VerifierKey, logged)
	}

	const origin = "tapproof.example/log/test"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	// Registering is fine while litewitness runs, and idempotent.
	for range 2 {
		if err := w.AddLog(ctx, origin, vkey); err != nil {
			t.Fatalf("AddLog: %v", err)
		}
	}
	if err := w.AddLog(ctx, "other.example/log", vkey); err == nil {
		t.Errorf("AddLog with a key named %q for another origin succeeded, want an error", origin)
	}

	tree := &testTree{}
	checkpoint := func(n int) []byte {
		t.Helper()
		tree.grow(n)
		signed, err := note.Sign(&note.Note{Text: string(log.Checkpoint{
			Origin: origin, Size: uint64(n), Hash: tree.root(n),
		}.Marshal())}, logSigner)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	request := func(old int, proof [][]byte, cp []byte) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "old %d\n", old)
		for _, h := range proof {
			fmt.Fprintf(&b, "%s\n", base64.StdEncoding.EncodeToString(h))
		}
		b.WriteString("\n")
		b.Write(cp)
		return b.Bytes()
	}
	cosigned := func(what string, cp []byte, old int, proof [][]byte) {
		t.Helper()
		status, ctype, body := postCheckpoint(ctx, t, w, request(old, proof, cp))
		if status != http.StatusOK {
			t.Fatalf("%s: status %d (%s), want 200: %q", what, status, ctype, body)
		}
		t.Logf("%s: 200 %s: %q", what, ctype, body)
		checkCosignature(t, w, wv, cp, body)
	}

	// A first checkpoint: old 0 and no proof.
	cp3 := checkpoint(3)
	cosigned("size 3 from old 0", cp3, 0, nil)

	// A larger one, with a consistency proof from 3.
	cp7 := checkpoint(7)
	cosigned("size 7 from old 3", cp7, 3, tree.consistency(t, 3, 7))

	// A wrong old size: 409 with the witness's size.
	cp8 := checkpoint(8)
	status, ctype, body := postCheckpoint(ctx, t, w, request(3, tree.consistency(t, 3, 8), cp8))
	if status != http.StatusConflict || body != "7\n" || ctype != "text/x.tlog.size" {
		t.Errorf("old 3 against size 7: %d %q %q, want 409 text/x.tlog.size \"7\\n\"", status, ctype, body)
	}

	// A bad proof: 422.
	bad := tree.consistency(t, 7, 8)
	bad[0] = bytes.Repeat([]byte{0xff}, 32)
	status, ctype, body = postCheckpoint(ctx, t, w, request(7, bad, cp8))
	if status != http.StatusUnprocessableEntity {
		t.Errorf("bad proof: %d %q %q, want 422", status, ctype, body)
	}
	t.Logf("bad proof: %d %s: %q", status, ctype, body)

	// A crash and a restart: same port, size and key.
	if err := w.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := httpReady(ctx, w.URL+"/"); err == nil {
		t.Fatalf("litewitness answers after Kill")
	}
	begin = time.Now()
	if err := w.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("Restart after Kill took %v", time.Since(begin).Round(time.Millisecond))
	status, ctype, body = postCheckpoint(ctx, t, w, request(0, nil, cp8))
	if status != http.StatusConflict || body != "7\n" {
		t.Errorf("old 0 after restart: %d %q %q, want 409 \"7\\n\"", status, ctype, body)
	}
	cosigned("size 8 from old 7 after restart", cp8, 7, tree.consistency(t, 7, 8))

	// A clean stop and restart too.
	if err := w.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := w.Restart(ctx); err != nil {
		t.Fatalf("Restart after Stop: %v", err)
	}
	cp12 := checkpoint(12)
	cosigned("size 12 from old 8 after stop", cp12, 8, tree.consistency(t, 8, 12))
}

// postCheckpoint sends body to the witness's add-checkpoint endpoint.
func postCheckpoint(ctx context.Context, t *testing.T, w *Witness, body []byte) (status int, contentType, respBody string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST add-checkpoint: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST add-checkpoint: %v", err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// checkCosignature checks that cosig is one signature line by the witness
// over the signed checkpoint cp, with a recent timestamp.
func checkCosignature(t *testing.T, w *Witness, wv note.Verifier, cp []byte, cosig string) {
	t.Helper()
	if !strings.HasPrefix(cosig, "— "+w.Name+" ") || strings.Count(cosig, "\n") != 1 || !strings.HasSuffix(cosig, "\n") {
		t.Fatalf("cosignature %q is not one signature line by %s", cosig, w.Name)
	}
	n, err := note.Open(append(bytes.Clone(cp), cosig...), note.VerifierList(wv))
	if err != nil {
		t.Fatalf("note.Open with the witness's verifier: %v", err)
	}
	text, _, _ := strings.Cut(string(cp), "\n\n")
	if n.Text != text+"\n" || len(n.Sigs) != 1 || n.Sigs[0].Name != w.Name {
		t.Fatalf("opened note: text %q, sigs %+v", n.Text, n.Sigs)
	}
	ts, err := tnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil {
		t.Fatalf("cosignature timestamp: %v", err)
	}
	if d := time.Since(ts); d < -time.Minute || d > time.Minute {
		t.Errorf("cosignature timestamp %v is %v from now", ts, d)
	}
}

// testTree is an RFC 6962 Merkle tree of made-up leaves, kept whole.
type testTree struct{ hashes [][]byte } // leaf hashes

func (tt *testTree) grow(n int) {
	for i := len(tt.hashes); i < n; i++ {
		tt.hashes = append(tt.hashes, rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "reading %d", i)))
	}
}

// root is the tree head of the first n leaves.
func (tt *testTree) root(n int) []byte { return mth(tt.hashes[:n]) }

// consistency is the consistency proof from m leaves to n (RFC 6962
// 2.1.2), checked with transparency-dev/merkle's verifier.
func (tt *testTree) consistency(t *testing.T, m, n int) [][]byte {
	t.Helper()
	p := subproof(m, tt.hashes[:n], true)
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(m), uint64(n), p, tt.root(m), tt.root(n)); err != nil {
		t.Fatalf("test tree: consistency %d->%d: %v", m, n, err)
	}
	return p
}

// mth is RFC 6962's MTH over leaf hashes d.
func mth(d [][]byte) []byte {
	switch len(d) {
	case 0:
		return rfc6962.DefaultHasher.EmptyRoot()
	case 1:
		return d[0]
	}
	k := splitPoint(len(d))
	return rfc6962.DefaultHasher.HashChildren(mth(d[:k]), mth(d[k:]))
}

// subproof is RFC 6962's SUBPROOF(m, d, b).
func subproof(m int, d [][]byte, b bool) [][]byte {
	n := len(d)
	if m == n {
		if b {
			return nil
		}
		return [][]byte{mth(d)}
	}
	k := splitPoint(n)
	if m <= k {
		return append(subproof(m, d[:k], b), mth(d[k:]))
	}
	return append(subproof(m-k, d[k:], false), mth(d[:k]))
}

// splitPoint is the largest power of two below n, for n > 1.
func splitPoint(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// TestWitnessLongDir starts a witness on a Dir whose path is too long for
// a Unix socket, so the agent's socket goes to a directory of its own.
func TestWitnessLongDir(t *testing.T) {
	if testing.Short() {
		t.Skip("localstack: a real litewitness is skipped in -short mode")
	}
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", maxSocketPath))
	w, err := StartWitness(t.Context(), WitnessConfig{Name: "witness.example", Dir: dir, Log: tbWriter{t}})
	if err != nil {
		t.Fatalf("StartWitness: %v", err)
	}
	agentTmp := w.agentTmp
	if agentTmp == "" || !exists(filepath.Join(agentTmp, "agent.sock")) {
		t.Errorf("agent socket directory %q has no agent.sock", agentTmp)
	}
	if err := httpReady(t.Context(), w.URL+"/"); err != nil {
		t.Errorf("litewitness: %v", err)
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if exists(agentTmp) {
		t.Errorf("Stop left %s", agentTmp)
	}
}
