package journal_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/journal"
)

// TestResumeWorkQueueAfterCrash: the ingest consumer reads a work-queue
// stream, where JetStream only allows DeliverAll. After a crash with
// messages in flight, Resume must still restart it, and the unacknowledged
// messages must come first and in order. (CI once failed here: Resume
// recreated the consumer with DeliverByStartSequence, which a work-queue
// stream refuses, and tapproof could not restart.)
func TestResumeWorkQueueAfterCrash(t *testing.T) {
	ctx := t.Context()
	nc, js := natstest.Connect(t, natstest.Server(t))
	if _, err := journal.Open(ctx, js); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := nc.Publish(fmt.Sprintf("%s.u1.s1.d1", journal.ReadingsSubject), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       "ingest",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	c, err := journal.Resume(ctx, js, journal.ReadingsStream, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(5, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for m := range b.Messages() {
		// Acknowledge 0, 1 and 3; 2 and 4 are in flight when the process dies.
		if d := m.Data()[0]; d != 2 && d != 4 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n++
	}
	if n != 5 {
		t.Fatalf("fetched %d messages, want 5", n)
	}

	restarted, err := journal.Resume(ctx, js, journal.ReadingsStream, cfg)
	if err != nil {
		t.Fatalf("Resume after crash: %v", err)
	}
	b, err = restarted.Fetch(100, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for m := range b.Messages() {
		got = append(got, m.Data()[0])
	}
	if diff := cmp.Diff([]byte{2, 4, 5, 6, 7, 8, 9}, got); diff != "" {
		t.Errorf("after restart, delivered (-want +got):\n%s", diff)
	}
}
