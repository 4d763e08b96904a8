package platform

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof/journal"
)

func TestStallWatch(t *testing.T) {
	w := newStallWatch(time.Minute, prometheus.NewRegistry())
	t0 := time.Unix(1_000_000, 0)
	// Busy and progressing: never stalled, however long.
	for i := range 10 {
		w.observe("u1", "anchor", journal.Progress{Pending: 50, Done: uint64(i)}, t0.Add(time.Duration(i)*time.Minute))
	}
	// Idle: nothing pending, nothing to finish.
	w.observe("u1", "influx", journal.Progress{Pending: 0, Done: 7}, t0)
	w.observe("u1", "influx", journal.Progress{Pending: 0, Done: 7}, t0.Add(time.Hour))
	if err := w.check(); err != nil {
		t.Fatalf("check with progressing and idle consumers = %v", err)
	}
	// Work pending and the floor stuck: stalled after the limit.
	w.observe("readings", "ingest", journal.Progress{Pending: 3, Done: 40}, t0)
	w.observe("readings", "ingest", journal.Progress{Pending: 580, Done: 40}, t0.Add(30*time.Second))
	if err := w.check(); err != nil {
		t.Fatalf("check before the limit = %v", err)
	}
	w.observe("readings", "ingest", journal.Progress{Pending: 600, Done: 40}, t0.Add(90*time.Second))
	if err := w.check(); err == nil {
		t.Fatal("check of a consumer stuck for 90 s with a 1 min limit = nil")
	}
	if got := testutil.ToFloat64(w.gauge.WithLabelValues("readings", "ingest")); got != 90 {
		t.Errorf("stalled seconds = %v, want 90", got)
	}
	// It moves again: ready.
	w.observe("readings", "ingest", journal.Progress{Pending: 10, Done: 41}, t0.Add(91*time.Second))
	if err := w.check(); err != nil {
		t.Fatalf("check after progress = %v", err)
	}
}
