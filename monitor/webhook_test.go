package monitor_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/monitor"
)

// receiver records the webhook deliveries it receives.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
	fail   int // answer the first fail requests with a 500
}

func (r *receiver) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		r.bodies = append(r.bodies, b)
		r.heads = append(r.heads, req.Header.Clone())
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMonitorWebhook: each finding is POSTed as its finding.json, signed
// as the platform's webhooks sign alerts, once even when a fork is
// reported on every poll, and retried when the receiver fails.
func TestMonitorWebhook(t *testing.T) {
	e := newEnv(t)
	r := &receiver{fail: 1}
	e.cfg.WebhookURL, e.cfg.WebhookSecret = r.serve(t), "hook-secret"
	a, stranger := newSensor(t, "pb-1"), newSensor(t, "pb-9")
	e.log.add(a.enrollment(t), stranger.reading(t, 1, nil))
	res := e.once()
	if len(res.Findings) != 1 {
		t.Fatalf("findings = %+v, want one", res.Findings)
	}
	r.mu.Lock()
	if len(r.bodies) != 1 {
		t.Fatalf("%d deliveries, want 1 after a retry", len(r.bodies))
	}
	body, head := r.bodies[0], r.heads[0]
	r.mu.Unlock()
	if !alerts.Verify("hook-secret", body, head.Get(alerts.HeaderSignature)) {
		t.Errorf("signature %q does not verify as the platform's webhooks' do", head.Get(alerts.HeaderSignature))
	}
	var f monitor.Finding
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	if f.Kind != monitor.KindUnattributable || f.Evidence != res.Findings[0].Evidence || head.Get(monitor.HeaderFindingID) != filepath.Base(f.Evidence) {
		t.Errorf("delivered %+v (id %q), want the finding and its evidence directory", f, head.Get(monitor.HeaderFindingID))
	}
	if string(body) == "" || string(readFile(t, filepath.Join(f.Evidence, "finding.json"))[:1]) != "{" {
		t.Error("no finding.json")
	}
	if got := e.metric("tapproof_monitor_webhook_deliveries_total", map[string]string{"result": "retried"}); got != 1 {
		t.Errorf("retried deliveries = %v, want 1", got)
	}

	// A rollback, polled three times, is delivered once; without a
	// secret, unsigned.
	e.cfg.WebhookSecret = ""
	e.log.rebuild(e.log.snapshot()[:1])
	m := e.open()
	for range 3 {
		m.Once(t.Context())
	}
	m.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) != 2 {
		t.Fatalf("%d deliveries, want 2: the rollback once", len(r.bodies))
	}
	if s := r.heads[1].Get(alerts.HeaderSignature); s != "" {
		t.Errorf("signature %q without a secret", s)
	}
}
