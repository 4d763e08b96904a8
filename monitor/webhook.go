package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/tapproof/tapproof/alerts"
)

// HeaderFindingID names the finding of a webhook delivery (its evidence
// directory), for receivers to deduplicate on. A delivery is signed as the
// platform's own webhooks are (alerts.HeaderSignature, alerts.Sign) when a
// secret is configured, so that a receiver checks both alike.
const HeaderFindingID = "X-Tapproof-Finding-Id"

// Webhook delivery parameters.
const (
	webhookQueue    = 1024             // findings waiting; more are dropped, and counted
	webhookTimeout  = 10 * time.Second // per POST
	webhookAttempts = 3
	webhookBackoff  = 2 * time.Second // before the second attempt, doubling
	webhookDrain    = 15 * time.Second
)

// validateWebhookURL checks that u is an absolute http(s) URL. Its error
// never contains the URL, which may carry a token.
func validateWebhookURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("webhook: the URL must be an absolute http or https URL")
	}
	return nil
}

// webhookSender POSTs findings to one webhook, in order, off the polls'
// path: a slow receiver delays no check.
type webhookSender struct {
	url, secret string
	client      *http.Client
	metrics     *Metrics
	log         *slog.Logger

	queue chan delivery
	done  chan struct{}
}

type delivery struct {
	id   string
	body []byte
}

func newWebhookSender(u, secret string, client *http.Client, metrics *Metrics, log *slog.Logger) *webhookSender {
	if client == nil {
		client = &http.Client{
			Timeout: webhookTimeout,
			// A redirect is a failure: following it would send a signed
			// finding somewhere not configured, as a GET.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &webhookSender{url: u, secret: secret, client: client, metrics: metrics, log: log}
}

// start starts delivering; stop delivers what is queued, for at most
// webhookDrain, and returns when the sender is done.
func (w *webhookSender) start() (stop func()) {
	w.queue = make(chan delivery, webhookQueue)
	w.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	go func() {
		defer close(w.done)
		for d := range w.queue {
			w.deliver(ctx, d)
		}
	}()
	return func() {
		once.Do(func() {
			close(w.queue)
			t := time.AfterFunc(webhookDrain, cancel)
			<-w.done
			t.Stop()
			cancel()
		})
	}
}

// send queues f for delivery, or drops it if the queue is full.
func (w *webhookSender) send(f *Finding) {
	body, err := json.Marshal(f)
	if err != nil {
		w.log.Error("webhook: finding not encoded", slog.Any("error", err))
		return
	}
	select {
	case w.queue <- delivery{id: filepath.Base(f.Evidence), body: body}:
	default:
		w.metrics.delivery(webhookDropped)
		w.log.Warn("webhook: queue full, finding not delivered (its evidence is saved)", slog.String("finding", filepath.Base(f.Evidence)))
	}
}

func (w *webhookSender) deliver(ctx context.Context, d delivery) {
	backoff := webhookBackoff
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, d)
		if err == nil {
			w.metrics.delivery(webhookDelivered)
			return
		}
		if attempt == webhookAttempts || ctx.Err() != nil {
			w.metrics.delivery(webhookFailed)
			w.log.Warn("webhook: finding not delivered (its evidence is saved)", slog.String("finding", d.id), slog.Int("attempts", attempt), slog.Any("error", err))
			return
		}
		w.metrics.delivery(webhookRetried)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (w *webhookSender) post(ctx context.Context, d delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(d.body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderFindingID, d.id)
	if w.secret != "" {
		req.Header.Set(alerts.HeaderSignature, alerts.Sign(w.secret, d.body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return redact(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// redact drops the URL, which may carry a token, from a client error.
func redact(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
