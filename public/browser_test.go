package public_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/internal/browsertest"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/public"
)

// memNoticeLog is a NoticeLog in memory.
type memNoticeLog struct {
	mu      sync.Mutex
	records []tapproof.NoticeRecord
}

func (l *memNoticeLog) AppendNotice(_ context.Context, _ string, record []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r tapproof.NoticeRecord
	if err := json.Unmarshal(record, &r); err != nil {
		return 0, err
	}
	l.records = append(l.records, r)
	return uint64(len(l.records) - 1), nil
}

func (l *memNoticeLog) all() []tapproof.NoticeRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tapproof.NoticeRecord(nil), l.records...)
}

func waitMail(t *testing.T, mp *localstack.Mailpit, to, subject string) localstack.MailpitMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	msg, err := mp.Wait(ctx, to, subject)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// browserEnv is the public pages in a real browser (Chromium), on real
// JetStream and real SMTP (mailpit), with a notifier running.
type browserEnv struct {
	ctx   context.Context // the browser's
	base  string
	js    jetstream.JetStream
	store *alerts.Store
	subs  *residents.Subscriptions
	nlog  *memNoticeLog
	mp    *localstack.Mailpit
}

// newBrowserEnv serves the pages of testSites with readings rs, at clock
// now (time.Now if nil).
func newBrowserEnv(t *testing.T, rs public.Readings, now func() time.Time) *browserEnv {
	t.Helper()
	e := &browserEnv{ctx: browsertest.Start(t), mp: localstack.MailpitForTest(t, nil), js: alertstest.JetStream(t), nlog: &memNoticeLog{}}
	bg := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	links := notice.Links{Base: e.base}
	if e.store, err = alerts.NewStore(bg, e.js, nil); err != nil {
		t.Fatal(err)
	}
	if e.subs, err = residents.NewSubscriptions(bg, e.js, residents.SubscriptionsConfig{}); err != nil {
		t.Fatal(err)
	}
	mailer, err := residents.NewSMTPMailer(residents.SMTPConfig{Host: e.mp.SMTPHost, Port: e.mp.SMTPPort, From: "alerts@water.springfield.example", TLS: residents.SMTPTLSNone})
	if err != nil {
		t.Fatal(err)
	}
	notifier, err := residents.NewNotifier(bg, e.js, e.subs, testSites, residents.NotifierConfig{Links: links, Mailer: mailer, NoticeLog: e.nlog,
		Retry: alerts.Retry{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- notifier.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: public.Handler(public.Config{
		Sites: testSites, Readings: rs, Alerts: e.store, Subscriber: notifier, Title: "Springfield water",
		CAP: cap.Config{Sender: "alerts@water.springfield.example", Links: links}, Now: now,
	})}}
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() }) // a page's event stream stays open
	return e
}

// TestResidentJourney is the resident's path end to end, in a real browser,
// through real SMTP: find the site, subscribe, confirm from the email, see
// an alert arrive live on the page, receive the notice, unsubscribe.
func TestResidentJourney(t *testing.T) {
	e := newBrowserEnv(t, readings, nil)
	ctx, mp, base, nlog, subs := e.ctx, e.mp, e.base, e.nlog, e.subs
	bg := context.Background()
	states, err := alerts.NewScreeningKV(bg, e.js)
	if err != nil {
		t.Fatal(err)
	}
	screener, err := alerts.NewScreener(alerts.NewEvaluator(tapproof.RuleBook{}), e.store, states, alerts.ScreenerConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	const resident = "resident@example.org"
	var text string

	// 1. Find the site from the status page.
	if text = browsertest.FindSite(t, ctx, base, "springfield", "elm-st-12"); !strings.Contains(text, "3.2 µg/L (ppb)") {
		t.Errorf("readings table = %q, want the latest reading 3.2 µg/L (ppb)", text)
	}

	// 2. Subscribe with the form, and 3. confirm from the email.
	browsertest.Subscribe(t, ctx, mp, base, resident)

	// 4. The site page is open, live, when a sensor spikes.
	browsertest.Run(t, ctx, "open the site page",
		chromedp.Navigate(base+"/sites/springfield/elm-st-12"),
		chromedp.WaitVisible(`#no-alerts`),
		chromedp.WaitReady(`body[data-live="connected"]`),
	)
	if err := screener.Check(bg, lead(2, 30)); err != nil {
		t.Fatal(err)
	}
	if err := screener.Check(bg, lead(3, 31)); err != nil { // suppressed: no second notice
		t.Fatal(err)
	}
	browsertest.Run(t, ctx, "see the alert arrive live",
		chromedp.WaitVisible(`#live li.live-alert`),
		chromedp.Text(`#live`, &text),
	)
	if !strings.Contains(text, "New alert: lead 30 µg/L (ppb)") {
		t.Errorf("live alert = %q, want the new 30 ug/L alert", text)
	}

	// 5. The notice arrives with the mandatory language and an unsubscribe link.
	mail := waitMail(t, mp, resident, "Water alert")
	for _, want := range []string{"30 µg/L (ppb)", notice.HealthEffectsLead, base + "/sites/springfield/elm-st-12"} {
		if !strings.Contains(mail.Text, want) {
			t.Errorf("notice lacks %q:\n%s", want, mail.Text)
		}
	}
	unsub := regexp.MustCompile(regexp.QuoteMeta(base) + `/unsubscribe\?token=[0-9a-f]{64}`).FindString(mail.Text)
	if unsub == "" {
		t.Fatalf("notice has no unsubscribe link:\n%s", mail.Text)
	}
	if recs := nlog.all(); len(recs) != 1 || recs[0].Recipients != 1 || recs[0].AlertID != "screening-asv-1-2" {
		t.Errorf("notice records = %+v, want one for screening-asv-1-2 with 1 recipient", recs)
	}

	// 6. A reload shows the open alert; the CAP link works.
	var capHref string
	browsertest.Run(t, ctx, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(`#open-alerts`),
		chromedp.Text(`#open-alerts`, &text),
		chromedp.AttributeValue(`#open-alerts a`, "href", &capHref, nil),
	)
	if !strings.Contains(text, "Screening alert") || !strings.HasSuffix(capHref, "/v1/alerts/screening-asv-1-2/cap.xml") {
		t.Errorf("open alerts = %q, CAP link %q", text, capHref)
	}

	// 7. Unsubscribe from the link in the email.
	browsertest.Run(t, ctx, "unsubscribe",
		chromedp.Navigate(unsub),
		chromedp.WaitVisible(`#unsubscribe-button`),
		browsertest.Follow(`#unsubscribe-button`),
		chromedp.WaitVisible(`#message`),
		chromedp.Text(`#message`, &text),
	)
	if !strings.Contains(text, "no more alerts") {
		t.Errorf("unsubscribe page says %q", text)
	}
	if all, err := subs.All(bg); err != nil || len(all) != 0 {
		t.Errorf("subscriptions after unsubscribing = %v, %v; want none", all, err)
	}
}
