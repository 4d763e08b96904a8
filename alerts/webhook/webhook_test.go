package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/webhook"
	"github.com/tapproof/tapproof/internal/poll"
)

// receiver is a webhook endpoint that records what it is sent and answers
// the nth request (from 1) with status(n).
type receiver struct {
	srv    *httptest.Server
	status func(n int) int

	mu   sync.Mutex
	reqs []request
}

type request struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, request{path: req.URL.RequestURI(), header: req.Header.Clone(), body: body})
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

func always(status int) func(int) int { return func(int) int { return status } }

// runWebhooks runs a Deliverer for cfgs until the test ends, once every
// webhook's consumer exists, and checks that Run returns nil on cancel.
func runWebhooks(t *testing.T, js jetstream.JetStream, cfgs []webhook.Config, m *webhook.Metrics, log *slog.Logger) (stop func()) {
	t.Helper()
	w, err := webhook.NewDeliverer(js, cfgs, m, log)
	if err != nil {
		t.Fatalf("NewDeliverer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil after cancel", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	for _, c := range cfgs {
		poll.Until(t, 10*time.Second, func() error {
			_, err := js.Consumer(context.Background(), alerts.StreamName, "tapproof-webhook-"+c.ID())
			return err
		})
	}
	return stop
}

func fast(url, secret string) webhook.Config {
	return webhook.Config{URL: url, Secret: secret, Timeout: 2 * time.Second,
		Retry: alerts.Retry{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxDeliver: 5}}
}

func deliveries(t *testing.T, reg prometheus.Gatherer, delivered, retried, failed int) func() error {
	t.Helper()
	want := fmt.Sprintf(`
# HELP tapproof_webhook_deliveries_total Webhook delivery attempts, by result (delivered, retried, failed).
# TYPE tapproof_webhook_deliveries_total counter
tapproof_webhook_deliveries_total{result="delivered"} %d
tapproof_webhook_deliveries_total{result="failed"} %d
tapproof_webhook_deliveries_total{result="retried"} %d
`, delivered, failed, retried)
	return func() error {
		return testutil.GatherAndCompare(reg, strings.NewReader(want), "tapproof_webhook_deliveries_total")
	}
}

// checkDelivery verifies the signature, headers and body of req.
func checkDelivery(t *testing.T, req request, secret string, want tapproof.Alert) {
	t.Helper()
	sig := req.header.Get("X-Tapproof-Signature")
	if !alerts.Verify(secret, req.body, sig) {
		t.Errorf("X-Tapproof-Signature %q does not verify", sig)
	}
	if got := req.header.Get("X-Tapproof-Alert-Id"); got != want.ID {
		t.Errorf("X-Tapproof-Alert-Id = %q, want %q", got, want.ID)
	}
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var got tapproof.Alert
	if err := json.Unmarshal(req.body, &got); err != nil {
		t.Fatalf("body: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered alert (-want +got):\n%s", diff)
	}
}

func TestWebhookDelivers(t *testing.T) {
	js := startJetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := newStore(t, js, alerts.NewMetrics(reg))
	rcv := newReceiver(t, always(http.StatusNoContent))
	const secret = "correct horse battery staple"
	runWebhooks(t, js, []webhook.Config{fast(rcv.srv.URL+"/hook", secret)}, m, nil)

	a := testAlert(1)
	publish(t, store, a, a) // the duplicate is absorbed before any notifier sees it
	reqs := rcv.waitRequests(t, 1)
	checkDelivery(t, reqs[0], secret, a)
	if reqs[0].path != "/hook" {
		t.Errorf("POST path = %q, want /hook", reqs[0].path)
	}
	poll.Until(t, 5*time.Second, deliveries(t, reg, 1, 0, 0))

	b := testAlert(2)
	publish(t, store, b)
	reqs = rcv.waitRequests(t, 2)
	checkDelivery(t, reqs[1], secret, b)
	if n := len(rcv.requests()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}

func TestWebhookRetries(t *testing.T) {
	js := startJetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := newStore(t, js, nil)
	rcv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	runWebhooks(t, js, []webhook.Config{fast(rcv.srv.URL, "s3cr3t")}, m, nil)

	a := testAlert(3)
	publish(t, store, a)
	reqs := rcv.waitRequests(t, 2)
	for _, r := range reqs {
		checkDelivery(t, r, "s3cr3t", a)
	}
	poll.Until(t, 5*time.Second, deliveries(t, reg, 1, 1, 0))
	// Acknowledged: nothing is pending or redelivered.
	poll.Until(t, 5*time.Second, func() error {
		c, err := js.Consumer(context.Background(), alerts.StreamName, "tapproof-webhook-"+fast(rcv.srv.URL, "").ID())
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return errorf("consumer has %d unacknowledged, %d pending", info.NumAckPending, info.NumPending)
		}
		return nil
	})
	if n := len(rcv.requests()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	js := startJetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := newStore(t, js, nil)
	bad := newReceiver(t, always(http.StatusServiceUnavailable))
	good := newReceiver(t, always(http.StatusOK))
	cfg := fast(bad.srv.URL, "s3cr3t")
	cfg.MaxDeliver = 3
	runWebhooks(t, js, []webhook.Config{cfg, fast(good.srv.URL, "other")}, m, nil)

	publish(t, store, testAlert(1))
	poll.Until(t, 10*time.Second, deliveries(t, reg, 1, 2, 1))
	if n := len(bad.requests()); n != 3 {
		t.Errorf("failing receiver got %d requests, want MaxDeliver = 3", n)
	}
	// A failing receiver holds back nobody else.
	checkDelivery(t, good.requests()[0], "other", testAlert(1))
}

func TestWebhookResumes(t *testing.T) {
	js := startJetStream(t)
	store := newStore(t, js, nil)
	rcv := newReceiver(t, always(http.StatusOK))
	cfgs := []webhook.Config{fast(rcv.srv.URL, "s3cr3t")}
	stop := runWebhooks(t, js, cfgs, nil, nil)
	publish(t, store, testAlert(1))
	rcv.waitRequests(t, 1)
	stop()

	// Alerts stored while the notifier is down are delivered when it is back.
	publish(t, store, testAlert(2), testAlert(3))
	runWebhooks(t, js, cfgs, nil, nil)
	reqs := rcv.waitRequests(t, 3)
	for i, r := range reqs {
		checkDelivery(t, r, "s3cr3t", testAlert(uint64(i+1)))
	}
}

func TestWebhookSecretsNotLogged(t *testing.T) {
	js := startJetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := newStore(t, js, nil)

	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))

	const (
		secret    = "hmac-key-9d1f0c2e"
		pathToken = "T000-B000-path-token-5e7a"
		query     = "query-token-41c8"
	)
	flaky := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	// A receiver that is down: connection refused, whose error names the host.
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	flakyCfg := fast(flaky.srv.URL+"/services/"+pathToken+"?token="+query, secret)
	downCfg := fast(downURL+"/services/"+pathToken, secret)
	downCfg.MaxDeliver = 2
	runWebhooks(t, js, []webhook.Config{flakyCfg, downCfg}, m, log)

	publish(t, store, testAlert(1))
	poll.Until(t, 10*time.Second, deliveries(t, reg, 1, 2, 1))
	checkDelivery(t, flaky.waitRequests(t, 2)[1], secret, testAlert(1))

	out := buf.String()
	for _, s := range []string{secret, pathToken, query, flaky.srv.URL, downURL, strings.TrimPrefix(downURL, "http://")} {
		if strings.Contains(out, s) {
			t.Errorf("log output contains %q:\n%s", s, out)
		}
	}
	for _, id := range []string{flakyCfg.ID(), downCfg.ID()} {
		if !strings.Contains(out, id) {
			t.Errorf("log output does not name webhook %s:\n%s", id, out)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, flakyCfg); strings.Contains(s, secret) || strings.Contains(s, pathToken) {
			t.Errorf("Sprintf(%q, cfg) = %q reveals the URL or secret", verb, s)
		}
	}
	_, err := webhook.NewDeliverer(js, []webhook.Config{{URL: "ftp://" + pathToken, Secret: secret}}, nil, nil)
	if err == nil || strings.Contains(err.Error(), pathToken) || strings.Contains(err.Error(), secret) {
		t.Errorf("NewDeliverer(bad URL) = %v, want an error that names neither URL nor secret", err)
	}
}

func TestNewDelivererValidates(t *testing.T) {
	ok := webhook.Config{URL: "https://example.org/hook", Secret: "k"}
	tests := []struct {
		name string
		cfgs []webhook.Config
	}{
		{"no secret", []webhook.Config{{URL: ok.URL}}},
		{"relative URL", []webhook.Config{{URL: "/hook", Secret: "k"}}},
		{"negative timeout", []webhook.Config{{URL: ok.URL, Secret: "k", Timeout: -1}}},
		{"min above max back-off", []webhook.Config{{URL: ok.URL, Secret: "k", Retry: alerts.Retry{MinBackoff: time.Minute, MaxBackoff: time.Second}}}},
		{"same URL twice", []webhook.Config{ok, ok}},
	}
	for _, tt := range tests {
		if _, err := webhook.NewDeliverer(nil, tt.cfgs, nil, nil); err == nil {
			t.Errorf("NewDeliverer(%s) = nil error, want error", tt.name)
		}
	}
	if _, err := webhook.NewDeliverer(nil, []webhook.Config{ok}, nil, nil); err != nil {
		t.Errorf("NewDeliverer(valid) = %v", err)
	}
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

func TestWebhookRecreatesDeletedConsumer(t *testing.T) {
	js := startJetStream(t)
	store := newStore(t, js, nil)
	rcv := newReceiver(t, always(http.StatusOK))
	cfg := fast(rcv.srv.URL, "s3cr3t")
	runWebhooks(t, js, []webhook.Config{cfg}, nil, nil)
	ctx := context.Background()
	name := "tapproof-webhook-" + cfg.ID()
	poll.Until(t, 10*time.Second, func() error { // Run has created it
		_, err := js.Consumer(ctx, alerts.StreamName, name)
		return err
	})
	if err := js.DeleteConsumer(ctx, alerts.StreamName, name); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		_, err := js.Consumer(ctx, alerts.StreamName, name)
		return err
	})
	publish(t, store, testAlert(1))
	checkDelivery(t, rcv.waitRequests(t, 1)[0], "s3cr3t", testAlert(1))
}

func TestWebhookRunEndsWhenConnectionCloses(t *testing.T) {
	js := startJetStream(t)
	newStore(t, js, nil)
	rcv := newReceiver(t, always(http.StatusOK))
	w, err := webhook.NewDeliverer(js, []webhook.Config{fast(rcv.srv.URL, "k")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	poll.Until(t, 10*time.Second, func() error {
		_, err := js.Consumer(context.Background(), alerts.StreamName, "tapproof-webhook-"+fast(rcv.srv.URL, "").ID())
		return err
	})
	js.Conn().Close()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Run = nil after the connection closed, want error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10s after the connection closed")
	}
}

// TestMetricsLint: the webhook metrics register beside the alert metrics,
// in one registry, whichever comes first.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	webhook.NewMetrics(reg)
	alerts.NewMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	if err := deliveries(t, reg, 0, 0, 0)(); err != nil {
		t.Error(err)
	}
}
