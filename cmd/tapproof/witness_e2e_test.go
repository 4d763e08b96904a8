package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/simulate"
	"github.com/tapproof/tapproof/witness"
)

// TestWitnessedCheckpoints runs serve with two real litewitness witnesses
// and a policy that needs both: checkpoints and bundles are served cosigned
// by both, `verify --witness-policy` passes on them and names the witness
// whose cosignature is removed or who never signed; a witness down stops
// only the witnessed checkpoints, not ingest, and is on /metrics; and a
// second history of the log, signed with its own key, is refused by the
// witnesses.
func TestWitnessedCheckpoints(t *testing.T) {
	st := localstack.ForTest(t)
	state := localstack.WitnessForTest(t, "witness.state-regulator.example")
	uni := localstack.WitnessForTest(t, "witness.university.example")
	policyText := fmt.Sprintf("witness state %s %s\nwitness uni %s %s\ngroup both all state uni\nquorum both\n",
		state.VerifierKey, state.URL, uni.VerifierKey, uni.URL)
	policyFile := writeFile(t, "policy.txt", policyText)
	policy, err := witness.ParsePolicy([]byte(policyText))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	cfg := testServeConfig(t, st, dataDir)
	cfg.WitnessPolicy = policy
	in := startServeConfig(t, cfg)
	ctx := t.Context()

	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 1, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	// The witnesses follow the log once its operator registers it with
	// them, out of band; until then they refuse it and nothing is served.
	li := logInfo(t, in.api, "flint")
	for _, w := range []*localstack.Witness{state, uni} {
		if err := w.AddLog(ctx, li.Origin, li.VerifierKey); err != nil {
			t.Fatal(err)
		}
	}
	s := fleet.Sensors[0]
	js := devicesOf(t, in).js(s)
	var last uint64
	for i := range 3 {
		r := s.Lead(float64(2+i), time.Now())
		if _, err := s.Publish(ctx, js, r); err != nil {
			t.Fatal(err)
		}
		last = r.Seq
	}
	want := uint64(len(fleet.Sensors) + 3)
	waitWitnessed(t, in.api, "flint", want)

	// The bundle is at the witnessed checkpoint and verifies with the policy.
	code, bundle := get(t, fmt.Sprintf("%s/v1/readings/%s/%d/bundle", in.api, s.Device.ID, last))
	if code != 200 {
		t.Fatalf("bundle: %d %s", code, bundle)
	}
	out, err := runCmd(t, "verify", "--log-key", li.VerifierKey, "--witness-policy", policyFile, writeFile(t, "bundle.json", string(bundle)))
	if err != nil || !strings.Contains(out, "cosigned by witness.state-regulator.example, witness.university.example") {
		t.Fatalf("verify --witness-policy: %v\n%s", err, out)
	}

	// Without the university's cosignature, it fails and says whose is missing.
	out, err = runCmd(t, "verify", "--log-key", li.VerifierKey, "--witness-policy", policyFile,
		writeFile(t, "stripped.json", string(stripCosignature(t, bundle, "witness.university.example"))))
	if !isExit(err, 1) || !strings.Contains(out, "FAIL witnesses") || !strings.Contains(out, "no cosignature from witness.university.example") {
		t.Fatalf("verify of a bundle without a cosignature: %v\n%s", err, out)
	}
	// Nor does a policy asking for a witness that never saw the log.
	_, nvkey := newCosignerKey(t, "witness.ngo.example")
	strict := writeFile(t, "strict.txt", policyText+fmt.Sprintf("witness ngo %s http://127.0.0.1:1\ngroup three all state uni ngo\nquorum three\n", nvkey))
	out, err = runCmd(t, "verify", "--log-key", li.VerifierKey, "--witness-policy", strict, writeFile(t, "bundle2.json", string(bundle)))
	if !isExit(err, 1) || !strings.Contains(out, "no cosignature from witness.ngo.example (cosigned by witness.state-regulator.example, witness.university.example)") {
		t.Fatalf("verify with a policy asking for a third witness: %v\n%s", err, out)
	}

	// A witness down: ingest and checkpoints go on, the witnessed
	// checkpoint waits, /metrics shows it; back up, it catches up.
	if err := uni.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(ctx, js, s.Lead(4, time.Now())); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if got := metricValue(t, in.api, `tapproof_log_size_leaves{log="flint"}`); got != float64(want+1) {
			return fmt.Errorf("signed checkpoint size %v, want %d", got, want+1)
		}
		if got := metricValue(t, in.api, `tapproof_witness_submissions_total{log="flint",result="failed",witness="witness.university.example"}`); got == 0 {
			return errors.New("no failed submission to the witness that is down on /metrics")
		}
		return nil
	})
	if got := logInfo(t, in.api, "flint").Size; got != want {
		t.Fatalf("served checkpoint of size %d with a witness of a 2-of-2 policy down, want %d", got, want)
	}
	if got := influxCount(t, st, `utility='flint'`); got != 4 {
		t.Fatalf("InfluxDB holds %d readings with a witness down, want 4", got)
	}
	if err := uni.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitWitnessed(t, in.api, "flint", want+1)

	// Whatever else lands on the witnessed subject (someone with broker
	// credentials) is never served as a witnessed checkpoint, nor breaks
	// the listing of the logs; the next witnessed checkpoint supersedes it.
	op := serviceUser(t, in)
	for _, junk := range [][]byte{[]byte("not a checkpoint"), forgedUnwitnessed(t, dataDir, "flint", want+1)} {
		m := nats.NewMsg(journal.CheckpointsSubject + ".flint.witnessed")
		m.Data = junk
		m.Header.Set(journal.HeaderSize, strconv.FormatUint(want+5, 10))
		if err := op.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		if err := op.Flush(); err != nil {
			t.Fatal(err)
		}
		if code, b := get(t, in.api+"/v1/logs"); code != 200 {
			t.Fatalf("GET /v1/logs with %q last on the witnessed subject: %d %s", junk, code, b)
		}
		if code, b := get(t, in.api+"/v1/logs/flint/checkpoint"); code == 200 {
			t.Fatalf("served %q as the witnessed checkpoint: %s", junk, b)
		}
	}
	if _, err := s.Publish(ctx, js, s.Lead(5, time.Now())); err != nil {
		t.Fatal(err)
	}
	want++
	waitWitnessed(t, in.api, "flint", want+1)

	// A regulator's monitor has followed the log so far.
	monState := t.TempDir()
	monitorArgs := []string{"monitor", "--once", "--log", "flint=" + li.VerifierKey, "--state", monState}
	if out, err := runCmd(t, append(slices.Clone(monitorArgs), "--server", in.api, "--witness-policy", policyFile)...); err != nil {
		t.Fatalf("tapproof monitor --once on the real log: %v\n%s", err, out)
	}

	// A second history: the utility rebuilds its log without two of its
	// leaves, adds three, and signs it with the log's own key. Neither
	// witness cosigns it.
	forked, tree, leaves := secondHistory(t, in.api, dataDir, "flint", want+1)
	sub := witness.NewSubmitter(policy, mustVerifier(t, li.VerifierKey), memProver{tree}, nil)
	var (
		mu      sync.Mutex
		results []string
	)
	sub.Observe = func(w witness.Witness, result string, _ error) {
		mu.Lock()
		results = append(results, w.Name+" "+result)
		mu.Unlock()
	}
	if got, err := sub.Submit(ctx, forked); !errors.Is(err, witness.ErrUnmet) || witness.Cosigned(got, cosignatureVerifier(t, state.VerifierKey)) {
		t.Fatalf("a second history submitted to the witnesses: %v", err)
	}
	for _, r := range results {
		if strings.HasSuffix(r, " cosigned") {
			t.Fatalf("a witness cosigned the second history: %v", results)
		}
	}
	t.Logf("second history: %v", results)

	// The utility serves it to the regulator anyway: the monitor, which
	// kept the checkpoint it verified, catches the fork and keeps the
	// evidence, even without a witness policy.
	rebuilt := &rebuiltLog{checkpoint: forked, tree: tree, leaves: leaves}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Config{Logs: rebuilt, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	out, err = runCmd(t, append(slices.Clone(monitorArgs), "--server", srv.URL)...)
	if !isExit(err, 1) || !strings.Contains(out, "fork") {
		t.Fatalf("tapproof monitor --once on the second history: %v, want exit 1 and a fork\n%s", err, out)
	}
	evidence, _ := filepath.Glob(filepath.Join(monState, "findings", "*-flint-fork"))
	if len(evidence) != 1 {
		t.Fatalf("fork evidence directories %v\n%s", evidence, out)
	}
	for _, f := range []string{"finding.json", "stored-checkpoint.txt", "new-checkpoint.txt", "consistency-proof.json"} {
		b, err := os.ReadFile(filepath.Join(evidence[0], f))
		if err != nil || len(b) == 0 {
			t.Errorf("evidence %s: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(evidence[0], "new-checkpoint.txt")); !bytes.Equal(b, forked) {
		t.Errorf("the evidence's new checkpoint is not the one the server signed:\n%s", b)
	}
}

// rebuiltLog serves a second history of a log, as a utility that rebuilt
// it would: its checkpoint, consistency proofs and leaves.
type rebuiltLog struct {
	unusedRoutes // the routes the monitor does not use
	checkpoint   []byte
	tree         *testonly.Tree
	leaves       [][]byte
}

// unusedRoutes names httpapi.Logs as an embedded field that is not
// called Logs, which is one of its methods.
type unusedRoutes = httpapi.Logs

func (l *rebuiltLog) LatestCheckpoint(context.Context, string) ([]byte, error) {
	return l.checkpoint, nil
}

func (l *rebuiltLog) ConsistencyProof(_ context.Context, _ string, from, to uint64) ([][]byte, error) {
	return l.tree.ConsistencyProof(from, to)
}

func (l *rebuiltLog) Leaves(_ context.Context, _ string, start, count uint64) ([][]byte, error) {
	return l.leaves[min(start, uint64(len(l.leaves))):min(start+count, uint64(len(l.leaves)))], nil
}

// waitWitnessed waits until utility's served checkpoint, which with a
// witness policy is the latest witnessed one, has size want.
func waitWitnessed(t *testing.T, api, utility string, want uint64) {
	t.Helper()
	poll.Until(t, 60*time.Second, func() error {
		if got := logInfo(t, api, utility).Size; got != want {
			return fmt.Errorf("witnessed checkpoint size %d, want %d", got, want)
		}
		return nil
	})
}

// stripCosignature removes name's signature line from the checkpoint in
// a bundle (and in the enrollment's bundle, which has the same).
func stripCosignature(t *testing.T, bundle []byte, name string) []byte {
	t.Helper()
	var b anchor.Bundle
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	strip := func(tlogProof string) string {
		var kept []string
		for l := range strings.Lines(tlogProof) {
			if !strings.HasPrefix(l, "— "+name+" ") {
				kept = append(kept, l)
			}
		}
		if len(kept) == strings.Count(tlogProof, "\n") {
			t.Fatalf("no cosignature of %s in %q", name, tlogProof)
		}
		return strings.Join(kept, "")
	}
	b.TLogProof = strip(b.TLogProof)
	if b.Enrollment != nil {
		b.Enrollment.TLogProof = strip(b.Enrollment.TLogProof)
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forgedUnwitnessed returns a checkpoint of size signed with utility's
// log key, over a root nobody computed, and no witness's cosignature.
func forgedUnwitnessed(t *testing.T, dataDir, utility string, size uint64) []byte {
	t.Helper()
	skey, err := os.ReadFile(filepath.Join(dataDir, "keys", utility+".note-key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := anchor.SignCheckpoint(signer, size, bytes.Repeat([]byte{0xf1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// secondHistory reads utility's log of size leaves from the API and
// returns a checkpoint signed with the log's own key over the same leaves
// without leaves 1 and 2 and with three more, its tree and its leaves.
func secondHistory(t *testing.T, api, dataDir, utility string, size uint64) ([]byte, *testonly.Tree, [][]byte) {
	t.Helper()
	leaves, err := (&httpapi.Client{BaseURL: api}).Leaves(t.Context(), utility, 0, size)
	if err != nil || uint64(len(leaves)) != size {
		t.Fatalf("leaves: %d, %v", len(leaves), err)
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	var kept [][]byte
	for i, l := range leaves {
		if i != 1 && i != 2 {
			kept = append(kept, l.Bytes)
		}
	}
	for i := range 3 {
		kept = append(kept, leaves[len(leaves)-1-i].Bytes) // well-formed leaves, repeated
	}
	tree.AppendData(kept...)
	skey, err := os.ReadFile(filepath.Join(dataDir, "keys", utility+".note-key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := anchor.SignCheckpoint(signer, tree.Size(), tree.Hash())
	if err != nil {
		t.Fatal(err)
	}
	return cp, tree, kept
}

type memProver struct{ tree *testonly.Tree }

func (p memProver) ConsistencyProof(_ context.Context, from, to uint64) ([][]byte, error) {
	return p.tree.ConsistencyProof(from, to)
}

func newCosignerKey(t *testing.T, name string) (skey, vkey string) {
	t.Helper()
	skey, plain, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	if vkey, err = fnote.VKeyToCosignatureV1(plain); err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func isExit(err error, code int) bool {
	var ec exitCode
	return errors.As(err, &ec) && int(ec) == code
}

func cosignatureVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
