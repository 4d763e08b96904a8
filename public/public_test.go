package public_test

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/locale"
	"github.com/tapproof/tapproof/public"
)

type staticSites []notice.Site

func (s staticSites) Sites(context.Context) ([]notice.Site, error) { return s, nil }

var testSites = staticSites{
	{Utility: "springfield", ID: "elm-st-12", Name: "Elm Street school", Area: "north", AreaName: "North service area",
		Polygon: [][2]float64{{42.1, -83.1}, {42.2, -83.1}, {42.2, -83.0}, {42.1, -83.1}}},
	{Utility: "springfield", ID: "oak-ave-3", Name: "Oak Avenue", Area: "north", AreaName: "North service area"},
	{Utility: "springfield", ID: "river-rd", Name: "River Road", Area: "south", AreaName: "South service area"},
}

// memReadings returns fixed readings per site.
type memReadings map[string][]tapproof.Reading

func (m memReadings) LatestReadings(_ context.Context, utility, site string) ([]tapproof.Reading, error) {
	return m[utility+"/"+site], nil
}

// History returns the site's lead readings from from to to.
func (m memReadings) History(_ context.Context, utility, site string, from, to time.Time) ([]tapproof.Reading, error) {
	var out []tapproof.Reading
	for _, r := range m[utility+"/"+site] {
		if r.Analyte == tapproof.Lead && !r.SampledAt.Before(from) && r.SampledAt.Before(to) {
			out = append(out, r)
		}
	}
	return out, nil
}

const firmware = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

var june = time.Date(2026, time.June, 1, 8, 0, 0, 0, time.UTC)

func lead(seq uint64, v float64) tapproof.Reading {
	return tapproof.Reading{Utility: "springfield", Site: "elm-st-12", Device: "asv-1", Seq: seq,
		Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: june.Add(time.Duration(seq) * time.Minute), Firmware: firmware}
}

var readings = memReadings{"springfield/elm-st-12": {lead(1, 3.2)}}

// fakeSubscriber records requests and answers with err.
type fakeSubscriber struct {
	mu   sync.Mutex
	reqs []residents.SubscribeRequest
	err  error
	// confirmed is what the token "sample" confirms.
	confirmed residents.Subscription
}

func (f *fakeSubscriber) Subscribe(_ context.Context, req residents.SubscribeRequest) (residents.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return residents.Subscription{ID: "s1", Target: req.Target, Channel: req.Channel}, f.err
}

func (f *fakeSubscriber) Confirm(_ context.Context, token string) (residents.Subscription, error) {
	if token == "good" {
		return residents.Subscription{ID: "s1", Target: residents.Target{Utility: "springfield", Site: "elm-st-12"}, Confirmed: true}, nil
	}
	if token == "sample" {
		return f.confirmed, nil
	}
	return residents.Subscription{}, residents.ErrUnknownToken
}

func (f *fakeSubscriber) Unsubscribe(_ context.Context, token string) (residents.Subscription, error) {
	if token == "good" {
		return residents.Subscription{ID: "s1"}, nil
	}
	return residents.Subscription{}, residents.ErrUnknownToken
}

type unitEnv struct {
	srv   *httptest.Server
	store *alerts.Store
	subs  *fakeSubscriber
}

func newUnitEnv(t *testing.T) *unitEnv {
	t.Helper()
	return newUnitEnvWith(t, readings)
}

// newUnitEnvWith is newUnitEnv with the latest readings rs.
func newUnitEnvWith(t *testing.T, rs memReadings) *unitEnv {
	t.Helper()
	js := alertstest.JetStream(t)
	store, err := alerts.NewStore(context.Background(), js, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &unitEnv{store: store, subs: &fakeSubscriber{}}
	var h http.Handler
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	e.srv.Config.WriteTimeout = 300 * time.Millisecond // like httpapi.NewServer's, shorter
	base := "http://" + e.srv.Listener.Addr().String()
	h = public.Handler(public.Config{
		Sites: testSites, Readings: rs, Alerts: store, Subscriber: e.subs, Title: "Springfield water",
		CAP: cap.Config{Sender: "alerts@water.springfield.example", SenderName: "Springfield Water", Links: notice.Links{Base: base}},
	})
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *unitEnv) do(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func alertAt(seq uint64, v float64) tapproof.Alert {
	r := lead(seq, v)
	return tapproof.Alert{ID: tapproof.AlertID(tapproof.Screening, r.Device, r.Seq), Class: tapproof.Screening,
		Utility: r.Utility, Site: r.Site, Device: r.Device, Seq: r.Seq, Analyte: r.Analyte, Value: v, Unit: r.Unit,
		Level: 15, Rule: "us-lead-lcr@v1", SampledAt: r.SampledAt, RaisedAt: r.SampledAt.Add(time.Second),
		MsgType: tapproof.AlertMsg, Status: tapproof.AlertOpen}
}

func TestRoutes(t *testing.T) {
	e := newUnitEnv(t)
	if err := e.store.Publish(context.Background(), alertAt(2, 22)); err != nil {
		t.Fatal(err)
	}
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		contains                 []string
	}{
		{"status page", "GET", "/", "", 200, []string{"Elm Street school", "North service area", "South service area", "Screening alert", "22 µg/L (ppb)", `data-status="screening"`}},
		{"search", "GET", "/?q=river", "", 200, []string{"River Road"}},
		{"search is escaped", "GET", "/?q=%3Cscript%3E", "", 200, []string{"&lt;script&gt;", "No site matches"}},
		{"utility page", "GET", "/sites/springfield", "", 200, []string{"Oak Avenue"}},
		{"unknown utility", "GET", "/sites/shelbyville", "", 404, []string{"no such water system"}},
		{"site page", "GET", "/sites/springfield/elm-st-12", "", 200, []string{"Latest readings", "3.2 µg/L (ppb)", "Open alerts", "The last 90 days", `value="site:springfield/elm-st-12" selected`, "EventSource"}},
		{"site without alerts", "GET", "/sites/springfield/river-rd", "", 200, []string{"No open alerts", "No readings yet"}},
		{"unknown site", "GET", "/sites/springfield/nope", "", 404, nil},
		{"bad site id", "GET", "/sites/springfield/NOPE..", "", 404, nil},
		{"subscribe form", "GET", "/subscribe?target=area:springfield/north", "", 200, []string{`value="area:springfield/north" selected`,
			"I have a lab result code", `name="sample"`, `name="code"`}},
		{"subscribe form in Spanish", "GET", "/subscribe?lang=es", "", 200, []string{"Tengo un código de resultado de laboratorio"}},
		{"subscribe", "POST", "/subscribe", form("target", "area:springfield/north", "channel", "email", "address", "r@example.org"), 200, []string{"Check your inbox"}},
		{"subscribe webhook", "POST", "/subscribe", form("target", "site:springfield/oak-ave-3", "channel", "webhook", "address", "https://h.example.org/x"), 200, []string{"signing secret"}},
		{"subscribe bad target", "POST", "/subscribe", form("target", "city:springfield", "channel", "email", "address", "r@example.org"), 400, []string{"Choose a site"}},
		{"subscribe bad channel", "POST", "/subscribe", form("target", "area:springfield/north", "channel", "pigeon", "address", "r@example.org"), 400, []string{"Choose how"}},
		{"subscribe too large", "POST", "/subscribe", form("target", "area:springfield/north", "channel", "email", "address", strings.Repeat("a", public.MaxFormBytes)), 413, nil},
		{"confirm", "GET", "/confirm?token=good", "", 200, []string{"Subscription confirmed", "elm-st-12"}},
		{"confirm unknown", "GET", "/confirm?token=bad", "", 404, []string{"invalid or has expired"}},
		{"unsubscribe page", "GET", "/unsubscribe?token=good", "", 200, []string{`name="token" value="good"`, "Stop sending"}},
		{"unsubscribe without token", "GET", "/unsubscribe", "", 400, nil},
		{"unsubscribe", "POST", "/unsubscribe", form("token", "good"), 200, []string{"Unsubscribed"}},
		{"one-click unsubscribe", "POST", "/unsubscribe?token=good", "List-Unsubscribe=One-Click", 200, []string{"Unsubscribed"}},
		{"unsubscribe unknown", "POST", "/unsubscribe", form("token", "bad"), 404, nil},
		{"POST to the status page", "POST", "/", "", 405, nil},
		{"DELETE an alert", "DELETE", "/v1/alerts/screening-asv-1-2/cap.xml", "", 405, nil},
		{"PUT confirm", "PUT", "/confirm?token=good", "", 405, nil},
		{"unknown alert", "GET", "/v1/alerts/nope/cap.xml", "", 404, nil},
		{"unknown path", "GET", "/admin", "", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Errorf("%s %s = %d, want %d\n%s", tt.method, tt.path, resp.StatusCode, tt.status, body)
			}
			for _, c := range tt.contains {
				if !strings.Contains(body, c) {
					t.Errorf("%s %s lacks %q:\n%s", tt.method, tt.path, c, body)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
		})
	}
	got := e.subs.reqs
	want := []residents.SubscribeRequest{
		{Target: residents.Target{Utility: "springfield", Area: "north"}, Channel: residents.ChannelEmail, Address: "r@example.org"},
		{Target: residents.Target{Utility: "springfield", Site: "oak-ave-3"}, Channel: residents.ChannelWebhook, Address: "https://h.example.org/x"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("subscriber got %v, want %v", got, want)
	}
}

func TestSubscribeShowsReason(t *testing.T) {
	e := newUnitEnv(t)
	e.subs.err = &residents.Refusal{Code: residents.RefuseEmail, Reason: "not a valid email address"}
	resp, body := e.do(t, "POST", "/subscribe", "target=site%3Aspringfield%2Felm-st-12&channel=email&address=nope")
	if resp.StatusCode != 400 || !strings.Contains(body, "That is not a valid email address.") {
		t.Errorf("POST /subscribe = %d, want 400 with the reason:\n%s", resp.StatusCode, body)
	}
	// In the visitor's language.
	resp, body = e.do(t, "POST", "/subscribe?lang=es", "target=site%3Aspringfield%2Felm-st-12&channel=email&address=nope")
	if resp.StatusCode != 400 || !strings.Contains(body, "Esa no es una dirección de correo electrónico válida.") {
		t.Errorf("POST /subscribe?lang=es = %d, want 400 with the reason in Spanish:\n%s", resp.StatusCode, body)
	}
	// A reason with no code is shown as it is.
	e.subs.err = fmt.Errorf("%w: not today", residents.ErrInvalidSubscription)
	if resp, body = e.do(t, "POST", "/subscribe", "target=site%3Aspringfield%2Felm-st-12&channel=email&address=nope"); resp.StatusCode != 400 || !strings.Contains(body, "not today") {
		t.Errorf("POST /subscribe = %d, want 400 with the reason:\n%s", resp.StatusCode, body)
	}
	e.subs.err = errors.New("nats: timeout")
	resp, body = e.do(t, "POST", "/subscribe", "target=site%3Aspringfield%2Felm-st-12&channel=email&address=a%40b.org")
	if resp.StatusCode != 500 || strings.Contains(body, "nats") {
		t.Errorf("POST /subscribe with a failing store = %d, want 500 without internals:\n%s", resp.StatusCode, body)
	}
}

// TestEveryRefusalSaid: every language can say why each subscription
// refusal was made.
func TestEveryRefusalSaid(t *testing.T) {
	for _, tag := range locale.Supported() {
		l := locale.For(tag)
		for _, c := range residents.RefusalCodes {
			if id := "refused_" + string(c); !l.Has(id) {
				t.Errorf("%s has no message %s", tag, id)
			}
		}
	}
}

// TestOtherAnalyteStatus: an open alert about another analyte than lead
// gets the "other" sentence, the analyte named in the page's language.
func TestOtherAnalyteStatus(t *testing.T) {
	e := newUnitEnv(t)
	copper := alertAt(2, 1.9)
	copper.ID, copper.Analyte, copper.Unit = "screening-copper-1", tapproof.Copper, tapproof.MilligramsPerLiter
	alertstest.Publish(t, e.store, copper)
	for lang, want := range map[string]string{"en": "An alert about copper is open at Elm Street school", "es": "Hay una alerta abierta sobre cobre en Elm Street school"} {
		_, body := e.do(t, "GET", "/sites/springfield/elm-st-12?lang="+lang, "")
		if !strings.Contains(body, `data-status="other"`) || !strings.Contains(body, want) {
			t.Errorf("site page in %s lacks the other-analyte sentence %q:\n%s", lang, want, body)
		}
	}
}

// countingReadings counts History's calls.
type countingReadings struct {
	memReadings
	mu      sync.Mutex
	history int
}

func (c *countingReadings) History(ctx context.Context, utility, site string, from, to time.Time) ([]tapproof.Reading, error) {
	c.mu.Lock()
	c.history++
	c.mu.Unlock()
	return c.memReadings.History(ctx, utility, site, from, to)
}

func (c *countingReadings) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.history
}

// TestHistoryCached: a site's history is read once per HistoryTTL however
// many visitors open its page, also at once, and read again after it.
func TestHistoryCached(t *testing.T) {
	store, err := alerts.NewStore(context.Background(), alertstest.JetStream(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := &countingReadings{memReadings: readings}
	var mu sync.Mutex
	now := june.Add(time.Hour)
	h := public.Handler(public.Config{Sites: testSites, Readings: rs, Alerts: store, Subscriber: &fakeSubscriber{},
		CAP: cap.Config{Sender: "alerts@water.springfield.example", Links: notice.Links{Base: "https://water.example"}},
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	views := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/sites/springfield/elm-st-12", nil))
				if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="history"`) {
					t.Errorf("site page = %d, want 200 with its history", rec.Code)
				}
			})
		}
		wg.Wait()
	}
	views(20)
	if got := rs.calls(); got != 1 {
		t.Errorf("History read %d times for 20 views, want once", got)
	}
	mu.Lock()
	now = now.Add(public.HistoryTTL)
	mu.Unlock()
	views(20)
	if got := rs.calls(); got != 2 {
		t.Errorf("History read %d times after HistoryTTL, want twice", got)
	}
	// Another site is read on its own.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/sites/springfield/oak-ave-3", nil))
	if got := rs.calls(); rec.Code != 200 || got != 3 {
		t.Errorf("another site's page = %d, History read %d times, want 200 and 3", rec.Code, got)
	}
}

// TestLanguagePickedOnce: a page that fails after its handler has picked
// the language still sets the language cookie and Vary once, in the
// language picked.
func TestLanguagePickedOnce(t *testing.T) {
	e := newUnitEnv(t)
	e.subs.err = errors.New("nats: timeout")
	resp, body := e.do(t, "POST", "/subscribe?lang=es", "target=site%3Aspringfield%2Felm-st-12&channel=email&address=a%40b.org")
	if resp.StatusCode != 500 {
		t.Fatalf("POST /subscribe with a failing store = %d, want 500", resp.StatusCode)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 1 || !strings.Contains(got[0], "=es") {
		t.Errorf("Set-Cookie = %q, want the language cookie once, es", got)
	}
	if got := resp.Header.Values("Vary"); len(got) != 1 {
		t.Errorf("Vary = %q, want it once", got)
	}
	if !strings.Contains(body, `<html lang="es"`) {
		t.Errorf("error page not in Spanish:\n%s", body)
	}
}

// xmllint validates doc against the CAP 1.2 schema; it fails without
// xmllint when CI=true and skips otherwise.
func xmllint(t *testing.T, doc []byte) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is missing (Debian: apt-get install -y libxml2-utils)")
		}
		t.Skip("xmllint is missing; install libxml2-utils")
	}
	_, file, _, _ := runtime.Caller(0)
	schema := filepath.Join(filepath.Dir(file), "..", "testdata", "cap", "CAP-v1.2.xsd")
	f := filepath.Join(t.TempDir(), "alert.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--noout", "--schema", schema, f).CombinedOutput(); err != nil {
		t.Errorf("xmllint: %v\n%s\n%s", err, out, doc)
	}
}

// TestFeedAndCAP polls the Atom feed like an aggregator and follows each
// entry to its CAP document.
func TestFeedAndCAP(t *testing.T) {
	e := newUnitEnv(t)
	ctx := context.Background()
	fired := alertAt(2, 22)
	clear := alertAt(5, 3)
	clear.ID, clear.MsgType, clear.Status, clear.References = "clear-"+fired.ID, tapproof.CancelMsg, tapproof.AlertCleared, []tapproof.AlertRef{fired.Ref()}
	sup := alertAt(3, 30)
	sup.ID, sup.Status, sup.MsgType, sup.References = "suppressed-"+fired.ID, tapproof.AlertSuppressed, "", []tapproof.AlertRef{fired.Ref()}
	for _, a := range []tapproof.Alert{fired, clear} {
		if err := e.store.Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.RecordSuppression(ctx, sup); err != nil {
		t.Fatal(err)
	}
	resp, body := e.do(t, "GET", "/v1/alerts/feed.atom", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/atom+xml") {
		t.Fatalf("feed = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var feed struct {
		XMLName xml.Name
		ID      string `xml:"id"`
		Title   string `xml:"title"`
		Updated string `xml:"updated"`
		Author  struct {
			Name string `xml:"name"`
		} `xml:"author"`
		Entries []struct {
			ID      string `xml:"id"`
			Title   string `xml:"title"`
			Updated string `xml:"updated"`
			Links   []struct {
				Rel  string `xml:"rel,attr"`
				Type string `xml:"type,attr"`
				Href string `xml:"href,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(body), &feed); err != nil {
		t.Fatalf("feed does not parse: %v\n%s", err, body)
	}
	if feed.XMLName.Space != "http://www.w3.org/2005/Atom" || feed.XMLName.Local != "feed" || feed.ID == "" || feed.Title == "" || feed.Author.Name == "" {
		t.Errorf("feed head = %+v, want an Atom feed with id, title and author", feed)
	}
	if feed.Updated != clear.RaisedAt.Format(time.RFC3339) {
		t.Errorf("feed updated = %s, want the newest alert's %s", feed.Updated, clear.RaisedAt.Format(time.RFC3339))
	}
	if len(feed.Entries) != 2 {
		t.Fatalf("feed has %d entries, want 2 (the suppression is not public)", len(feed.Entries))
	}
	for i, want := range []string{clear.ID, fired.ID} {
		en := feed.Entries[i]
		if _, err := time.Parse(time.RFC3339, en.Updated); err != nil || en.Title == "" {
			t.Errorf("entry %d: updated %q, title %q", i, en.Updated, en.Title)
		}
		var capURL string
		for _, l := range en.Links {
			if l.Rel == "alternate" && l.Type == "application/cap+xml" {
				capURL = l.Href
			}
		}
		if !strings.HasSuffix(capURL, "/v1/alerts/"+want+"/cap.xml") {
			t.Fatalf("entry %d CAP link = %q, want alert %s", i, capURL, want)
		}
		resp, err := http.Get(capURL)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/cap+xml; charset=utf-8" {
			t.Errorf("GET %s = %d %s", capURL, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		xmllint(t, doc)
		if !strings.Contains(string(doc), "<identifier>"+want+"</identifier>") || !strings.Contains(string(doc), "<polygon>") {
			t.Errorf("CAP of %s lacks its identifier or the site's polygon:\n%s", want, doc)
		}
	}
	if resp, _ := e.do(t, "GET", "/v1/alerts/"+sup.ID+"/cap.xml", ""); resp.StatusCode != 404 {
		t.Errorf("CAP of a suppression = %d, want 404", resp.StatusCode)
	}
	// The all-clear closed the alert: the status page says so.
	if _, body := e.do(t, "GET", "/sites/springfield/elm-st-12", ""); !strings.Contains(body, "No open alerts") {
		t.Errorf("site page after the all-clear still shows an open alert")
	}
}

// TestSystemExceedancePublic: the water system's Tier 1 alert, which has no
// site, shows on every site page of the utility, in the feed with its 90th
// percentile, and as valid CAP.
func TestSystemExceedancePublic(t *testing.T) {
	e := newUnitEnv(t)
	a := alertAt(1, 17)
	a.ID, a.Class, a.Site, a.Device, a.Seq = tapproof.SystemExceedanceID("springfield", tapproof.Lead, "2026H1"), tapproof.SystemExceedance, "", "", 0
	if err := e.store.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if _, body := e.do(t, "GET", "/sites/springfield/elm-st-12", ""); !strings.Contains(body, "Action level exceeded") {
		t.Errorf("site page does not show the water system's action level exceedance:\n%s", body)
	}
	_, body := e.do(t, "GET", "/v1/alerts/feed.atom", "")
	if want := "90th percentile 17 ug/L in the springfield water system (action level 15 ug/L)"; !strings.Contains(body, want) {
		t.Errorf("feed lacks %q:\n%s", want, body)
	}
	resp, doc := e.do(t, "GET", "/v1/alerts/"+a.ID+"/cap.xml", "")
	if resp.StatusCode != 200 {
		t.Fatalf("CAP = %d", resp.StatusCode)
	}
	xmllint(t, []byte(doc))
}

// TestProofLinks: each latest reading on a site page, each open alert and
// each entry of the Atom feed links the proof of what it is about, the one
// the alert's notice and CAP document link: a sensor reading's bundle by
// device and sequence number, a lab sample's by its leaf, a system
// exceedance's period report. A lab sample, and its individual compliance
// alert, go to its home only: its notice links its proof, no page or feed
// shows either. (That the links resolve to bundles that verify is
// TestProofLinksEndToEnd's, in cmd/tapproof, on the real stack.)
func TestProofLinks(t *testing.T) {
	labSample := tapproof.LabSample{Lab: "state-lab", SampleID: "L-112", Utility: "springfield", Site: "elm-st-12",
		Analyte: tapproof.Lead, Value: 22, Unit: tapproof.MicrogramsPerLiter, CollectedAt: june}
	e := newUnitEnvWith(t, memReadings{"springfield/elm-st-12": {lead(4, 3.2), labSample.Reading(112)}})
	base := e.srv.URL
	screening := alertAt(2, 22)
	lab := alertAt(0, 22)
	lab.Class, lab.Device, lab.Seq, lab.ID, lab.Sample = tapproof.IndividualCompliance, tapproof.LabDevice("springfield", "state-lab"), 112,
		tapproof.IndividualAlertID("springfield", "state-lab", 112), labSample.Key()
	system := alertAt(0, 17)
	system.ID, system.Class, system.Site, system.Device = tapproof.SystemExceedanceID("springfield", tapproof.Lead, "2026H1"), tapproof.SystemExceedance, "", ""
	alertstest.Publish(t, e.store, screening, lab, system)

	sensorProof, labProof := base+"/v1/readings/asv-1/4/bundle", base+"/v1/logs/springfield/leaves/112/bundle"
	proofs := map[string]string{ // alert id: its proof
		screening.ID: base + "/v1/readings/asv-1/2/bundle",
		lab.ID:       labProof,
		system.ID:    base + "/v1/compliance/springfield/2026H1",
	}
	links := notice.Links{Base: base}
	for _, a := range []tapproof.Alert{screening, lab, system} {
		if got := links.Proof(a).URL; got != proofs[a.ID] {
			t.Fatalf("Proof(%s) = %s, want %s", a.ID, got, proofs[a.ID])
		}
	}

	// The site page, without JavaScript: plain links.
	resp, page := e.do(t, "GET", "/sites/springfield/elm-st-12", "")
	if resp.StatusCode != 200 {
		t.Fatalf("site page = %d", resp.StatusCode)
	}
	readingsTable, _, _ := strings.Cut(page[strings.Index(page, `id="readings"`):], "</table>")
	if want := `<a class="proof" href="` + sensorProof + `" type="application/json" title="proof bundle (verify with tapproof verify)">proof</a>`; !strings.Contains(readingsTable, want) {
		t.Errorf("latest readings lack %s:\n%s", want, readingsTable)
	}
	// The home's own lab result is not on its site's page: not as a latest
	// reading, not in the history.
	for _, leak := range []string{labProof, "leaves/112"} {
		if strings.Contains(page, leak) {
			t.Errorf("the site page shows the home's own lab result (%s)", leak)
		}
	}
	openAlerts, _, _ := strings.Cut(page[strings.Index(page, `id="open-alerts"`):], "</section>")
	for id, proof := range proofs {
		if id == lab.ID {
			if strings.Contains(openAlerts, id) {
				t.Errorf("open alerts show the home's own result %s:\n%s", id, openAlerts)
			}
			continue
		}
		if !strings.Contains(openAlerts, `data-alert="`+id+`"`) || !strings.Contains(openAlerts, `<a class="proof" href="`+proof+`"`) {
			t.Errorf("open alert %s lacks its proof %s:\n%s", id, proof, openAlerts)
		}
	}
	// Named in the visitor's language.
	for lang, names := range map[string][]string{
		"en": {">proof bundle</a>", ">compliance report</a>"},
		"es": {">paquete de prueba</a>", ">informe de cumplimiento</a>"},
	} {
		_, page := e.do(t, "GET", "/sites/springfield/elm-st-12?lang="+lang, "")
		openAlerts, _, _ := strings.Cut(page[strings.Index(page, `id="open-alerts"`):], "</section>")
		for _, name := range names {
			if strings.Count(openAlerts, name) < 1 {
				t.Errorf("open alerts in %s do not name a proof %s:\n%s", lang, name, openAlerts)
			}
		}
	}

	// The feed: each entry's related application/json link.
	_, body := e.do(t, "GET", "/v1/alerts/feed.atom", "")
	var feed struct {
		Entries []struct {
			ID    string `xml:"id"`
			Links []struct {
				Rel   string `xml:"rel,attr"`
				Type  string `xml:"type,attr"`
				Title string `xml:"title,attr"`
				Href  string `xml:"href,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(body), &feed); err != nil || len(feed.Entries) != 2 || strings.Contains(body, lab.ID) {
		t.Fatalf("feed: %v, %d entries, want 2 (not the home's own result):\n%s", err, len(feed.Entries), body)
	}
	for _, en := range feed.Entries {
		id := strings.TrimSuffix(strings.TrimPrefix(en.ID, base+"/v1/alerts/"), "/cap.xml")
		var got []string
		for _, l := range en.Links {
			if l.Rel == "related" && l.Type == "application/json" {
				got = append(got, l.Title+" "+l.Href)
			}
		}
		title := "proof bundle"
		if id == system.ID {
			title = "compliance report"
		}
		if want := title + " " + proofs[id]; len(got) != 1 || got[0] != want {
			t.Errorf("feed entry %s: related JSON links %q, want [%s]", id, got, want)
		}
	}
}

// TestStream reads Server-Sent Events like a browser's EventSource.
func TestStream(t *testing.T) {
	e := newUnitEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/alerts/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			return l
		case <-ctx.Done():
			t.Fatal("no event within 20s")
		}
		return ""
	}
	for next() != ": connected" {
	}
	time.Sleep(time.Second) // past the server's WriteTimeout: the stream must survive it
	a := alertAt(7, 40)     // the watch exists once the stream says connected
	if err := e.store.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	var event, id, data string
	for data == "" {
		l := next()
		switch {
		case strings.HasPrefix(l, "event: "):
			event = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "id: "):
			id = strings.TrimPrefix(l, "id: ")
		case strings.HasPrefix(l, "data: "):
			data = strings.TrimPrefix(l, "data: ")
		}
	}
	var got tapproof.Alert
	if err := json.Unmarshal([]byte(data), &got); err != nil || event != "alert" || id != a.ID || got.ID != a.ID {
		t.Errorf("event %q id %q data %s (%v), want alert %s", event, id, data, err, a.ID)
	}
}
