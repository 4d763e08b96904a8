package public_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/public"
)

// TestPrivateResultReachesItsHomeOnly is the acceptance test, on
// the real stack the package tests use (embedded JetStream, the real alert
// store and notifier, residents' webhooks on httptest receivers): a site
// subscriber, an area subscriber and the home's subscriber, who subscribed
// on the public form with the sample and the code the utility gave it.
// An individual lab result above the action level at that site reaches the
// home only; its notice record is appended with one recipient; the status
// pages, the Atom feed, the CAP endpoint, the live event stream and
// GET /v1/alerts (newest and open) do not show it, while a screening
// alert at the same site is shown everywhere and reaches the site and area
// subscribers.
func TestPrivateResultReachesItsHomeOnly(t *testing.T) {
	ctx := context.Background()
	js := alertstest.JetStream(t)
	store := alertstest.Store(t, js, alerts.NewMetrics(prometheus.NewRegistry()))
	codes, err := residents.NewHouseholdCodes([]byte(strings.Repeat("k", residents.HouseholdKeySize)))
	if err != nil {
		t.Fatal(err)
	}
	subs, err := residents.NewSubscriptions(ctx, js, residents.SubscriptionsConfig{AllowPrivateWebhooks: true, Households: codes})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	links := notice.Links{Base: srv.URL}
	nlog := &memNoticeLog{}
	n, err := residents.NewNotifier(ctx, js, subs, testSites, residents.NotifierConfig{Links: links, NoticeLog: nlog, WebhookTimeout: time.Second,
		Retry: alerts.Retry{MaxDeliver: 3, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	poll.Until(t, 10*time.Second, func() error { _, err := js.Consumer(ctx, alerts.StreamName, "tapproof-notice-dispatch"); return err })

	pub := public.Handler(public.Config{Sites: testSites, Readings: readings, Alerts: store, Subscriber: n, Title: "Springfield water",
		CAP: cap.Config{Sender: "alerts@water.springfield.example", Links: links}})
	api := httpapi.Handler(httpapi.Config{Alerts: store, Gatherer: prometheus.NewRegistry()})
	mux := http.NewServeMux()
	mux.Handle("/", pub)
	mux.Handle("/v1/alerts", api)
	h = mux

	// Three subscribers by webhook, each through the public form and its
	// confirmation link.
	ok := func(int) int { return http.StatusOK }
	site, area, home := alertstest.NewReceiver(t, ok), alertstest.NewReceiver(t, ok), alertstest.NewReceiver(t, ok)
	code, err := codes.Code("springfield", "acme-labs", "L2026-00123")
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func(rcv *alertstest.Receiver, form url.Values) {
		t.Helper()
		form.Set("channel", "webhook")
		form.Set("address", rcv.URL+"/hook")
		resp, err := http.PostForm(srv.URL+"/subscribe", form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /subscribe %v = %d:\n%s", form, resp.StatusCode, b)
		}
		var p struct {
			ConfirmURL string `json:"confirm_url"`
		}
		if err := json.Unmarshal(rcv.Wait(t, 1)[0].Body, &p); err != nil || p.ConfirmURL == "" {
			t.Fatalf("confirmation: %v", err)
		}
		resp, err = http.Get(p.ConfirmURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", p.ConfirmURL, resp.StatusCode)
		}
	}
	subscribe(site, url.Values{"target": {"site:springfield/elm-st-12"}})
	subscribe(area, url.Values{"target": {"area:springfield/north"}})
	// A wrong code is refused, on the page, in its language.
	resp, err := http.PostForm(srv.URL+"/subscribe?lang=es", url.Values{"target": {"site:springfield/elm-st-12"}, "sample": {"acme-labs/L2026-00123"},
		"code": {"AAAA-AAAA-AAAA-AAAA"}, "channel": {"webhook"}, "address": {home.URL + "/hook"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "Ese código no es el de esta muestra") || strings.Contains(string(b), "AAAA-AAAA") {
		t.Errorf("POST /subscribe with a wrong code = %d, want 400 saying so in Spanish, the code not repeated:\n%s", resp.StatusCode, b)
	}
	subscribe(home, url.Values{"target": {"site:springfield/elm-st-12"}, "sample": {"acme-labs/L2026-00123"}, "code": {strings.ToLower(code)}})

	// The live event stream, open before anything is raised.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", srv.URL+"/v1/alerts/stream", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				events <- id
			}
			if sc.Text() == ": connected" {
				events <- "connected"
			}
		}
		close(events)
	}()
	if <-events != "connected" {
		t.Fatal("event stream did not connect")
	}

	// The lab's result, then a screening alert at the same site.
	result := alertAt(41, 22)
	result.ID, result.Class, result.Device, result.Seq, result.Sample = tapproof.IndividualAlertID("springfield", "acme-labs", 41),
		tapproof.IndividualCompliance, tapproof.LabDevice("springfield", "acme-labs"), 41, "acme-labs/L2026-00123"
	screening := alertAt(42, 30)
	alertstest.Publish(t, store, result, screening)

	// The home gets its result, and nothing else; the site and area
	// subscribers get the screening alert, and not the result.
	notices := func(rcv *alertstest.Receiver) []string {
		var ids []string
		for _, r := range rcv.Requests() {
			if r.Header.Get(residents.HeaderKind) == "notice" {
				ids = append(ids, r.Header.Get(alerts.HeaderAlertID))
			}
		}
		return ids
	}
	poll.Until(t, 20*time.Second, func() error {
		if got := notices(home); len(got) != 1 || got[0] != result.ID {
			return fmt.Errorf("home's notices = %v, want [%s]", got, result.ID)
		}
		for name, rcv := range map[string]*alertstest.Receiver{"site": site, "area": area} {
			if got := notices(rcv); len(got) != 1 || got[0] != screening.ID {
				return fmt.Errorf("%s subscriber's notices = %v, want [%s] only", name, got, screening.ID)
			}
		}
		return nil
	})
	var body struct {
		Subject  string `json:"subject"`
		ProofURL string `json:"proof_url"`
	}
	for _, r := range home.Requests() {
		if r.Header.Get(residents.HeaderKind) == "notice" {
			_ = json.Unmarshal(r.Body, &body)
		}
	}
	if !strings.Contains(body.Subject, "Your lead result") || body.ProofURL != srv.URL+"/v1/logs/springfield/leaves/41/bundle" {
		t.Errorf("home's notice = %q, proof %s", body.Subject, body.ProofURL)
	}
	poll.Until(t, 10*time.Second, func() error {
		for _, r := range nlog.all() {
			if r.AlertID == result.ID {
				if r.Recipients != 1 || len(r.Public) != 0 {
					t.Errorf("notice record of the result = %+v, want 1 recipient and no public channel", r)
				}
				return nil
			}
		}
		return fmt.Errorf("no notice record of %s", result.ID)
	})

	// Nothing public shows the result; the screening alert is everywhere.
	for _, path := range []string{"/", "/sites/springfield", "/sites/springfield/elm-st-12", "/v1/alerts/feed.atom",
		"/v1/alerts", "/v1/alerts?state=open", "/v1/alerts?state=open&utility=springfield&site=elm-st-12"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), screening.ID) {
			t.Errorf("GET %s = %d, want 200 showing %s", path, resp.StatusCode, screening.ID)
		}
		for _, leak := range []string{result.ID, "acme-labs", "L2026-00123", "Lab result above action level", "22 µg/L"} {
			if strings.Contains(string(b), leak) {
				t.Errorf("GET %s shows the home's result (%q)", path, leak)
			}
		}
	}
	for id, want := range map[string]int{result.ID: 404, screening.ID: 200} {
		resp, err := http.Get(srv.URL + "/v1/alerts/" + id + "/cap.xml")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("CAP of %s = %d, want %d", id, resp.StatusCode, want)
		}
	}
	// The stream sent the screening alert, and the result not before it.
	select {
	case id := <-events:
		if id != screening.ID {
			t.Errorf("event stream sent %s first, want %s (the result is not public)", id, screening.ID)
		}
	case <-sctx.Done():
		t.Error("event stream sent nothing")
	}
}

// TestSubscribeOwnResult: "I have a lab result code" on the form asks for
// a subscription to that sample, of the chosen site's utility, with the
// code; a refused one shows the form again with the sample, never the
// code; the confirmation page names the sample.
func TestSubscribeOwnResult(t *testing.T) {
	e := newUnitEnv(t)
	form := url.Values{"target": {"site:springfield/elm-st-12"}, "sample": {" acme-labs/L1 "}, "code": {"abcd-efgh"},
		"channel": {"email"}, "address": {"h@example.org"}}
	if resp, body := e.do(t, "POST", "/subscribe", form.Encode()); resp.StatusCode != 200 || !strings.Contains(body, "Check your inbox") {
		t.Fatalf("POST /subscribe with a code = %d:\n%s", resp.StatusCode, body)
	}
	want := residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Sample: "acme-labs/L1"}, Channel: residents.ChannelEmail,
		Address: "h@example.org", Language: "en", Code: "abcd-efgh"}
	if got := e.subs.reqs; len(got) != 1 || got[0] != want {
		t.Errorf("subscriber got %+v, want %+v", got, want)
	}
	e.subs.err = &residents.Refusal{Code: residents.RefuseHouseholdCode, Reason: "wrong code"}
	resp, body := e.do(t, "POST", "/subscribe", form.Encode())
	if resp.StatusCode != 400 || !strings.Contains(body, "That code is not the code of this lab sample") ||
		!strings.Contains(body, `value="acme-labs/L1"`) || strings.Contains(body, "abcd-efgh") || !strings.Contains(body, `<details id="household" open>`) {
		t.Errorf("POST /subscribe with a wrong code = %d, want 400 with the reason, the sample kept and the code not:\n%s", resp.StatusCode, body)
	}
	e.subs.err = nil
	e.subs.confirmed = residents.Subscription{ID: "s2", Target: want.Target, Confirmed: true}
	if resp, body := e.do(t, "GET", "/confirm?token=sample", ""); resp.StatusCode != 200 || !strings.Contains(body, "your lab result, sample acme-labs/L1 of springfield") {
		t.Errorf("confirmation page = %d, want it to name the sample:\n%s", resp.StatusCode, body)
	}
}
