// Package public serves tapproof's resident-facing web: a status page where
// residents find their area, its latest readings and open alerts, and
// subscribe; each alert as OASIS CAP 1.2 (https://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2-os.html);
// an Atom feed of alerts (RFC 4287) for public-warning aggregators; and
// Server-Sent Events for live pages.
//
// Routes, relative to where Handler is mounted:
//
//	GET  /                          status page: sites by utility and service area, open alerts
//	GET  /sites/{utility}           one utility's sites
//	GET  /sites/{utility}/{site}    one site: latest readings, open alerts, subscribe form
//	GET  /subscribe                 the subscribe form
//	POST /subscribe                 subscribe (double opt-in: a confirmation is sent)
//	GET  /confirm?token=            confirm a subscription
//	GET  /unsubscribe?token=        unsubscribe page (a button)
//	POST /unsubscribe?token=        unsubscribe, also RFC 8058 one-click
//	GET  /v1/alerts/{id}/cap.xml    one alert in CAP 1.2
//	GET  /v1/alerts/feed.atom       the newest alerts, each linking its CAP document
//	GET  /v1/alerts/stream          alert messages as Server-Sent Events
//
// public talks to the rest of tapproof through the small interfaces of
// Config and the types of packages tapproof and alerts; it must not import
// ingest, anchor, influx, journal, httpapi or dashboards.
package public

import (
	"context"
	"embed"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
)

// Defaults, used where a Config field is zero.
const (
	DefaultMaxStreams = 256 // concurrent Server-Sent Event streams
	DefaultFeedSize   = 50  // entries in the Atom feed
	DefaultRecent     = 500 // alert messages scanned for open alerts
	// MaxFormBytes caps the body of a POST.
	MaxFormBytes = 8 << 10
	// Heartbeat is how often an idle event stream sends a comment.
	Heartbeat = 25 * time.Second
)

// Readings returns a site's latest readings, newest first, one per device
// and analyte. cmd/tapproof implements it from InfluxDB or the journal.
type Readings interface {
	LatestReadings(ctx context.Context, utility, site string) ([]tapproof.Reading, error)
}

// Alerts reads stored alert messages. *alerts.Store implements it.
type Alerts interface {
	Recent(ctx context.Context, limit int) ([]tapproof.Alert, error)
	Get(ctx context.Context, id string) (tapproof.Alert, bool, error)
	// Watch returns a channel of the alert messages stored from now on,
	// closed when ctx is done.
	Watch(ctx context.Context) (<-chan tapproof.Alert, error)
}

// Subscriber runs resident subscriptions. *alerts.Notifier implements it.
type Subscriber interface {
	Subscribe(ctx context.Context, req alerts.SubscribeRequest) (alerts.Subscription, error)
	Confirm(ctx context.Context, token string) (alerts.Subscription, error)
	Unsubscribe(ctx context.Context, token string) (alerts.Subscription, error)
}

// Config configures Handler.
type Config struct {
	Sites      alerts.Sites
	Readings   Readings
	Alerts     Alerts
	Subscriber Subscriber
	// CAP names the sender of CAP alerts; CAP.Links.Base is the public
	// base URL of these pages (absolute links in feeds and CAP).
	CAP alerts.CAPConfig
	// Title heads every page, e.g. "Springfield drinking water".
	Title string
	// Channels offered on the subscribe form; email and webhook if empty.
	Channels   []alerts.Channel
	MaxStreams int
	FeedSize   int
	Log        *slog.Logger
	// Done, when closed, ends every event stream: http.Server.Shutdown
	// waits for open requests, and an event stream never ends by itself.
	// Close it from http.Server.RegisterOnShutdown. Nil: streams end only
	// when their client goes.
	Done <-chan struct{}
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
	return nil
}

//go:embed pages.html
var pagesFS embed.FS

var pages = template.Must(template.New("pages.html").Funcs(template.FuncMap{
	"when":     func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":      func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) },
	"kind":     kindLabel,
	"alertsOf": func(p page) alertList { return alertList{Base: p.Base, List: p.Open} },
}).ParseFS(pagesFS, "pages.html"))

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
		cfg.Channels = []alerts.Channel{alerts.ChannelEmail, alerts.ChannelWebhook}
	}
	if cfg.Title == "" {
		cfg.Title = "Drinking water status"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, streams: make(chan struct{}, cfg.MaxStreams)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /sites/{utility}", s.index)
	mux.HandleFunc("GET /sites/{utility}/{site}", s.site)
	mux.HandleFunc("GET /subscribe", s.subscribeForm)
	mux.HandleFunc("POST /subscribe", s.subscribe)
	mux.HandleFunc("GET /confirm", s.confirm)
	mux.HandleFunc("GET /unsubscribe", s.unsubscribeForm)
	mux.HandleFunc("POST /unsubscribe", s.unsubscribe)
	mux.HandleFunc("GET /v1/alerts/{id}/cap.xml", s.cap)
	mux.HandleFunc("GET /v1/alerts/feed.atom", s.feed)
	mux.HandleFunc("GET /v1/alerts/stream", s.stream)
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
}

// page is what every template sees.
type page struct {
	Title    string
	Base     string // public base URL without a trailing slash
	Heading  string
	Utility  string
	Query    string
	Areas    []area
	Site     *alerts.Site
	Readings []tapproof.Reading
	Open     []tapproof.Alert
	Channels []alerts.Channel
	Target   string // preselected subscribe target
	Targets  []target
	Message  string
	Error    string
	Token    string
	FeedURL  string
}

// alertList is what the "alerts" template sees.
type alertList struct {
	Base string
	List []tapproof.Alert
}

type area struct {
	Utility, ID, Name string
	Sites             []alerts.Site
}

type target struct{ Value, Label string }

func (s *server) render(w http.ResponseWriter, status int, name string, p page) {
	p.Title = s.cfg.Title
	p.Base = strings.TrimSuffix(s.cfg.CAP.Links.Base, "/")
	p.FeedURL = p.Base + "/v1/alerts/feed.atom"
	if p.Channels == nil {
		p.Channels = s.cfg.Channels
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		s.cfg.Log.Warn("render page", "page", name, "error", err)
	}
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.cfg.Log.Error("public page failed", "path", r.URL.Path, "what", what, "error", err)
	s.render(w, http.StatusInternalServerError, "message", page{Heading: "Something went wrong",
		Error: "This page is unavailable right now. Please try again in a few minutes."})
}

func (s *server) notFound(w http.ResponseWriter, what string) {
	s.render(w, http.StatusNotFound, "message", page{Heading: "Not found", Error: what})
}

// group sorts sites into utilities and service areas, keeping those that
// match q (case-insensitive, in name, area or id) and utility if set.
func group(sites []alerts.Site, utility, q string) []area {
	q = strings.ToLower(strings.TrimSpace(q))
	idx := map[string]int{}
	var out []area
	for _, st := range sites {
		if utility != "" && st.Utility != utility {
			continue
		}
		hay := strings.ToLower(st.Name + " " + st.AreaName + " " + st.Area + " " + st.ID + " " + st.Utility)
		if q != "" && !strings.Contains(hay, q) {
			continue
		}
		key := st.Utility + "/" + st.Area
		i, ok := idx[key]
		if !ok {
			name := st.AreaName
			if name == "" {
				name = st.Area
			}
			if name == "" {
				name = "Other sites"
			}
			out = append(out, area{Utility: st.Utility, ID: st.Area, Name: name})
			i = len(out) - 1
			idx[key] = i
		}
		out[i].Sites = append(out[i].Sites, st)
	}
	slices.SortFunc(out, func(a, b area) int {
		return strings.Compare(a.Utility+"\x00"+a.Name, b.Utility+"\x00"+b.Name)
	})
	for _, a := range out {
		slices.SortFunc(a.Sites, func(x, y alerts.Site) int { return strings.Compare(x.Name, y.Name) })
	}
	return out
}

// open returns the open alerts, of utility and site if set.
func (s *server) open(ctx context.Context, utility, site string) ([]tapproof.Alert, error) {
	recent, err := s.cfg.Alerts.Recent(ctx, DefaultRecent)
	if err != nil {
		return nil, err
	}
	var out []tapproof.Alert
	for _, a := range alerts.Open(recent) {
		if (utility == "" || a.Utility == utility) && (site == "" || a.Site == site || a.Site == "") {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	utility := r.PathValue("utility")
	if utility != "" && !tapproof.ValidID(utility) {
		s.notFound(w, "There is no such water system.")
		return
	}
	q := r.URL.Query().Get("q")
	if len(q) > 100 {
		q = q[:100]
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	if utility != "" && !slices.ContainsFunc(sites, func(st alerts.Site) bool { return st.Utility == utility }) {
		s.notFound(w, "There is no such water system.")
		return
	}
	open, err := s.open(r.Context(), utility, "")
	if err != nil {
		s.fail(w, r, "alerts", err)
		return
	}
	s.render(w, http.StatusOK, "index", page{Heading: s.cfg.Title, Utility: utility, Query: q, Areas: group(sites, utility, q), Open: open})
}

func (s *server) site(w http.ResponseWriter, r *http.Request) {
	utility, id := r.PathValue("utility"), r.PathValue("site")
	if !tapproof.ValidID(utility) || !tapproof.ValidID(id) {
		s.notFound(w, "There is no such site.")
		return
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	site, ok := alerts.FindSite(sites, utility, id)
	if !ok {
		s.notFound(w, "There is no such site.")
		return
	}
	readings, err := s.cfg.Readings.LatestReadings(r.Context(), utility, id)
	if err != nil {
		s.fail(w, r, "readings", err)
		return
	}
	open, err := s.open(r.Context(), utility, id)
	if err != nil {
		s.fail(w, r, "alerts", err)
		return
	}
	s.render(w, http.StatusOK, "site", page{Heading: site.Name, Utility: utility, Site: site, Readings: readings, Open: open,
		Target: "site:" + utility + "/" + id, Targets: targets(sites, utility)})
}

// targets lists what a resident of utility can subscribe to.
func targets(sites []alerts.Site, utility string) []target {
	var out []target
	seen := map[string]bool{}
	for _, a := range group(sites, utility, "") {
		if a.ID != "" && !seen[a.Utility+"/"+a.ID] {
			seen[a.Utility+"/"+a.ID] = true
			out = append(out, target{Value: "area:" + a.Utility + "/" + a.ID, Label: a.Name + " (whole area)"})
		}
		for _, st := range a.Sites {
			out = append(out, target{Value: "site:" + st.Utility + "/" + st.ID, Label: st.Name})
		}
	}
	return out
}

// parseTarget reads "site:<utility>/<site>" or "area:<utility>/<area>".
func parseTarget(v string) (alerts.Target, bool) {
	kind, rest, ok := strings.Cut(v, ":")
	if !ok {
		return alerts.Target{}, false
	}
	u, id, ok := strings.Cut(rest, "/")
	if !ok || !tapproof.ValidID(u) || !tapproof.ValidID(id) {
		return alerts.Target{}, false
	}
	switch kind {
	case "site":
		return alerts.Target{Utility: u, Site: id}, true
	case "area":
		return alerts.Target{Utility: u, Area: id}, true
	}
	return alerts.Target{}, false
}

func (s *server) subscribeForm(w http.ResponseWriter, r *http.Request) {
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	t := r.URL.Query().Get("target")
	if _, ok := parseTarget(t); !ok {
		t = ""
	}
	s.render(w, http.StatusOK, "subscribe", page{Heading: "Get alerts", Target: t, Targets: targets(sites, "")})
}

func (s *server) subscribe(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.render(w, http.StatusRequestEntityTooLarge, "message", page{Heading: "Too large", Error: "The form was too large."})
			return
		}
		s.render(w, http.StatusBadRequest, "message", page{Heading: "Bad request", Error: "The form could not be read."})
		return
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	tv := r.PostForm.Get("target")
	again := page{Heading: "Get alerts", Target: tv, Targets: targets(sites, "")}
	t, ok := parseTarget(tv)
	if !ok {
		again.Error = "Choose a site or service area."
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	ch := alerts.Channel(r.PostForm.Get("channel"))
	if !slices.Contains(s.cfg.Channels, ch) {
		again.Error = "Choose how you want to receive alerts."
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	_, err = s.cfg.Subscriber.Subscribe(r.Context(), alerts.SubscribeRequest{Target: t, Channel: ch, Address: r.PostForm.Get("address")})
	if errors.Is(err, alerts.ErrInvalidSubscription) {
		again.Error = strings.TrimPrefix(err.Error(), alerts.ErrInvalidSubscription.Error()+": ")
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	if err != nil {
		s.fail(w, r, "subscribe", err)
		return
	}
	// The same answer whether the address was new, pending or already
	// confirmed: the page must not tell who is subscribed.
	msg := "Check your inbox: we sent a confirmation link. Nothing will be sent to you until you open it."
	if ch == alerts.ChannelWebhook {
		msg = "We sent a confirmation request, with the signing secret, to your webhook. Nothing more will be sent to it until the confirmation link is opened."
	}
	s.render(w, http.StatusOK, "message", page{Heading: "Almost done", Message: msg})
}

func token(r *http.Request) string {
	t := r.URL.Query().Get("token")
	if t == "" && r.Method == http.MethodPost {
		t = r.PostFormValue("token")
	}
	if len(t) > 64 {
		return ""
	}
	return t
}

func (s *server) confirm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sub, err := s.cfg.Subscriber.Confirm(r.Context(), token(r))
	if errors.Is(err, alerts.ErrUnknownToken) {
		s.render(w, http.StatusNotFound, "message", page{Heading: "Link expired", Error: "This confirmation link is invalid or has expired. Please subscribe again."})
		return
	}
	if err != nil {
		s.fail(w, r, "confirm", err)
		return
	}
	s.render(w, http.StatusOK, "message", page{Heading: "Subscription confirmed",
		Message: "You will now receive drinking-water alerts for " + describe(sub.Target) + ". Every alert has a link to unsubscribe."})
}

func describe(t alerts.Target) string {
	if t.Site != "" {
		return "site " + t.Site + " of " + t.Utility
	}
	return "the " + t.Area + " service area of " + t.Utility
}

func (s *server) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	t := token(r)
	if t == "" {
		s.render(w, http.StatusBadRequest, "message", page{Heading: "Link incomplete", Error: "This unsubscribe link is incomplete."})
		return
	}
	s.render(w, http.StatusOK, "unsubscribe", page{Heading: "Unsubscribe", Token: t})
}

func (s *server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "message", page{Heading: "Bad request", Error: "The form could not be read."})
		return
	}
	_, err := s.cfg.Subscriber.Unsubscribe(r.Context(), token(r))
	if errors.Is(err, alerts.ErrUnknownToken) {
		s.render(w, http.StatusNotFound, "message", page{Heading: "Already unsubscribed", Error: "This link is invalid or was already used."})
		return
	}
	if err != nil {
		s.fail(w, r, "unsubscribe", err)
		return
	}
	s.render(w, http.StatusOK, "message", page{Heading: "Unsubscribed", Message: "You will receive no more alerts for this subscription."})
}

func (s *server) lookup(w http.ResponseWriter, r *http.Request) (tapproof.Alert, *alerts.Site, bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > 200 || strings.ContainsAny(id, " ,<&/") {
		http.NotFound(w, r)
		return tapproof.Alert{}, nil, false
	}
	a, ok, err := s.cfg.Alerts.Get(r.Context(), id)
	if err != nil {
		s.cfg.Log.Error("alert lookup", "alert_id", id, "error", err)
		http.Error(w, "alert store unavailable", http.StatusServiceUnavailable)
		return tapproof.Alert{}, nil, false
	}
	if !ok || a.State() == tapproof.AlertSuppressed {
		http.NotFound(w, r)
		return tapproof.Alert{}, nil, false
	}
	var site *alerts.Site
	if sites, err := s.cfg.Sites.Sites(r.Context()); err == nil {
		site, _ = alerts.FindSite(sites, a.Utility, a.Site)
	}
	return a, site, true
}

func (s *server) cap(w http.ResponseWriter, r *http.Request) {
	a, site, ok := s.lookup(w, r)
	if !ok {
		return
	}
	doc, err := alerts.CAP(a, site, s.cfg.CAP)
	if err != nil {
		s.cfg.Log.Error("cap", "alert_id", a.ID, "error", err)
		http.Error(w, "alert not available as CAP", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(doc)
}

// Atom (RFC 4287).
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomEntry struct {
	ID       string     `xml:"id"`
	Title    string     `xml:"title"`
	Updated  string     `xml:"updated"`
	Category []atomCat  `xml:"category"`
	Summary  string     `xml:"summary"`
	Links    []atomLink `xml:"link"`
}

type atomCat struct {
	Term string `xml:"term,attr"`
}

func (s *server) feed(w http.ResponseWriter, r *http.Request) {
	recent, err := s.cfg.Alerts.Recent(r.Context(), s.cfg.FeedSize)
	if err != nil {
		s.cfg.Log.Error("feed", "error", err)
		http.Error(w, "alert store unavailable", http.StatusServiceUnavailable)
		return
	}
	links := s.cfg.CAP.Links
	f := atomFeed{
		ID:     links.Join("v1/alerts/feed.atom"),
		Title:  s.cfg.Title + ": drinking-water alerts",
		Author: atomPerson{Name: cmp(s.cfg.CAP.SenderName, s.cfg.CAP.Sender)},
	}
	f.Links = []atomLink{{Rel: "self", Type: "application/atom+xml", Href: f.ID}}
	updated := time.Unix(0, 0).UTC()
	for _, a := range recent {
		if a.State() == tapproof.AlertSuppressed {
			continue
		}
		notice, err := alerts.RenderNotice(a, nil, links)
		if err != nil {
			continue
		}
		if a.RaisedAt.After(updated) {
			updated = a.RaisedAt
		}
		f.Entries = append(f.Entries, atomEntry{
			ID:       links.CAP(a.ID),
			Title:    kindLabel(a) + ": " + notice.Subject,
			Updated:  a.RaisedAt.UTC().Format(time.RFC3339),
			Category: []atomCat{{Term: string(a.Class)}, {Term: string(a.Type())}},
			Summary:  atomSummary(a),
			Links: []atomLink{
				{Rel: "alternate", Type: "application/cap+xml", Href: links.CAP(a.ID)},
				{Rel: "related", Type: "text/html", Href: links.Status(a.Utility, a.Site)},
			},
		})
	}
	f.Updated = updated.Format(time.RFC3339)
	out, err := xml.MarshalIndent(f, "", "  ")
	if err != nil {
		http.Error(w, "feed unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func kindLabel(a tapproof.Alert) string {
	switch {
	case a.Type() == tapproof.CancelMsg:
		return "All clear"
	case a.Type() == tapproof.UpdateMsg:
		return "Update"
	case a.Class == tapproof.SystemExceedance:
		return "Action level exceeded"
	case a.Class == tapproof.IndividualCompliance:
		return "Lab result above action level"
	}
	return "Screening alert"
}

// atomSummary is the one line of an alert in the Atom feed.
func atomSummary(a tapproof.Alert) string {
	v, level := strconv.FormatFloat(a.Value, 'f', -1, 64), strconv.FormatFloat(a.Level, 'f', -1, 64)
	if a.Class == tapproof.SystemExceedance {
		return fmt.Sprintf("90th percentile %s %s in the %s water system (action level %s %s)", v, a.Unit, a.Utility, level, a.Unit)
	}
	return fmt.Sprintf("%s %s at %s (level %s %s)", v, a.Unit, a.Site, level, a.Unit)
}

// stream sends alert messages as Server-Sent Events: event "alert", id the
// alert id, data the alert's JSON. Suppression records are not sent.
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
			if a.State() == tapproof.AlertSuppressed {
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
