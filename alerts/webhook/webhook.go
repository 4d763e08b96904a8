package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof/alerts"
)

// DefaultTimeout bounds each POST where Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Log attribute keys.
const (
	logKeyWebhook  = "webhook"
	logKeyConsumer = "consumer"
	logKeyAlert    = "alert_id"
	logKeyAttempt  = "attempt"
	logKeyStatus   = "status"
	logKeyRetryIn  = "retry_in"
	logKeyError    = "error"
)

// consumerPrefix prefixes the durable consumer of each webhook; the rest of
// the name is Config.ID.
const consumerPrefix = "tapproof-webhook-"

// Config configures one webhook. Zero values take the defaults. URL and
// Secret are secrets: a Config formats and logs as its ID only.
type Config struct {
	// URL receives a POST of each alert as JSON. http or https.
	URL string
	// Secret keys the HMAC-SHA256 signature in alerts.HeaderSignature.
	Secret string
	// Timeout bounds each POST; DefaultTimeout if zero.
	Timeout time.Duration
	// Retry is how often and how soon an alert is tried again
	// (alerts.DefaultMaxDeliver times over about two hours by default).
	alerts.Retry
}

// ID is a short hash of the URL (16 hex digits of its SHA-256) that names the
// webhook in logs and in its JetStream consumer, tapproof-webhook-<ID>,
// without revealing the URL.
func (c Config) ID() string {
	sum := sha256.Sum256([]byte(c.URL))
	return hex.EncodeToString(sum[:8])
}

// String returns "webhook <ID>".
func (c Config) String() string { return "webhook " + c.ID() }

// GoString is String, so that %#v does not print the secret either.
func (c Config) GoString() string { return c.String() }

// LogValue logs c as its ID.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.ID()) }

// Validate reports whether c is usable. Its errors never contain the URL or
// the secret.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: URL must be an absolute http or https URL", c)
	}
	if c.Secret == "" {
		return fmt.Errorf("%s: secret is required", c)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%s: timeout must not be negative", c)
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("%s: %v", c, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Deliverer delivers stored alerts to webhooks. Each webhook has its own
// durable pull consumer on the alert stream, so a slow or failing receiver
// holds back nobody else and a restart resumes where it stopped. Delivery is
// at least once; a new webhook receives alerts stored after its consumer is
// first created.
type Deliverer struct {
	js    jetstream.JetStream
	hooks []*webhook
}

// NewDeliverer returns a Deliverer to the webhooks of cfgs. metrics and log
// may be nil. The alert stream must exist (alerts.NewStore) before Run.
func NewDeliverer(js jetstream.JetStream, cfgs []Config, metrics *Metrics, log *slog.Logger) (*Deliverer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// A redirect is a failure: following it would turn the POST into a
		// GET, or send a signed alert somewhere not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	w := &Deliverer{js: js}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if seen[c.ID()] {
			return nil, fmt.Errorf("%s: configured twice", c)
		}
		seen[c.ID()] = true
		c = c.withDefaults()
		u, _ := url.Parse(c.URL)
		w.hooks = append(w.hooks, &webhook{
			cfg: c, u: u, id: c.ID(), client: client, metrics: metrics,
			log: log.With(logKeyWebhook, c.ID()),
		})
	}
	return w, nil
}

// Run delivers alerts until ctx is done, then returns nil, or returns an
// error if a consumer cannot be created or the NATS connection closes.
// An alert being delivered when ctx ends is left for redelivery.
func (w *Deliverer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for _, h := range w.hooks {
		wg.Go(func() {
			// A consumer that cannot be created yet (NATS restarting, a
			// concurrent delete) is tried again, as in run.
			c, err := h.consumer(ctx, w.js)
			for err != nil {
				if ctx.Err() != nil {
					return
				}
				if w.js.Conn().IsClosed() {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				h.log.Warn("webhook consumer unavailable", logKeyError, err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				c, err = h.consumer(ctx, w.js)
			}
			h.log.Info("webhook ready", logKeyConsumer, c.CachedInfo().Name)
			if err := h.run(ctx, w.js, c); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	return firstErr
}

// webhook is one configured receiver.
type webhook struct {
	cfg     Config
	u       *url.URL
	id      string
	client  *http.Client
	metrics *Metrics
	log     *slog.Logger
}

func (h *webhook) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, alerts.StreamName, jetstream.ConsumerConfig{
		Durable:       consumerPrefix + h.id,
		Description:   "tapproof webhook " + h.id,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2*h.cfg.Timeout + 10*time.Second,
		MaxDeliver:    h.cfg.Attempts(),
		FilterSubject: alerts.SubjectPrefix + ".>",
	})
	if err != nil {
		return nil, fmt.Errorf("webhook %s consumer: %w", h.id, err)
	}
	return c, nil
}

// run delivers from cons until ctx is done, resuming after interruptions
// (server restart, consumer deleted) and failing only if the connection is
// closed for good.
func (h *webhook) run(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer) error {
	for {
		err := h.drain(ctx, cons)
		if ctx.Err() != nil {
			return nil
		}
		if js.Conn().IsClosed() {
			return fmt.Errorf("webhook %s: NATS connection closed: %w", h.id, err)
		}
		h.log.Warn("webhook consumer interrupted, resuming", logKeyError, err)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			if cons, err = h.consumer(ctx, js); err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			if js.Conn().IsClosed() {
				return fmt.Errorf("webhook %s: NATS connection closed: %w", h.id, err)
			}
			h.log.Warn("webhook consumer unavailable", logKeyError, err)
		}
	}
}

// drain handles messages one at a time until the iterator fails.
func (h *webhook) drain(ctx context.Context, cons jetstream.Consumer) error {
	// One message in flight: prefetched messages would wait for a slow
	// receiver while their ack wait runs out.
	// Short pull expiry: a deleted consumer or restarted server is noticed
	// within seconds.
	it, err := cons.Messages(jetstream.PullMaxMessages(1), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return err
	}
	defer it.Stop()
	for ctx.Err() == nil {
		msg, err := it.Next(jetstream.NextMaxWait(2 * time.Second))
		if errors.Is(err, nats.ErrTimeout) {
			// Idle: make sure the consumer still exists, since a deleted
			// one is not always reported to a waiting pull.
			if _, err := cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		h.handle(ctx, msg)
	}
	return ctx.Err()
}

// handle delivers one alert and acknowledges, schedules a retry or gives up.
func (h *webhook) handle(ctx context.Context, msg jetstream.Msg) {
	attempt := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	a, err := h.metrics.decodeAlert(msg.Data())
	if err != nil {
		h.log.Error("alert message set aside", "subject", msg.Subject(), logKeyError, err)
		h.metrics.delivery(alerts.ResultFailed)
		h.settle(msg.Term())
		return
	}
	log := h.log.With(logKeyAlert, a.ID, logKeyAttempt, attempt)
	status, err := h.post(ctx, a.ID, msg.Data())
	var why []any
	if status != 0 {
		why = append(why, logKeyStatus, status)
	}
	if err != nil {
		why = append(why, logKeyError, h.redact(err))
	}
	switch {
	case err == nil && status/100 == 2:
		h.metrics.delivery(alerts.ResultDelivered)
		log.Debug("alert delivered", why...)
		h.settle(msg.Ack())
	case ctx.Err() != nil:
		// Shutting down: leave the alert to the next run.
		h.settle(msg.Nak())
	case attempt >= uint64(h.cfg.Attempts()):
		h.metrics.delivery(alerts.ResultFailed)
		log.Error("alert delivery failed for the last time", why...)
		h.settle(msg.Term())
	default:
		delay := h.cfg.Backoff(attempt)
		h.metrics.delivery(alerts.ResultRetried)
		log.Warn("alert delivery failed, will retry", append(why, logKeyRetryIn, delay)...)
		h.settle(msg.NakWithDelay(delay))
	}
}

func (h *webhook) settle(err error) {
	if err != nil {
		h.log.Warn("acknowledging alert message", logKeyError, err)
	}
}

// post sends body and returns the response status.
func (h *webhook) post(ctx context.Context, id string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tapproof-webhook/1")
	req.Header.Set(alerts.HeaderSignature, alerts.Sign(h.cfg.Secret, body))
	req.Header.Set(alerts.HeaderAlertID, id)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// redact returns err's text without the webhook's URL, host or secret.
// net/http puts the full URL, query included, into its errors.
func (h *webhook) redact(err error) string {
	if err == nil {
		return ""
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	for _, secret := range []string{h.cfg.URL, h.cfg.Secret, h.u.Host, h.u.Hostname()} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<webhook>")
		}
	}
	return s
}
