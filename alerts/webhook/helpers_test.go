package webhook_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/internal/natstest"
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
