// Package public serves tapproof's resident-facing web: a status page where
// residents find their area, its latest readings and open alerts, and
// subscribe; each alert as OASIS CAP 1.2 (https://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2-os.html);
// an Atom feed of alerts (RFC 4287) for public-warning aggregators; and
// Server-Sent Events for live pages.
//
// Routes, relative to where Handler is mounted:
//
//	GET  /                          status page: what the open alerts mean and what to do, sites by utility and area
//	GET  /sites/{utility}           one utility's sites
//	GET  /sites/{utility}/{site}    one site: its status, 90 days of history, latest readings, subscribe form
//	GET  /subscribe                 the subscribe form
//	POST /subscribe                 subscribe (double opt-in: a confirmation is sent)
//	GET  /confirm?token=            confirm a subscription
//	GET  /unsubscribe?token=        unsubscribe page (a button)
//	POST /unsubscribe?token=        unsubscribe, also RFC 8058 one-click
//	GET  /v1/alerts/{id}/cap.xml    one alert in CAP 1.2
//	GET  /v1/alerts/feed.atom       the newest alerts, each linking its CAP document
//	GET  /v1/alerts/stream          alert messages as Server-Sent Events
//
// A home's own lab result (an individual compliance alert,
// tapproof.AlertClass.Private) is never shown: not among a page's open
// alerts or in its status sentence, not in the Atom feed or the event
// stream, and its CAP document is 404. It goes to the household that
// subscribed to its sample with the sample's household code ("I have a lab
// result code" on the subscribe form; package residents checks the code,
// and a wrong one counts against the same SubscribeLimit as any request).
//
// Each client (its connection's address, an IPv6 client by its /64; behind
// a TrustedProxies proxy, the address it forwards) may make the costly
// reads (the status and site pages, CAP, Atom, opening an event stream)
// at ReadLimit and POST /subscribe at SubscribeLimit; above it, it gets 429
// with Retry-After and a page in its language.
//
// public talks to the rest of tapproof through the small interfaces of
// Config and the types of packages tapproof, alerts, alerts/cap,
// alerts/notice and alerts/residents; it must not import ingest, anchor,
// influx, journal, httpapi, dashboards or alerts/webhook.
//
// Every page is in the visitor's language: the one picked with the
// language switch (?lang=, kept in a cookie), else the best match of
// Accept-Language among those package locale has files for, else English.
// Pages work without JavaScript; live updates (Server-Sent Events) are an
// enhancement.
//
// A site's 90-day history is read from InfluxDB at most once per
// HistoryTTL whatever the number of visitors, so that strangers reloading
// a page cannot turn it into load on the store.
//
// Everything here is read-only for the public: no route may change a
// reading, an alert, a site or anything else tapproof records. The one
// exception is residents subscribing: POST /subscribe, GET /confirm and
// POST /unsubscribe reach Subscriber, and only for the visitor's own
// subscription.
//
// Files: public.go holds Config and its interfaces, Handler and the routes;
// ratelimit.go the limits per client;
// pages.go the HTML pages; status.go the sentence and guidance a page
// starts with; history.go a site's chart; subscribe.go subscribing, confirming and
// unsubscribing; feeds.go the CAP documents and the Atom feed; events.go the
// Server-Sent Events stream.
package public

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/residents"
)

// Defaults, used where a Config field is zero.
const (
	DefaultMaxStreams = 256 // concurrent Server-Sent Event streams
	DefaultFeedSize   = 50  // entries in the Atom feed
	// MaxFormBytes caps the body of a POST.
	MaxFormBytes = 8 << 10
	// Heartbeat is how often an idle event stream sends a comment.
	Heartbeat = 25 * time.Second
)

// Readings reads a site's readings. influx.Reader implements it.
type Readings interface {
	// LatestReadings returns a site's latest readings, newest first, one
	// per device and analyte.
	LatestReadings(ctx context.Context, utility, site string) ([]tapproof.Reading, error)
	// History returns a site's lead history from from to to, oldest first:
	// the highest screening reading of each day (its SampledAt the day's
	// start) and every lab result.
	History(ctx context.Context, utility, site string, from, to time.Time) ([]tapproof.Reading, error)
}

// Alerts reads stored alert messages. *alerts.Store implements it.
type Alerts interface {
	Recent(ctx context.Context, limit int) ([]tapproof.Alert, error)
	// OpenAlerts returns the open alerts of utility (all if empty), of
	// site if set (with the whole system's), newest first: kept per
	// alert, so that no number of other alerts hides one.
	OpenAlerts(ctx context.Context, utility, site string) ([]tapproof.Alert, error)
	Get(ctx context.Context, id string) (tapproof.Alert, bool, error)
	// Watch returns a channel of the alert messages stored from now on,
	// closed when ctx is done.
	Watch(ctx context.Context) (<-chan tapproof.Alert, error)
}

// Subscriber runs resident subscriptions. *residents.Notifier implements it.
type Subscriber interface {
	Subscribe(ctx context.Context, req residents.SubscribeRequest) (residents.Subscription, error)
	Confirm(ctx context.Context, token string) (residents.Subscription, error)
	Unsubscribe(ctx context.Context, token string) (residents.Subscription, error)
}

// Config configures Handler.
type Config struct {
	Sites      residents.Sites
	Readings   Readings
	Alerts     Alerts
	Subscriber Subscriber
	// CAP names the sender of CAP alerts; CAP.Links.Base is the public
	// base URL of these pages (absolute links in feeds and CAP).
	CAP cap.Config
	// Title heads every page, e.g. "Springfield drinking water".
	Title string
	// Rules give the action level each day of a site's history; the zero
	// RuleBook is federal.
	Rules tapproof.RuleBook
	// Now is the clock of the history's window and of the rate limits;
	// time.Now if nil.
	Now func() time.Time
	// Channels offered on the subscribe form; email and webhook if empty.
	Channels   []residents.Channel
	MaxStreams int
	FeedSize   int
	Log        *slog.Logger
	// Done, when closed, ends every event stream: http.Server.Shutdown
	// waits for open requests, and an event stream never ends by itself.
	// Close it from http.Server.RegisterOnShutdown. Nil: streams end only
	// when their client goes.
	Done <-chan struct{}
	// ReadLimit and SubscribeLimit bound how often one client may read a
	// costly page or feed and subscribe; DefaultReadLimit and
	// DefaultSubscribeLimit where zero. MaxClients bounds the clients each
	// limit tracks; DefaultMaxClients if zero.
	ReadLimit      RateLimit
	SubscribeLimit RateLimit
	MaxClients     int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; a request from anywhere else is its connection's
	// address, whatever it forwards.
	TrustedProxies []netip.Prefix
	// Metrics counts refusals; nil counts nothing.
	Metrics *Metrics
}

// Validate checks cfg.
func (c Config) Validate() error {
	if c.Sites == nil || c.Readings == nil || c.Alerts == nil || c.Subscriber == nil {
		return errors.New("public: sites, readings, alerts and subscriber are required")
	}
	if err := c.CAP.Validate(); err != nil {
		return fmt.Errorf("public: %w", err)
	}
	if c.CAP.Links.Base == "" {
		return errors.New("public: CAP.Links.Base, the public base URL, is required")
	}
	if err := c.ReadLimit.Validate(); err != nil {
		return err
	}
	if err := c.SubscribeLimit.Validate(); err != nil {
		return err
	}
	if c.MaxClients < 0 {
		return errors.New("public: MaxClients must not be negative")
	}
	return nil
}

// Handler returns the resident pages. It panics if cfg is invalid.
func Handler(cfg Config) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.FeedSize == 0 {
		cfg.FeedSize = DefaultFeedSize
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = []residents.Channel{residents.ChannelEmail, residents.ChannelWebhook}
	}
	if cfg.Title == "" {
		cfg.Title = "Drinking water status"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	s := &server{cfg: cfg, streams: make(chan struct{}, cfg.MaxStreams),
		reads:      newLimiter(limitRead, cfg.ReadLimit.orDefault(DefaultReadLimit), cfg.MaxClients),
		subscribes: newLimiter(limitSubscribe, cfg.SubscribeLimit.orDefault(DefaultSubscribeLimit), cfg.MaxClients)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", localized(s.limitPage(s.reads, s.index)))
	mux.HandleFunc("GET /sites/{utility}", localized(s.limitPage(s.reads, s.index)))
	mux.HandleFunc("GET /sites/{utility}/{site}", localized(s.limitPage(s.reads, s.site)))
	mux.HandleFunc("GET /subscribe", localized(s.subscribeForm))
	mux.HandleFunc("POST /subscribe", localized(s.limitPage(s.subscribes, s.subscribe)))
	mux.HandleFunc("GET /confirm", localized(s.confirm))
	mux.HandleFunc("GET /unsubscribe", localized(s.unsubscribeForm))
	mux.HandleFunc("POST /unsubscribe", localized(s.unsubscribe))
	mux.HandleFunc("GET /v1/alerts/{id}/cap.xml", s.limitFeed(s.reads, s.cap))
	mux.HandleFunc("GET /v1/alerts/feed.atom", s.limitFeed(s.reads, s.feed))
	mux.HandleFunc("GET /v1/alerts/stream", s.limitFeed(s.reads, s.stream))
	return secure(mux)
}

// secure sets the headers every page gets and caps request bodies.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "+
			"connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer") // confirm and unsubscribe URLs carry tokens
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		h.ServeHTTP(w, r)
	})
}

type server struct {
	cfg     Config
	streams chan struct{}
	hist    historyCache
	// reads and subscribes are the rate limits per client.
	reads, subscribes *limiter
}
