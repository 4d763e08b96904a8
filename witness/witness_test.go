package witness_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof/witness"
)

// testLog is an in-memory log that signs checkpoints, for unit tests.
type testLog struct {
	tree     *testonly.Tree
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newTestLog(t *testing.T, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{tree: testonly.New(rfc6962.DefaultHasher), signer: s, verifier: v, vkey: vkey}
}

// grow appends n leaves and returns the signed checkpoint of the tree.
func (l *testLog) grow(t *testing.T, n int) []byte {
	t.Helper()
	for i := range n {
		l.tree.AppendData(fmt.Appendf(nil, "leaf %d", int(l.tree.Size())+i))
	}
	body := log.Checkpoint{Origin: l.signer.Name(), Size: l.tree.Size(), Hash: l.tree.Hash()}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func (l *testLog) ConsistencyProof(_ context.Context, from, to uint64) ([][]byte, error) {
	return l.tree.ConsistencyProof(from, to)
}

// fakeWitness follows C2SP tlog-witness for one log: it cosigns a
// checkpoint only from the size it holds, with a valid consistency proof.
// It is a fake for fast tests; the integration tests run litewitness.
type fakeWitness struct {
	t      *testing.T
	signer *fnote.Signer
	vkey   string
	logKey note.Verifier
	srv    *httptest.Server

	mu       sync.Mutex
	size     uint64
	root     []byte
	down     bool
	requests int
}

func newFakeWitness(t *testing.T, name string, logKey note.Verifier) *fakeWitness {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWitness{t: t, signer: s, vkey: cvkey, logKey: logKey, root: rfc6962.DefaultHasher.EmptyRoot()}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *fakeWitness) policyLine(id string) string {
	return fmt.Sprintf("witness %s %s %s\n", id, w.vkey, w.srv.URL)
}

func (w *fakeWitness) serve(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.requests++
	if w.down {
		http.Error(rw, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	br := bufio.NewReader(r.Body)
	first, _ := br.ReadString('\n')
	old, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(first), "old "), 10, 64)
	if err != nil {
		http.Error(rw, "bad old line", http.StatusBadRequest)
		return
	}
	var p [][]byte
	for {
		l, _ := br.ReadString('\n')
		if l == "\n" || l == "" {
			break
		}
		h, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(l))
		p = append(p, h)
	}
	var rest bytes.Buffer
	rest.ReadFrom(br)
	signed := rest.Bytes()
	cp, _, _, err := log.ParseCheckpoint(signed, w.logKey.Name(), w.logKey)
	if err != nil {
		http.Error(rw, "bad checkpoint", http.StatusForbidden)
		return
	}
	if old != w.size {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", w.size)
		return
	}
	if cp.Size < w.size {
		http.Error(rw, "smaller", http.StatusBadRequest)
		return
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, cp.Size, p, w.root, cp.Hash); old > 0 && err != nil {
		http.Error(rw, "bad proof", http.StatusUnprocessableEntity)
		return
	}
	n, err := note.Open(signed, note.VerifierList(w.logKey))
	if err != nil {
		http.Error(rw, "bad note", http.StatusForbidden)
		return
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		w.t.Error(err)
		return
	}
	w.size, w.root = cp.Size, cp.Hash
	// Only the cosignature line, as tlog-witness answers.
	_, sigs, _ := bytes.Cut(cosigned, []byte("\n\n"))
	rw.Write(sigs)
}

func policyOf(t *testing.T, text string) *witness.Policy {
	t.Helper()
	p, err := witness.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSubmitGathersCosignaturesFromEachWitnessSize(t *testing.T) {
	l := newTestLog(t, "springfield.tapproof.example/log")
	a := newFakeWitness(t, "witness.state.example", l.verifier)
	b := newFakeWitness(t, "witness.university.example", l.verifier)
	policy := policyOf(t, a.policyLine("state")+b.policyLine("uni")+"group both all state uni\nquorum both\n")
	s := witness.NewSubmitter(policy, l.verifier, l, nil)
	var results []string
	var mu sync.Mutex
	s.Observe = func(w witness.Witness, result string, _ error) {
		mu.Lock()
		results = append(results, w.Name+" "+result)
		mu.Unlock()
	}
	ctx := context.Background()

	for _, n := range []int{0, 3, 1, 60} {
		cp := l.grow(t, n)
		got, err := s.Submit(ctx, cp)
		if err != nil {
			t.Fatalf("after %d more leaves: %v", n, err)
		}
		if err := policy.Check(got); err != nil {
			t.Fatalf("checkpoint of %d returned by Submit: %v", l.tree.Size(), err)
		}
		// The log's own signature still verifies, and the text is the same.
		if _, _, _, err := log.ParseCheckpoint(got, l.verifier.Name(), l.verifier); err != nil {
			t.Fatalf("cosigned checkpoint no longer opens with the log key: %v", err)
		}
		if !bytes.HasPrefix(got, cp) {
			t.Fatalf("Submit changed the checkpoint: %q", got)
		}
	}
	if a.size != l.tree.Size() || b.size != l.tree.Size() {
		t.Fatalf("witness sizes %d and %d, want %d", a.size, b.size, l.tree.Size())
	}

	// A submitter that has forgotten the witnesses' sizes (a restart)
	// learns them from the 409 and proves from there.
	s2 := witness.NewSubmitter(policy, l.verifier, l, nil)
	results = nil
	s2.Observe = s.Observe
	if _, err := s2.Submit(ctx, l.grow(t, 5)); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	slices.Sort(results)
	want := []string{
		"witness.state.example conflict", "witness.state.example cosigned",
		"witness.university.example conflict", "witness.university.example cosigned",
	}
	if fmt.Sprint(results) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", results, want)
	}
}

func TestSubmitNamesTheWitnessThatIsDown(t *testing.T) {
	l := newTestLog(t, "springfield.tapproof.example/log")
	a := newFakeWitness(t, "witness.state.example", l.verifier)
	b := newFakeWitness(t, "witness.university.example", l.verifier)
	ctx := context.Background()

	// Two of two: with one down the policy is unmet, the other's
	// cosignature is still returned, and the error names the missing one.
	policy := policyOf(t, a.policyLine("state")+b.policyLine("uni")+"group both all state uni\nquorum both\n")
	s := witness.NewSubmitter(policy, l.verifier, l, nil)
	b.down = true
	got, err := s.Submit(ctx, l.grow(t, 4))
	var unmet *witness.UnmetError
	if !errors.As(err, &unmet) || !errors.Is(err, witness.ErrUnmet) {
		t.Fatalf("Submit with a witness down: %v, want an *UnmetError", err)
	}
	if fmt.Sprint(unmet.Missing) != "[witness.university.example]" || fmt.Sprint(unmet.Cosigned) != "[witness.state.example]" {
		t.Fatalf("missing %v, cosigned %v", unmet.Missing, unmet.Cosigned)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %q does not give the witness's answer", err)
	}
	if !witness.Cosigned(got, a.signer.Verifier()) {
		t.Fatal("the cosignature of the witness that answered was dropped")
	}

	// One of two: the same outage meets the policy.
	anyPolicy := policyOf(t, a.policyLine("state")+b.policyLine("uni")+"group one any state uni\nquorum one\n")
	if _, err := witness.NewSubmitter(anyPolicy, l.verifier, l, nil).Submit(ctx, l.grow(t, 1)); err != nil {
		t.Fatalf("any-of-two with one down: %v", err)
	}
}

func TestSubmitIgnoresAnAnswerNotSignedByTheWitness(t *testing.T) {
	l := newTestLog(t, "springfield.tapproof.example/log")
	a := newFakeWitness(t, "witness.state.example", l.verifier)
	impostor := newFakeWitness(t, "witness.state.example", l.verifier) // same name, other key
	// The policy lists a's key at the impostor's URL.
	policy := policyOf(t, fmt.Sprintf("witness state %s %s\nquorum state\n", a.vkey, impostor.srv.URL))
	_, err := witness.NewSubmitter(policy, l.verifier, l, nil).Submit(context.Background(), l.grow(t, 2))
	if !errors.Is(err, witness.ErrUnmet) || !strings.Contains(err.Error(), "no cosignature by its key") {
		t.Fatalf("Submit to an impostor: %v", err)
	}
}

func TestCheckNamesMissingWitnesses(t *testing.T) {
	l := newTestLog(t, "springfield.tapproof.example/log")
	a := newFakeWitness(t, "witness.state.example", l.verifier)
	b := newFakeWitness(t, "witness.university.example", l.verifier)
	c := newFakeWitness(t, "witness.ngo.example", l.verifier)
	text := a.policyLine("state") + b.policyLine("uni") + c.policyLine("ngo") +
		"group others any uni ngo\ngroup regulators all state others\nquorum regulators\n"
	policy := policyOf(t, text)
	if n := len(policy.Witnesses()); n != 3 {
		t.Fatalf("%d witnesses, want 3", n)
	}
	cp := l.grow(t, 3)
	if err := policy.Check(cp); err == nil || !strings.Contains(err.Error(), "witness.state.example, witness.university.example, witness.ngo.example") {
		t.Fatalf("Check of an uncosigned checkpoint: %v", err)
	}
	only := policyOf(t, a.policyLine("state")+"quorum state\n")
	got, err := witness.NewSubmitter(only, l.verifier, l, nil).Submit(context.Background(), cp)
	if err != nil {
		t.Fatal(err)
	}
	err = policy.Check(got)
	if err == nil || !strings.Contains(err.Error(), "no cosignature from witness.university.example, witness.ngo.example (cosigned by witness.state.example)") {
		t.Fatalf("Check with only the state's cosignature: %v", err)
	}
	if err := policyOf(t, "quorum none\n").Check(cp); err != nil {
		t.Fatalf("quorum none: %v", err)
	}
}

func TestParsePolicyRefusesBadPolicies(t *testing.T) {
	for _, text := range []string{
		"",                // no quorum
		"quorum nobody\n", // unknown component
		"witness w1 nonsense http://x\nquorum w1\n", // bad key
		"frobnicate\n",
	} {
		if _, err := witness.ParsePolicy([]byte(text)); err == nil {
			t.Errorf("ParsePolicy(%q) succeeded", text)
		}
	}
}
