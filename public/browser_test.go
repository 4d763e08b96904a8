package public_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/public"
)

// browser starts headless Chromium for t. Without Chromium the test fails
// in CI (CI=true) and is skipped elsewhere.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (Debian: apt-get install -y chromium chromium-driver)")
		}
		t.Skip("chromium is missing; apt-get install -y chromium")
	}
	// Not t.TempDir: Chromium's helpers may still write for a moment after
	// the browser exits, and TempDir's removal then fails the test.
	profile, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		deadline := time.Now().Add(10 * time.Second)
		for os.RemoveAll(profile) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// run runs browser actions with a deadline.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var html string
		_ = chromedp.Run(context.WithoutCancel(ctx), chromedp.OuterHTML("html", &html))
		t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
}

// memNoticeLog is a NoticeLog in memory.
type memNoticeLog struct {
	mu      sync.Mutex
	records []alerts.NoticeRecord
}

func (l *memNoticeLog) AppendNotice(_ context.Context, _ string, record []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r alerts.NoticeRecord
	if err := json.Unmarshal(record, &r); err != nil {
		return 0, err
	}
	l.records = append(l.records, r)
	return uint64(len(l.records) - 1), nil
}

func (l *memNoticeLog) all() []alerts.NoticeRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]alerts.NoticeRecord(nil), l.records...)
}

func waitMail(t *testing.T, mp *localstack.Mailpit, to, subject string) localstack.MailpitMessage {
	t.Helper()
	var msg localstack.MailpitMessage
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		list, err := mp.Search(context.Background(), "to:"+to)
		if err != nil {
			return err
		}
		for _, m := range list {
			if strings.Contains(m.Subject, subject) {
				msg, err = mp.Message(context.Background(), m.ID)
				return err
			}
		}
		return errorf("no message to %s about %q among %d", to, subject, len(list))
	})
	return msg
}

// TestResidentJourney is the resident's path end to end, in a real browser,
// through real SMTP: find the site, subscribe, confirm from the email, see
// an alert arrive live on the page, receive the notice, unsubscribe.
func TestResidentJourney(t *testing.T) {
	ctx := browser(t)
	mp := localstack.MailpitForTest(t, nil)
	js := startJetStream(t)
	bg := context.Background()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	links := alerts.Links{Base: base}

	store, err := alerts.NewStore(bg, js)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := alerts.NewSubscriptions(bg, js)
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := alerts.NewSMTPMailer(alerts.SMTPConfig{Host: mp.SMTPHost, Port: mp.SMTPPort, From: "alerts@water.springfield.example", TLS: alerts.SMTPTLSNone})
	if err != nil {
		t.Fatal(err)
	}
	nlog := &memNoticeLog{}
	notifier, err := alerts.NewNotifier(bg, js, subs, testSites, alerts.NotifierConfig{Links: links, Mailer: mailer, NoticeLog: nlog,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- notifier.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	states, err := alerts.NewScreeningKV(bg, js)
	if err != nil {
		t.Fatal(err)
	}
	screener, err := alerts.NewScreener(alerts.NewEvaluator(tapproof.DefaultRules, nil, 0), store, states, alerts.ScreenerConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: public.Handler(public.Config{
		Sites: testSites, Readings: readings, Alerts: store, Subscriber: notifier, Title: "Springfield water",
		CAP: alerts.CAPConfig{Sender: "alerts@water.springfield.example", Links: links},
	})}}
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() }) // the page's event stream stays open

	const resident = "resident@example.org"
	var text string

	// 1. Find the site from the status page.
	run(t, ctx, "open the status page",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`a.site[href$="/sites/springfield/elm-st-12"]`),
		chromedp.Click(`a.site[href$="/sites/springfield/elm-st-12"]`),
		chromedp.WaitVisible(`#readings`),
		chromedp.Text(`#readings`, &text),
	)
	if !strings.Contains(text, "3.2 ug/L") {
		t.Errorf("readings table = %q, want the latest reading 3.2 ug/L", text)
	}

	// 2. Subscribe with the form.
	run(t, ctx, "subscribe",
		chromedp.SendKeys(`#address`, resident),
		chromedp.Click(`#subscribe-button`),
		chromedp.WaitVisible(`#message`),
		chromedp.Text(`#message`, &text),
	)
	if !strings.Contains(text, "Check your inbox") {
		t.Fatalf("after subscribing the page says %q", text)
	}

	// 3. Confirm from the email.
	confirm := waitMail(t, mp, resident, "Confirm")
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `/confirm\?token=[0-9a-f]{64}`).FindString(confirm.Text)
	if link == "" {
		t.Fatalf("confirmation email has no link to %s/confirm:\n%s", base, confirm.Text)
	}
	run(t, ctx, "confirm",
		chromedp.Navigate(link),
		chromedp.WaitVisible(`#message`),
		chromedp.Text(`#message`, &text),
	)
	if !strings.Contains(text, "You will now receive") {
		t.Fatalf("confirmation page says %q", text)
	}

	// 4. The site page is open, live, when a sensor spikes.
	run(t, ctx, "open the site page",
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
	run(t, ctx, "see the alert arrive live",
		chromedp.WaitVisible(`#live li.live-alert`),
		chromedp.Text(`#live`, &text),
	)
	if !strings.Contains(text, "New alert: lead 30 ug/L") {
		t.Errorf("live alert = %q, want the new 30 ug/L alert", text)
	}

	// 5. The notice arrives with the mandatory language and an unsubscribe link.
	notice := waitMail(t, mp, resident, "Water alert")
	for _, want := range []string{"30 µg/L (ppb)", alerts.HealthEffectsLead, base + "/sites/springfield/elm-st-12"} {
		if !strings.Contains(notice.Text, want) {
			t.Errorf("notice lacks %q:\n%s", want, notice.Text)
		}
	}
	unsub := regexp.MustCompile(regexp.QuoteMeta(base) + `/unsubscribe\?token=[0-9a-f]{64}`).FindString(notice.Text)
	if unsub == "" {
		t.Fatalf("notice has no unsubscribe link:\n%s", notice.Text)
	}
	if recs := nlog.all(); len(recs) != 1 || recs[0].Recipients != 1 || recs[0].AlertID != "screening-asv-1-2" {
		t.Errorf("notice records = %+v, want one for screening-asv-1-2 with 1 recipient", recs)
	}

	// 6. A reload shows the open alert; the CAP link works.
	var capHref string
	run(t, ctx, "reload",
		chromedp.Reload(),
		chromedp.WaitVisible(`#open-alerts`),
		chromedp.Text(`#open-alerts`, &text),
		chromedp.AttributeValue(`#open-alerts a`, "href", &capHref, nil),
	)
	if !strings.Contains(text, "Screening alert") || !strings.HasSuffix(capHref, "/v1/alerts/screening-asv-1-2/cap.xml") {
		t.Errorf("open alerts = %q, CAP link %q", text, capHref)
	}

	// 7. Unsubscribe from the link in the email.
	run(t, ctx, "unsubscribe",
		chromedp.Navigate(unsub),
		chromedp.WaitVisible(`#unsubscribe-button`),
		chromedp.Click(`#unsubscribe-button`),
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

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
