package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/internal/tapproofproc"
	"github.com/tapproof/tapproof/monitor"
	"github.com/tapproof/tapproof/simulate"
)

// TestMonitorOnceExitStatus: `tapproof monitor --once` exits 0 over a
// clean log, 1 once a leaf is bad (naming the evidence), 2 when the server
// cannot be reached, and refuses to run without a state directory.
func TestMonitorOnceExitStatus(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "tapproof.local/log/flint")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	var (
		mu     sync.Mutex
		leaves [][]byte
		down   bool
	)
	add := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		leaves = append(leaves, b)
	}
	for i := range 30 {
		b, _ := json.Marshal(tapproof.NoticeRecord{Type: tapproof.NoticeRecordType, AlertID: fmt.Sprintf("a-%d", i), Class: tapproof.Screening,
			MsgType: tapproof.AlertMsg, Utility: "flint", Template: "screening", TemplateVersion: 1,
			TextSHA256: strings.Repeat("0f", 32), SentAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
		add(b)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/v1/logs/flint/checkpoint":
			tree := testonly.New(rfc6962.DefaultHasher)
			tree.AppendData(leaves...)
			cp, _ := anchor.SignCheckpoint(signer, uint64(len(leaves)), tree.Hash())
			w.Write(cp)
		case "/v1/logs/flint/leaves":
			start, _ := strconv.Atoi(r.URL.Query().Get("start"))
			count, _ := strconv.Atoi(r.URL.Query().Get("count"))
			enc := json.NewEncoder(w)
			for i := start; i < min(start+count, len(leaves)); i++ {
				enc.Encode(tapproof.Leaf{Index: uint64(i), Bytes: leaves[i]})
			}
		default:
			http.NotFound(w, r) // no consistency proof: not needed from 0
		}
	}))
	defer srv.Close()
	state := t.TempDir()
	args := []string{"monitor", "--once", "--server", srv.URL, "--log", "flint=" + vkey, "--state", state}

	out, err := runCmd(t, args...)
	if err != nil || !strings.Contains(out, "OK flint: 30 leaves verified (30 new)") {
		t.Fatalf("--once over a clean log = %v:\n%s", err, out)
	}
	// A fresh state over a log whose only leaf is a bad one.
	mu.Lock()
	leaves = leaves[:0:0]
	mu.Unlock()
	state = t.TempDir()
	args[len(args)-1] = state
	add([]byte(`{"type":"tapproof.notice.v1","alert_id":"x"}`))
	out, err = runCmd(t, args...)
	if !errors.Is(err, exitWrong) || !strings.Contains(out, "bad_leaf: leaf 0 (notice)") || !strings.Contains(out, "evidence: "+filepath.Join(state, "findings")) {
		t.Errorf("--once over a bad leaf = %v:\n%s", err, out)
	}
	mu.Lock()
	down = true
	mu.Unlock()
	if out, err := runCmd(t, args...); !errors.Is(err, exitUnchecked) || !strings.Contains(out, "ERROR flint: not checked") {
		t.Errorf("--once with the server down = %v:\n%s", err, out)
	}
	if _, err := runCmd(t, "monitor", "--once", "--server", srv.URL, "--log", "flint="+vkey); err == nil || !strings.Contains(err.Error(), "--state is required") {
		t.Errorf("--once without --state = %v", err)
	}
}

// TestMonitorEndToEnd: the monitor on the real platform. Readings land;
// `tapproof monitor --once` passes clean. Then the monitor binary runs
// continuously while readings keep landing, and is killed with SIGKILL
// again and again, in the middle of its work: every time, its state file
// is a valid state (it verifies against the log's key and checkpoint), it
// resumes from it, and in the end it has verified the whole log without a
// single finding.
func TestMonitorEndToEnd(t *testing.T) {
	st := localstack.ForTest(t)
	in := startServe(t, st, t.TempDir())
	ctx := t.Context()

	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 5, LeadPerSite: 2, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	// An enrollment of a key of small order, "self-signed" with a signature
	// anyone can make under it, is refused: it would let anyone sign its
	// readings.
	{
		en := fleet.Sensors[0].Device.Enrollment()
		en.Device, en.PublicKey = "pb-weak", make([]byte, 32)
		en.PublicKey[0] = 1 // the neutral point
		body, err := json.Marshal(en)
		if err != nil {
			t.Fatal(err)
		}
		forged := make([]byte, 64)
		forged[0] = 1 // R = the neutral point, S = 0
		env := []byte(`{"payloadType":"` + tapproof.EnrollmentPayloadType + `","payload":"` + base64.StdEncoding.EncodeToString(body) +
			`","signatures":[{"sig":"` + base64.StdEncoding.EncodeToString(forged) + `"}]}`)
		err = (&httpapi.Client{BaseURL: in.api, Token: adminToken}).Enroll(ctx, env)
		if err == nil || !strings.Contains(err.Error(), "small order") {
			t.Errorf("enrolling a key of small order = %v, want refused", err)
		}
	}
	dev := devicesOf(t, in)
	published := uint64(0)
	publish := func(n int) {
		t.Helper()
		for i := range n {
			s := fleet.Sensors[i%len(fleet.Sensors)]
			if _, err := s.Publish(ctx, dev.js(s), s.Lead(2+float64(i%5), time.Now())); err != nil {
				t.Fatal(err)
			}
			published++
		}
	}
	// A revocation while readings of the device may still be in ingest,
	// then readings of the others only. Each of its readings lands before
	// the revocation or is refused (device_disabled); one landing after it
	// would be a leaf no enrolled key vouches for, which the monitor below
	// would report.
	revoked := fleet.Sensors[len(fleet.Sensors)-1]
	publish(300)
	c := &httpapi.Client{BaseURL: in.api, Token: adminToken}
	if err := c.Revoke(ctx, revoked.Device.ID, "replaced by a new sensor"); err != nil {
		t.Fatal(err)
	}
	fleet.Sensors = fleet.Sensors[:len(fleet.Sensors)-1]
	logSize := func() uint64 { return logInfo(t, in.api, "flint").Size }
	var refused uint64
	poll.Until(t, 60*time.Second, func() error {
		refused = uint64(metricValue(t, in.api, `tapproof_ingest_rejected_total{reason="device_disabled"}`))
		if got, want := logSize(), 10+published+1-refused; got != want {
			return fmt.Errorf("log size = %d, want %d (%d readings refused after the revocation)", got, want, refused)
		}
		return nil
	})
	t.Logf("readings of the revoked device refused: %d", refused)
	want := 10 + published + 1 - refused
	waitSize := func(want uint64) {
		t.Helper()
		poll.Until(t, 60*time.Second, func() error {
			if got := logSize(); got != want {
				return fmt.Errorf("log size = %d, want %d", got, want)
			}
			return nil
		})
	}
	key := logInfo(t, in.api, "flint").VerifierKey
	verifier, err := note.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}

	// --once, clean.
	state := t.TempDir()
	out, err := runCmd(t, "monitor", "--once", "--server", in.api, "--log", "flint="+key, "--state", state)
	if err != nil || !strings.Contains(out, fmt.Sprintf("OK flint: %d leaves verified (%d new)", want, want)) {
		t.Fatalf("tapproof monitor --once = %v:\n%s", err, out)
	}

	// A large batch for the monitor to be killed in the middle of, then
	// readings at a steady rate while it is killed and restarted.
	publish(3500)
	want = 10 + published + 1 - refused
	waitSize(want)
	bin, err := tapproofproc.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stopPublishing := make(chan struct{})
	publishing := make(chan struct{})
	go func() {
		defer close(publishing)
		tick := time.NewTicker(5 * time.Millisecond) // 200/s over 9 sensors, under their rate limit
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPublishing:
				return
			case <-tick.C:
			}
			s := fleet.Sensors[i%len(fleet.Sensors)]
			if _, err := s.Publish(ctx, dev.js(s), s.Lead(3, time.Now())); err != nil {
				t.Error(err)
				return
			}
			published++ // read after publishing is closed
		}
	}()

	var logs syncBuffer
	start := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, "monitor", "--server", in.api, "--log", "flint="+key, "--state", state,
			"--interval", "100ms", "--log-level", "info")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	stored := func() *monitor.State {
		t.Helper()
		s, err := monitor.ReadState(state, "flint", verifier)
		if err != nil {
			t.Fatalf("the state after SIGKILL: %v\nmonitor log:\n%s", err, tail(logs.String(), 4000))
		}
		return s
	}
	first := stored().Size
	last := first
	// The first kills fall in the first batch, of some 3,500 leaves; the
	// later ones wherever the monitor is in polling every 100 ms.
	for i, delay := range []time.Duration{60 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 1500 * time.Millisecond} {
		fmt.Fprintf(&logs, "=== run %d, killed after %s\n", i, delay)
		cmd := start()
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		s := stored()
		if s.Size < last {
			t.Fatalf("kill %d: the stored size went back from %d to %d", i, last, s.Size)
		}
		t.Logf("kill %d after %s: state at %d leaves", i, delay, s.Size)
		last = s.Size
	}
	close(stopPublishing)
	<-publishing
	want = 10 + published + 1 - refused
	waitSize(want)

	// Restarted once more, it catches up with the log, and stops cleanly.
	fmt.Fprintf(&logs, "=== last run\n")
	cmd := start()
	poll.Until(t, 60*time.Second, func() error {
		if s := stored(); s.Size != want {
			return fmt.Errorf("stored size %d, want %d", s.Size, want)
		}
		return nil
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("monitor after SIGTERM: %v", err)
	}

	// Each run resumed from the stored state, and nothing was found.
	resumed := regexp.MustCompile(`monitor: following log" log=flint origin=\S+ stored_size=(\d+)`)
	var sizes []string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		if m := resumed.FindStringSubmatch(sc.Text()); m != nil {
			sizes = append(sizes, m[1])
		}
		if strings.Contains(sc.Text(), "monitor: finding") || strings.Contains(sc.Text(), "level=ERROR") {
			t.Errorf("monitor log: %s", sc.Text())
		}
	}
	// A run killed within milliseconds may not have logged yet.
	if len(sizes) < 2 || slices.Contains(sizes, "0") {
		t.Errorf("the runs started from stored sizes %v, want each to resume from a stored state", sizes)
	}
	if last == first {
		t.Errorf("no run stored a state before it was killed: all resumed from %d", first)
	}
	t.Logf("the runs resumed from stored sizes %v", sizes)
	if ents, _ := os.ReadDir(filepath.Join(state, "findings")); len(ents) != 0 {
		t.Errorf("evidence of %d findings saved, want none", len(ents))
	}
	s := stored()
	if s.Counts.Revocations != 1 || s.Devices[revoked.Device.ID].Revoked == nil || uint64(len(s.Devices)) != 10 {
		t.Errorf("stored devices %v, counts %+v: want 10 devices, one revoked", len(s.Devices), s.Counts)
	}
	out, err = runCmd(t, "monitor", "--once", "--server", in.api, "--log", "flint="+key, "--state", state)
	if err != nil || !strings.Contains(out, fmt.Sprintf("OK flint: %d leaves verified (0 new)", want)) {
		t.Errorf("tapproof monitor --once after the kills = %v:\n%s", err, out)
	}
	// Every leaf the monitor read was covered by a signed checkpoint, so
	// the server read them all from the journal, none from Trillian.
	if j, tr := metricValue(t, in.api, `tapproof_log_leaves_read_total{source="journal"}`),
		metricValue(t, in.api, `tapproof_log_leaves_read_total{source="trillian"}`); j < float64(want) || tr != 0 {
		t.Errorf("leaves served from the journal %v, from Trillian %v: want at least %d and 0", j, tr, want)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("monitor log (tail):\n%s", tail(logs.String(), 6000))
	}
}

// syncBuffer is a bytes.Buffer that a child process writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
