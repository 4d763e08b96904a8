package residents_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
)

// startJetStream runs an embedded NATS server with JetStream for t and
// returns a JetStream client connected to it.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Server(t))
	return js
}

func newStore(t *testing.T, js jetstream.JetStream, m *alerts.Metrics) *alerts.Store {
	t.Helper()
	s, err := alerts.NewStore(context.Background(), js, m)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

// testAlert returns the screening alert for reading seq of device asv-1.
func testAlert(seq uint64) tapproof.Alert {
	sampled := time.Date(2026, time.June, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	return tapproof.Alert{
		ID: tapproof.AlertID(tapproof.Screening, "asv-1", seq), Class: tapproof.Screening,
		Utility: "springfield", Site: "elm-st-12", Device: "asv-1", Seq: seq,
		Analyte: tapproof.Lead, Value: 15 + float64(seq), Unit: tapproof.MicrogramsPerLiter,
		Level: 15, Rule: "us-lead-lcr@v1", SampledAt: sampled, RaisedAt: sampled.Add(2 * time.Second),
	}
}

func publish(t *testing.T, s *alerts.Store, as ...tapproof.Alert) {
	t.Helper()
	for _, a := range as {
		if err := s.Publish(context.Background(), a); err != nil {
			t.Fatalf("Publish(%s): %v", a.ID, err)
		}
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// receiver is a webhook endpoint that records what it is sent and answers
// the nth request (from 1) with status(n).
type receiver struct {
	srv    *httptest.Server
	status func(n int) int

	mu   sync.Mutex
	reqs []request
}

type request struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, request{header: req.Header.Clone(), body: body})
		n := len(r.reqs)
		r.mu.Unlock()
		w.WriteHeader(r.status(n))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// waitRequests waits until r has received n requests.
func (r *receiver) waitRequests(t *testing.T, n int) []request {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		if got := len(r.requests()); got < n {
			return errorf("receiver got %d requests, want %d", got, n)
		}
		return nil
	})
	return r.requests()
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
