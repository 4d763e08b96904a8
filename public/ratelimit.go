package public

import (
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tapproof/tapproof/locale"
)

// RateLimit is how often one client may make one kind of request: Burst
// requests at once, then one more every Every.
type RateLimit struct {
	Every time.Duration
	Burst int
}

// Rate-limit defaults, used where a Config field is zero.
var (
	// DefaultReadLimit bounds the costly reads of one client: the status
	// and site pages, CAP documents, the Atom feed and opening an event
	// stream.
	DefaultReadLimit = RateLimit{Every: 500 * time.Millisecond, Burst: 60}
	// DefaultSubscribeLimit bounds one client's POST /subscribe.
	DefaultSubscribeLimit = RateLimit{Every: 5 * time.Minute, Burst: 5}
)

// DefaultMaxClients is how many clients each limit keeps track of at
// most. A client idle long enough to have its whole burst again is
// forgotten (it is then no different from a new one); when this many are
// tracked none of whom may be forgotten, a new client takes the place of
// one of them, who starts afresh: many addresses at once cost a stranger
// nothing more than new addresses do, and never shut residents out.
const DefaultMaxClients = 100_000

// Validate checks l.
func (l RateLimit) Validate() error {
	if l.Every < 0 || l.Burst < 0 {
		return errors.New("public: rate limits must not be negative")
	}
	return nil
}

// orDefault is l with its zero fields taken from d.
func (l RateLimit) orDefault(d RateLimit) RateLimit {
	if l.Every == 0 {
		l.Every = d.Every
	}
	if l.Burst == 0 {
		l.Burst = d.Burst
	}
	return l
}

// Metrics count what the public pages refuse. A nil *Metrics counts
// nothing.
type Metrics struct {
	limited *prometheus.CounterVec
}

// Limits, the values of the limit label of
// tapproof_public_rate_limited_total.
const (
	limitRead      = "read"
	limitSubscribe = "subscribe"
)

// NewMetrics creates tapproof_public_rate_limited_total and registers it
// with reg, which may be nil (counted but not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{limited: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tapproof_public_rate_limited_total",
		Help: "Public requests refused with 429 because their client was above its rate, by limit (read, subscribe).",
	}, []string{"limit"})}
	for _, l := range []string{limitRead, limitSubscribe} {
		m.limited.WithLabelValues(l)
	}
	if reg != nil {
		reg.MustRegister(m.limited)
	}
	return m
}

func (m *Metrics) refused(limit string) {
	if m != nil {
		m.limited.WithLabelValues(limit).Inc()
	}
}

// limiter keeps one token bucket per client, for one kind of request.
type limiter struct {
	name  string
	limit rate.Limit
	burst int
	full  time.Duration // how long an empty bucket takes to fill
	max   int

	mu      sync.Mutex
	clients map[netip.Prefix]*rate.Limiter
	swept   time.Time
}

func newLimiter(name string, l RateLimit, maxClients int) *limiter {
	return &limiter{name: name, limit: rate.Every(l.Every), burst: l.Burst, full: l.Every * time.Duration(l.Burst),
		max: maxClients, clients: map[netip.Prefix]*rate.Limiter{}}
}

// allow takes a token for client at now, or reports how long until one
// is available.
func (l *limiter) allow(client netip.Prefix, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Sweep once per refill time (at most a minute), or, at the cap, at
	// most once a second.
	if since := now.Sub(l.swept); since >= min(l.full, time.Minute) || len(l.clients) >= l.max && since >= time.Second {
		l.sweep(now)
	}
	b, ok := l.clients[client]
	if !ok {
		for c := range l.clients { // at the cap: any one makes room
			if len(l.clients) < l.max {
				break
			}
			delete(l.clients, c)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.clients[client] = b
	}
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, l.full
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets the clients whose bucket is full again.
func (l *limiter) sweep(now time.Time) {
	l.swept = now
	for c, b := range l.clients {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, c)
		}
	}
}

// tracked is how many clients l keeps a bucket for.
func (l *limiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// clientOf is who r counts against: the connection's remote address, or,
// if that is a trusted proxy, the nearest address of X-Forwarded-For that
// is not one. An IPv6 client is its /64, what one household or host
// usually holds.
func clientOf(r *http.Request, trusted []netip.Prefix) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{} // every unparsable peer shares one bucket
	}
	a = a.WithZone("").Unmap()
	if isTrusted(a, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a forged or garbled hop: trust nothing before it
			}
			a = h.WithZone("").Unmap()
			if !isTrusted(a, trusted) {
				break
			}
		}
	}
	bits := a.BitLen()
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// throttled refuses r with 429 if its client is above l's rate, and
// reports whether it did. The page is in lang's language.
func (s *server) throttled(w http.ResponseWriter, r *http.Request, l *limiter, lang func() *locale.Localizer) bool {
	ok, wait := l.allow(clientOf(r, s.cfg.TrustedProxies), s.cfg.Now())
	if ok {
		return false
	}
	s.cfg.Metrics.refused(l.name)
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set("Cache-Control", "no-store")
	loc := lang()
	s.render(w, http.StatusTooManyRequests, "message", page{L: loc, Heading: loc.T("too_many_requests"),
		Error: loc.T("slow_down", "Minutes", max((secs+59)/60, 1))})
	return true
}

// limitPage limits a page handler with l.
func (s *server) limitPage(l *limiter, h pageHandler) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, loc *locale.Localizer) {
		if !s.throttled(w, r, l, func() *locale.Localizer { return loc }) {
			h(w, r, loc)
		}
	}
}

// limitFeed limits a handler that is not a page (CAP, Atom, events): its
// refusal is a page in the visitor's language all the same.
func (s *server) limitFeed(l *limiter, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.throttled(w, r, l, func() *locale.Localizer { return lang(w, r) }) {
			h(w, r)
		}
	}
}
