package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/internal/poll"
)

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
func checkDelivery(t *testing.T, req alertstest.Request, secret string, want tapproof.Alert) {
	t.Helper()
	sig := req.Header.Get("X-Tapproof-Signature")
	if !alerts.Verify(secret, req.Body, sig) {
		t.Errorf("X-Tapproof-Signature %q does not verify", sig)
	}
	if got := req.Header.Get("X-Tapproof-Alert-Id"); got != want.ID {
		t.Errorf("X-Tapproof-Alert-Id = %q, want %q", got, want.ID)
	}
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var got tapproof.Alert
	if err := json.Unmarshal(req.Body, &got); err != nil {
		t.Fatalf("body: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered alert (-want +got):\n%s", diff)
	}
}

func TestWebhookDelivers(t *testing.T) {
	js := alertstest.JetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := alertstest.Store(t, js, alerts.NewMetrics(reg))
	rcv := alertstest.NewReceiver(t, always(http.StatusNoContent))
	const secret = "correct horse battery staple"
	runWebhooks(t, js, []webhook.Config{fast(rcv.URL+"/hook", secret)}, m, nil)

	a := alertstest.Alert(1)
	alertstest.Publish(t, store, a, a) // the duplicate is absorbed before any notifier sees it
	reqs := rcv.Wait(t, 1)
	checkDelivery(t, reqs[0], secret, a)
	if reqs[0].Path != "/hook" {
		t.Errorf("POST path = %q, want /hook", reqs[0].Path)
	}
	poll.Until(t, 5*time.Second, deliveries(t, reg, 1, 0, 0))

	b := alertstest.Alert(2)
	alertstest.Publish(t, store, b)
	reqs = rcv.Wait(t, 2)
	checkDelivery(t, reqs[1], secret, b)
	if n := len(rcv.Requests()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}

func TestWebhookRetries(t *testing.T) {
	js := alertstest.JetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := alertstest.Store(t, js, nil)
	rcv := alertstest.NewReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	runWebhooks(t, js, []webhook.Config{fast(rcv.URL, "s3cr3t")}, m, nil)

	a := alertstest.Alert(3)
	alertstest.Publish(t, store, a)
	reqs := rcv.Wait(t, 2)
	for _, r := range reqs {
		checkDelivery(t, r, "s3cr3t", a)
	}
	poll.Until(t, 5*time.Second, deliveries(t, reg, 1, 1, 0))
	// Acknowledged: nothing is pending or redelivered.
	poll.Until(t, 5*time.Second, func() error {
		c, err := js.Consumer(context.Background(), alerts.StreamName, "tapproof-webhook-"+fast(rcv.URL, "").ID())
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
	if n := len(rcv.Requests()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	js := alertstest.JetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := alertstest.Store(t, js, nil)
	bad := alertstest.NewReceiver(t, always(http.StatusServiceUnavailable))
	good := alertstest.NewReceiver(t, always(http.StatusOK))
	cfg := fast(bad.URL, "s3cr3t")
	cfg.MaxDeliver = 3
	runWebhooks(t, js, []webhook.Config{cfg, fast(good.URL, "other")}, m, nil)

	alertstest.Publish(t, store, alertstest.Alert(1))
	poll.Until(t, 10*time.Second, deliveries(t, reg, 1, 2, 1))
	if n := len(bad.Requests()); n != 3 {
		t.Errorf("failing receiver got %d requests, want MaxDeliver = 3", n)
	}
	// A failing receiver holds back nobody else.
	checkDelivery(t, good.Requests()[0], "other", alertstest.Alert(1))
}

func TestWebhookResumes(t *testing.T) {
	js := alertstest.JetStream(t)
	store := alertstest.Store(t, js, nil)
	rcv := alertstest.NewReceiver(t, always(http.StatusOK))
	cfgs := []webhook.Config{fast(rcv.URL, "s3cr3t")}
	stop := runWebhooks(t, js, cfgs, nil, nil)
	alertstest.Publish(t, store, alertstest.Alert(1))
	rcv.Wait(t, 1)
	stop()

	// Alerts stored while the notifier is down are delivered when it is back.
	alertstest.Publish(t, store, alertstest.Alert(2), alertstest.Alert(3))
	runWebhooks(t, js, cfgs, nil, nil)
	reqs := rcv.Wait(t, 3)
	for i, r := range reqs {
		checkDelivery(t, r, "s3cr3t", alertstest.Alert(uint64(i+1)))
	}
}

func TestWebhookSecretsNotLogged(t *testing.T) {
	js := alertstest.JetStream(t)
	reg := prometheus.NewPedanticRegistry()
	m := webhook.NewMetrics(reg)
	store := alertstest.Store(t, js, nil)

	var buf alertstest.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))

	const (
		secret    = "hmac-key-9d1f0c2e"
		pathToken = "T000-B000-path-token-5e7a"
		query     = "query-token-41c8"
	)
	flaky := alertstest.NewReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	// A receiver that is down: connection refused, whose error names the host.
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	flakyCfg := fast(flaky.URL+"/services/"+pathToken+"?token="+query, secret)
	downCfg := fast(downURL+"/services/"+pathToken, secret)
	downCfg.MaxDeliver = 2
	runWebhooks(t, js, []webhook.Config{flakyCfg, downCfg}, m, log)

	alertstest.Publish(t, store, alertstest.Alert(1))
	poll.Until(t, 10*time.Second, deliveries(t, reg, 1, 2, 1))
	checkDelivery(t, flaky.Wait(t, 2)[1], secret, alertstest.Alert(1))

	out := buf.String()
	for _, s := range []string{secret, pathToken, query, flaky.URL, downURL, strings.TrimPrefix(downURL, "http://")} {
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

func TestWebhookRecreatesDeletedConsumer(t *testing.T) {
	js := alertstest.JetStream(t)
	store := alertstest.Store(t, js, nil)
	rcv := alertstest.NewReceiver(t, always(http.StatusOK))
	cfg := fast(rcv.URL, "s3cr3t")
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
	alertstest.Publish(t, store, alertstest.Alert(1))
	checkDelivery(t, rcv.Wait(t, 1)[0], "s3cr3t", alertstest.Alert(1))
}

func TestWebhookRunEndsWhenConnectionCloses(t *testing.T) {
	js := alertstest.JetStream(t)
	alertstest.Store(t, js, nil)
	rcv := alertstest.NewReceiver(t, always(http.StatusOK))
	w, err := webhook.NewDeliverer(js, []webhook.Config{fast(rcv.URL, "k")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	poll.Until(t, 10*time.Second, func() error {
		_, err := js.Consumer(context.Background(), alerts.StreamName, "tapproof-webhook-"+fast(rcv.URL, "").ID())
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
