package public

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// stream sends alert messages as Server-Sent Events: event "alert", id the
// alert id, data the alert's JSON. Suppression records and homes' own lab
// results are not sent (shown).
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many live streams", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events, err := s.cfg.Alerts.Watch(ctx)
	if err != nil {
		s.cfg.Log.Warn("alert stream", "error", err)
		http.Error(w, "alert stream unavailable", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	// A stream outlives the server's WriteTimeout; the heartbeat and the
	// client's reconnect keep it honest instead.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 5000\n: connected\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.Done:
			return
		case <-tick.C:
			_, _ = fmt.Fprint(w, ": ping\n\n")
		case a, ok := <-events:
			if !ok {
				return // the watch failed; EventSource reconnects
			}
			if !shown(a) {
				continue
			}
			b, err := json.Marshal(a)
			if err != nil {
				continue
			}
			_, _ = fmt.Fprintf(w, "event: alert\nid: %s\ndata: %s\n\n", a.ID, b)
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
