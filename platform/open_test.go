package platform

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof/internal/natstest"
)

// flaky refuses the first stream creations as a cluster that has just
// formed does.
type flaky struct {
	jetstream.JetStream
	refusals int
}

func (f *flaky) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if f.refusals > 0 {
		f.refusals--
		return nil, context.DeadlineExceeded
	}
	return f.JetStream.CreateOrUpdateStream(ctx, cfg)
}

// serve opens the journal even if JetStream does not answer at first: a
// replica started beside a NATS cluster that is still forming used to
// exit at once ("stream TAPPROOF_READINGS: context deadline exceeded").
func TestOpenJournalWaitsForJetStream(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Server(t))
	f := &flaky{JetStream: js, refusals: 2}
	j, err := openJournal(t.Context(), f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("openJournal after two refusals: %v", err)
	}
	if j == nil || f.refusals != 0 {
		t.Fatalf("journal %v, %d refusals left", j, f.refusals)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := openJournal(ctx, &flaky{JetStream: js, refusals: 1}, slog.New(slog.DiscardHandler)); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Errorf("openJournal with its context done = %v, want it to give up", err)
	}
}
