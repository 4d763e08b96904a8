package monitor_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/monitor"
	"github.com/tapproof/tapproof/signed"
)

const utility = "flint"

// testLog is a utility's log held in memory, served through the real API
// handler by a server that can be made to lie: rebuild its history, roll
// it back, serve leaves other than those it signed, cosign or not.
type testLog struct {
	// The routes the monitor does not use; nil.
	unused

	signer   note.Signer
	verifier note.Verifier

	mu     sync.Mutex
	leaves [][]byte
	tree   *testonly.Tree
	// cosigners cosign every checkpoint served.
	cosigners []note.Signer
	// tamper, if set, changes the leaves served (not those signed).
	tamper func(index uint64, leaf []byte) []byte
	// badProof, if set, serves consistency proofs with a flipped bit.
	badProof bool
	// down, if set, answers every request with a 503.
	down bool
	// leavesServed counts the leaves served, leafRequests the requests.
	leavesServed, leafRequests int
	// served remembers every checkpoint served, for the tests to compare
	// the evidence with.
	served [][]byte
}

func newTestLog(t testing.TB) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "tapproof.test/log/"+utility)
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
	return &testLog{signer: s, verifier: v, tree: testonly.New(rfc6962.DefaultHasher)}
}

// add appends leaves to the log.
func (l *testLog) add(leaves ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leaves = append(l.leaves, leaves...)
	l.tree.AppendData(leaves...)
}

// rebuild replaces the log's whole history with leaves, signed with the
// same key.
func (l *testLog) rebuild(leaves [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leaves = slices.Clone(leaves)
	l.tree = testonly.New(rfc6962.DefaultHasher)
	l.tree.AppendData(l.leaves...)
}

func (l *testLog) snapshot() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.leaves)
}

func (l *testLog) set(f func(l *testLog)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

func (l *testLog) counts() (requests, served int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leafRequests, l.leavesServed
}

// unused stands for the methods of httpapi.Logs that serve routes the
// monitor does not call.
type unused = httpapi.Logs

// The httpapi.Logs of the one log.

func (l *testLog) LatestCheckpoint(_ context.Context, u string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u != utility {
		return nil, tapproof.ErrNotFound
	}
	cp, err := anchor.SignCheckpoint(l.signer, l.tree.Size(), l.tree.Hash())
	if err != nil {
		return nil, err
	}
	for _, c := range l.cosigners {
		n, err := note.Open(cp, note.VerifierList(l.verifier))
		if err != nil {
			return nil, err
		}
		cosigned, err := note.Sign(&note.Note{Text: n.Text}, c)
		if err != nil {
			return nil, err
		}
		_, sig, _ := bytes.Cut(cosigned, []byte("\n\n"))
		cp = append(cp, sig...)
	}
	l.served = append(l.served, cp)
	return cp, nil
}

func (l *testLog) ConsistencyProof(_ context.Context, u string, from, to uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u != utility || to > l.tree.Size() {
		return nil, tapproof.ErrNotFound
	}
	p, err := l.tree.ConsistencyProof(from, to)
	if err != nil {
		return nil, err
	}
	if l.badProof && len(p) > 0 {
		p[0] = bytes.Clone(p[0])
		p[0][0] ^= 1
	}
	return p, nil
}

func (l *testLog) Leaves(_ context.Context, u string, start, count uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u != utility {
		return nil, tapproof.ErrNotFound
	}
	l.leafRequests++
	var out [][]byte
	for i := start; i < min(start+count, uint64(len(l.leaves))); i++ {
		b := l.leaves[i]
		if l.tamper != nil {
			b = l.tamper(i, b)
		}
		out = append(out, b)
	}
	l.leavesServed += len(out)
	return out, nil
}

// serve serves l through the real API handler and returns a client of it.
func (l *testLog) serve(t *testing.T) *httpapi.Client {
	t.Helper()
	h := httpapi.Handler(httpapi.Config{Logs: l, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		down := l.down
		l.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &httpapi.Client{BaseURL: srv.URL, HTTP: srv.Client()}
}

// sensor is a device with its key, enrolled as kind.
type sensor struct {
	id, site, firmware string
	kind               tapproof.Method
	key                ed25519.PrivateKey
	seq                uint64
}

func newSensor(t testing.TB, id string) *sensor {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &sensor{id: id, site: "elm-st", firmware: strings.Repeat("ab", 32), kind: tapproof.ASV, key: key}
}

func (s *sensor) pub() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// enrollment is the sensor's self-signed enrollment.
func (s *sensor) enrollment(t testing.TB) []byte {
	t.Helper()
	b, err := signed.SignEnrollment(context.Background(), s.key, tapproof.Enrollment{
		Device: s.id, Utility: utility, Site: s.site, Kind: s.kind, PublicKey: s.pub(),
		Firmware: s.firmware, EnrolledAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readingOf returns the sensor's next lead reading, unsigned.
func (s *sensor) readingOf(v float64) tapproof.Reading {
	s.seq++
	return tapproof.Reading{
		Utility: utility, Site: s.site, Device: s.id, Seq: s.seq, Analyte: tapproof.Lead, Value: v,
		Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s.seq) * time.Second), Firmware: s.firmware,
	}
}

// reading returns the sensor's next reading, signed with key (its own if
// nil).
func (s *sensor) reading(t testing.TB, v float64, key ed25519.PrivateKey) []byte {
	t.Helper()
	if key == nil {
		key = s.key
	}
	b, err := signed.SignReading(context.Background(), key, s.readingOf(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// revocation is the record of the sensor's revocation.
func (s *sensor) revocation(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(tapproof.Revocation{Type: tapproof.RevocationRecordType, Device: s.id, Utility: utility, Site: s.site,
		Reason: "stolen", RevokedAt: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// party is a lab or state reviewer with its key.
type party struct {
	id  string
	key ed25519.PrivateKey
}

func newParty(t *testing.T, id string) *party {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &party{id: id, key: key}
}

func (p *party) pub() ed25519.PublicKey { return p.key.Public().(ed25519.PublicKey) }

// labSample is a lead sample of lab, signed with key (the lab's if nil).
func (p *party) labSample(t *testing.T, sampleID string, key ed25519.PrivateKey) []byte {
	t.Helper()
	if key == nil {
		key = p.key
	}
	at := time.Date(2026, 8, 3, 8, 0, 0, 0, time.UTC)
	b, err := json.Marshal(tapproof.LabSample{Lab: p.id, SampleID: sampleID, Utility: utility, Site: "elm-st", Tier: 1, Liter: tapproof.FirstLiter,
		Analyte: tapproof.Lead, Value: 4, Unit: tapproof.MicrogramsPerLiter, CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour), Period: "2026H2"})
	if err != nil {
		t.Fatal(err)
	}
	env, err := signed.Sign(context.Background(), key, tapproof.LabSamplePayloadType, b)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// invalidation invalidates the sample at leaf index, signed by reviewer p.
func (p *party) invalidation(t *testing.T, lab, sampleID string, index uint64) []byte {
	t.Helper()
	b, err := json.Marshal(tapproof.Invalidation{Utility: utility, Lab: lab, SampleID: sampleID, SampleIndex: index,
		Reason: "sampled at a faucet not on the plan", Reviewer: p.id, DecidedAt: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	env, err := signed.Sign(context.Background(), p.key, tapproof.InvalidationPayloadType, b)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// notice is the record of a notice sent.
func notice(t *testing.T, alertID string) []byte {
	t.Helper()
	b, err := json.Marshal(tapproof.NoticeRecord{Type: tapproof.NoticeRecordType, AlertID: alertID, Class: tapproof.Screening,
		MsgType: tapproof.AlertMsg, Utility: utility, Site: "elm-st", Template: "screening", TemplateVersion: 1,
		TextSHA256: strings.Repeat("0f", 32), Recipients: 3, SentAt: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// witnessKey is a witness's cosignature/v1 signer and its vkey.
func witnessKey(t *testing.T, name string) (note.Signer, string) {
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
	return s, cvkey
}

// env is a monitor of one test log over a state directory.
type env struct {
	t      *testing.T
	log    *testLog
	dir    string
	reg    *prometheus.Registry
	cfg    monitor.Config
	client *httpapi.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	l := newTestLog(t)
	e := &env{t: t, log: l, dir: t.TempDir(), client: l.serve(t)}
	e.cfg = monitor.Config{
		API: e.client, Logs: []monitor.Log{{Utility: utility, Key: l.verifier}}, StateDir: e.dir,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	return e
}

// open returns a new Monitor of e's configuration, closed at the end of
// the test.
func (e *env) open() *monitor.Monitor {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	cfg := e.cfg
	cfg.Metrics = monitor.NewMetrics(e.reg)
	m, err := monitor.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// once runs one pass of a new Monitor and closes it.
func (e *env) once() monitor.LogResult {
	e.t.Helper()
	m := e.open()
	defer m.Close()
	res := m.Once(context.Background())
	if len(res.Logs) != 1 {
		e.t.Fatalf("Once = %+v, want one log", res)
	}
	return res.Logs[0]
}

// metric returns the value of a series of e's last monitor.
func (e *env) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	e.t.Fatalf("no series %s%v", name, labels)
	return 0
}

// findings lists the evidence directories of e's state directory.
func (e *env) findings() []string {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, "findings"))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		out = append(out, filepath.Join(e.dir, "findings", d.Name()))
	}
	return out
}

// keys are compliance keys of labs and reviewers.
func keysOf(labs, reviewers []*party) compliance.KeySet {
	ks := compliance.KeySet{Labs: map[string][]ed25519.PublicKey{}, Reviewers: map[string][]ed25519.PublicKey{}}
	for _, p := range labs {
		ks.Labs[p.id] = append(ks.Labs[p.id], p.pub())
	}
	for _, p := range reviewers {
		ks.Reviewers[p.id] = append(ks.Reviewers[p.id], p.pub())
	}
	return ks
}

// kinds lists the kinds of findings.
func kinds(fs []monitor.Finding) []monitor.Kind {
	var out []monitor.Kind
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// signWith signs payload as an envelope of payloadType with key.
func signWith(t testing.TB, key ed25519.PrivateKey, payloadType string, payload []byte) []byte {
	t.Helper()
	b, err := signed.Sign(context.Background(), key, payloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadOf is the payload of an envelope.
func payloadOf(t *testing.T, envelope []byte) []byte {
	t.Helper()
	env, err := signed.Parse(envelope, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return env.Payload
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
