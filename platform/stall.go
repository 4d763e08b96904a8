package platform

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof/journal"
)

// DefaultStallAfter is how long a consumer may have work pending without
// finishing any before tapproof reports itself not ready.
const DefaultStallAfter = 2 * time.Minute

// stallWatch tells a consumer that is slow from one that is stuck: a
// consumer with work pending whose acknowledgement floor has not moved
// since is stalled. Ingest and every sink report their progress to it
// each second; readiness and tapproof_consumer_stalled_seconds read it.
type stallWatch struct {
	after time.Duration
	gauge *prometheus.GaugeVec

	mu        sync.Mutex
	consumers map[[2]string]*stallState // {log, consumer}
}

type stallState struct {
	done  uint64
	since time.Time // when done last moved, or work first appeared
	stuck time.Duration
}

func newStallWatch(after time.Duration, reg prometheus.Registerer) *stallWatch {
	if after <= 0 {
		after = DefaultStallAfter
	}
	w := &stallWatch{after: after, consumers: map[[2]string]*stallState{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_consumer_stalled_seconds",
			Help: "How long each consumer (ingest of the readings stream; the anchor, influx and exceedance sinks of each log) has had work pending without finishing any; 0 while it progresses or has nothing to do.",
		}, []string{"log", "consumer"}),
	}
	reg.MustRegister(w.gauge)
	return w
}

// observe records a consumer's progress at now.
func (w *stallWatch) observe(log, consumer string, p journal.Progress, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := [2]string{log, consumer}
	st, ok := w.consumers[k]
	if !ok || p.Done != st.done || p.Pending == 0 {
		st = &stallState{done: p.Done, since: now}
		w.consumers[k] = st
	}
	st.stuck = 0
	if p.Pending > 0 {
		st.stuck = now.Sub(st.since)
	}
	w.gauge.WithLabelValues(log, consumer).Set(st.stuck.Seconds())
}

// check returns an error naming every consumer stalled for longer than
// the limit.
func (w *stallWatch) check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var stalled []string
	for k, st := range w.consumers {
		if st.stuck > w.after {
			stalled = append(stalled, fmt.Sprintf("%s of %s (no progress for %s)", k[1], k[0], st.stuck.Round(time.Second)))
		}
	}
	if len(stalled) == 0 {
		return nil
	}
	sort.Strings(stalled)
	return fmt.Errorf("stalled with work pending: %v (limit %s)", stalled, w.after)
}
