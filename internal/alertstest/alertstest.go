// Package alertstest holds what the tests of alerts and its subpackages
// share: a JetStream to run on, an alert store in it, and a screening
// alert to store.
package alertstest

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

// JetStream runs an embedded NATS server with JetStream for t and returns a
// JetStream client connected to it.
func JetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Server(t))
	return js
}

// Store opens the alert store in js; m may be nil.
func Store(t *testing.T, js jetstream.JetStream, m *alerts.Metrics) *alerts.Store {
	t.Helper()
	s, err := alerts.NewStore(context.Background(), js, m)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

// Alert returns the screening alert for reading seq of device asv-1, at
// site elm-st-12 of utility springfield, seq ppb above 15.
func Alert(seq uint64) tapproof.Alert {
	sampled := time.Date(2026, time.June, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	return tapproof.Alert{
		ID: tapproof.AlertID(tapproof.Screening, "asv-1", seq), Class: tapproof.Screening,
		Utility: "springfield", Site: "elm-st-12", Device: "asv-1", Seq: seq,
		Analyte: tapproof.Lead, Value: 15 + float64(seq), Unit: tapproof.MicrogramsPerLiter,
		Level: 15, Rule: "us-lead-lcr@v1", SampledAt: sampled, RaisedAt: sampled.Add(2 * time.Second),
	}
}

// Publish stores each alert in s.
func Publish(t *testing.T, s *alerts.Store, as ...tapproof.Alert) {
	t.Helper()
	for _, a := range as {
		if err := s.Publish(context.Background(), a); err != nil {
			t.Fatalf("Publish(%s): %v", a.ID, err)
		}
	}
}

// Receiver is an HTTP endpoint that records what is POSTed to it: a
// webhook receiver or an SMS gateway.
type Receiver struct {
	URL    string
	status func(n int) int

	mu   sync.Mutex
	reqs []Request
}

// Request is one request a Receiver got.
type Request struct {
	Path   string // with the query
	Header http.Header
	Body   []byte
}

// NewReceiver starts a Receiver for t that answers its nth request (from 1)
// with status(n).
func NewReceiver(t *testing.T, status func(n int) int) *Receiver {
	t.Helper()
	r := &Receiver{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, Request{Path: req.URL.RequestURI(), Header: req.Header.Clone(), Body: body})
		n := len(r.reqs)
		r.mu.Unlock()
		w.WriteHeader(r.status(n))
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Requests returns the requests received so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Wait waits until r has received n requests and returns them.
func (r *Receiver) Wait(t *testing.T, n int) []Request {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		if got := len(r.Requests()); got < n {
			return fmt.Errorf("receiver got %d requests, want %d", got, n)
		}
		return nil
	})
	return r.Requests()
}

// Buffer is a bytes.Buffer safe for concurrent use, to capture a log that
// goroutines under test write to.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
