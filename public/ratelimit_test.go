package public_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/public"
)

// limitedEnv is a Handler with small rate limits and a clock the test
// moves, served without a network so that each request names its client.
type limitedEnv struct {
	h    http.Handler
	subs *fakeSubscriber
	reg  *prometheus.Registry
	mu   sync.Mutex
	now  time.Time
}

func newLimitedEnv(t *testing.T, trusted ...netip.Prefix) *limitedEnv {
	t.Helper()
	store, err := alerts.NewStore(t.Context(), alertstest.JetStream(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &limitedEnv{subs: &fakeSubscriber{}, reg: prometheus.NewRegistry(), now: june}
	e.h = public.Handler(public.Config{Sites: testSites, Readings: readings, Alerts: store, Subscriber: e.subs,
		CAP:       cap.Config{Sender: "alerts@water.springfield.example", Links: notice.Links{Base: "https://water.example"}},
		Now:       func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now },
		ReadLimit: public.RateLimit{Every: time.Second, Burst: 3}, SubscribeLimit: public.RateLimit{Every: time.Minute, Burst: 2},
		TrustedProxies: trusted, Metrics: public.NewMetrics(e.reg)})
	return e
}

func (e *limitedEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// do serves one request from client (host:port), with headers kv.
func (e *limitedEnv) do(method, path, client string, kv ...string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if method == "POST" {
		body = strings.NewReader("target=site%3Aspringfield%2Felm-st-12&channel=email&address=a%40example.org")
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, path, body)
	r.RemoteAddr = client
	if method == "POST" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func wantStatus(t *testing.T, what string, w *httptest.ResponseRecorder, code int) {
	t.Helper()
	if w.Code != code {
		t.Errorf("%s = %d, want %d", what, w.Code, code)
	}
}

// TestRateLimited: a client above its rate of costly reads, or of
// subscriptions, gets 429 with Retry-After and a page in its language;
// other clients, and its other kind of request, are not affected; the
// refusals are counted.
func TestRateLimited(t *testing.T) {
	e := newLimitedEnv(t)
	const stranger, neighbour = "198.51.100.7:40000", "203.0.113.5:40001"
	for _, path := range []string{"/", "/sites/springfield/elm-st-12", "/v1/alerts/feed.atom"} {
		wantStatus(t, "GET "+path, e.do("GET", path, stranger), 200)
	}
	for _, path := range []string{"/", "/sites/springfield", "/sites/springfield/elm-st-12", "/v1/alerts/feed.atom", "/v1/alerts/x/cap.xml", "/v1/alerts/stream"} {
		w := e.do("GET", path, stranger)
		wantStatus(t, "GET "+path+" above the rate", w, http.StatusTooManyRequests)
		if got := w.Header().Get("Retry-After"); got != "1" {
			t.Errorf("GET %s: Retry-After = %q, want 1", path, got)
		}
		if !strings.Contains(w.Body.String(), "Too many requests") || !strings.Contains(w.Body.String(), "try again in 1 min") {
			t.Errorf("GET %s: refusal page lacks its explanation:\n%s", path, w.Body)
		}
	}
	w := e.do("GET", "/", stranger, "Accept-Language", "es")
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "Demasiadas solicitudes") {
		t.Errorf("GET / in Spanish above the rate = %d, want 429 in Spanish:\n%s", w.Code, w.Body)
	}
	wantStatus(t, "GET / by another client", e.do("GET", "/", neighbour), 200)
	// The subscribe form, confirming and unsubscribing are not costly reads.
	wantStatus(t, "GET /subscribe", e.do("GET", "/subscribe", stranger), 200)
	// Subscribing has its own bucket.
	for range 2 {
		wantStatus(t, "POST /subscribe", e.do("POST", "/subscribe", stranger), 200)
	}
	w = e.do("POST", "/subscribe?lang=es", stranger)
	wantStatus(t, "POST /subscribe above the rate", w, http.StatusTooManyRequests)
	if got := w.Header().Get("Retry-After"); got != "60" || !strings.Contains(w.Body.String(), "Vuelva a intentarlo dentro de 1 min") {
		t.Errorf("POST /subscribe above the rate: Retry-After %q, page:\n%s", got, w.Body)
	}
	if n := len(e.subs.reqs); n != 2 {
		t.Errorf("subscriber got %d requests, want the 2 within the rate", n)
	}
	// A token comes back every second.
	e.advance(time.Second)
	wantStatus(t, "GET / a second later", e.do("GET", "/", stranger), 200)
	wantStatus(t, "GET / again", e.do("GET", "/", stranger), http.StatusTooManyRequests)

	const want = `
# HELP tapproof_public_rate_limited_total Public requests refused with 429 because their client was above its rate, by limit (read, subscribe).
# TYPE tapproof_public_rate_limited_total counter
tapproof_public_rate_limited_total{limit="read"} 8
tapproof_public_rate_limited_total{limit="subscribe"} 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "tapproof_public_rate_limited_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(e.reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestRateLimitClient: who a request counts against. An IPv6 client is
// its /64; X-Forwarded-For counts only from a trusted proxy, and then the
// nearest untrusted hop is the client.
func TestRateLimitClient(t *testing.T) {
	t.Run("ipv6 /64", func(t *testing.T) {
		e := newLimitedEnv(t)
		for _, c := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::ffff]:2", "[2001:db8:1:2:aaaa::1]:3"} {
			wantStatus(t, "GET / from "+c, e.do("GET", "/", c), 200)
		}
		wantStatus(t, "GET / from the same /64", e.do("GET", "/", "[2001:db8:1:2::9]:4"), http.StatusTooManyRequests)
		wantStatus(t, "GET / from another /64", e.do("GET", "/", "[2001:db8:1:3::1]:5"), 200)
	})
	t.Run("forwarded, untrusted", func(t *testing.T) {
		e := newLimitedEnv(t)
		for _, xff := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			wantStatus(t, "GET /", e.do("GET", "/", "198.51.100.7:1", "X-Forwarded-For", xff), 200)
		}
		wantStatus(t, "GET / with yet another X-Forwarded-For", e.do("GET", "/", "198.51.100.7:1", "X-Forwarded-For", "192.0.2.4"), http.StatusTooManyRequests)
	})
	t.Run("forwarded by a trusted proxy", func(t *testing.T) {
		e := newLimitedEnv(t, netip.MustParsePrefix("10.0.0.0/8"))
		const proxy = "10.0.0.2:5000"
		for range 3 {
			wantStatus(t, "GET / for 192.0.2.1", e.do("GET", "/", proxy, "X-Forwarded-For", "192.0.2.1"), 200)
		}
		// Through a second proxy, and with a hop the client made up.
		wantStatus(t, "GET / for 192.0.2.1 via two proxies", e.do("GET", "/", proxy, "X-Forwarded-For", "203.0.113.66, 192.0.2.1, 10.0.0.3"), http.StatusTooManyRequests)
		wantStatus(t, "GET / for 192.0.2.2", e.do("GET", "/", proxy, "X-Forwarded-For", "192.0.2.2"), 200)
		// The proxy's own requests count against the proxy.
		wantStatus(t, "GET / from the proxy", e.do("GET", "/", proxy), 200)
	})
}
