package residents_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
)

type staticSites []notice.Site

func (s staticSites) Sites(context.Context) ([]notice.Site, error) { return s, nil }

var testSites = staticSites{
	{Utility: "springfield", ID: "elm-st-12", Name: "Elm Street school", Area: "north", AreaName: "North service area"},
	{Utility: "springfield", ID: "oak-ave-3", Name: "Oak Avenue", Area: "north", AreaName: "North service area"},
	{Utility: "springfield", ID: "river-rd", Name: "River Road", Area: "south", AreaName: "South service area"},
}

// memNoticeLog is a NoticeLog in memory.
type memNoticeLog struct {
	mu      sync.Mutex
	records []tapproof.NoticeRecord
	raw     [][]byte
}

func (l *memNoticeLog) AppendNotice(_ context.Context, utility string, record []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r tapproof.NoticeRecord
	if err := json.Unmarshal(record, &r); err != nil {
		return 0, err
	}
	if r.Utility != utility {
		return 0, errors.New("record for another utility")
	}
	l.records = append(l.records, r)
	l.raw = append(l.raw, record)
	return uint64(len(l.records) - 1), nil
}

func (l *memNoticeLog) all() []tapproof.NoticeRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tapproof.NoticeRecord(nil), l.records...)
}

type notifyEnv struct {
	js    jetstream.JetStream
	store *alerts.Store
	subs  *residents.Subscriptions
	n     *residents.Notifier
	nlog  *memNoticeLog
	reg   *prometheus.Registry
	logs  *alertstest.Buffer
}

func fastNotifier(mailer residents.Mailer) residents.NotifierConfig {
	return residents.NotifierConfig{
		Links: notice.Links{Base: "https://water.example.org/"}, Mailer: mailer, Workers: 2, WebhookTimeout: 500 * time.Millisecond,
		Retry: alerts.Retry{MaxDeliver: 5, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
	}
}

// startNotifier runs a Notifier with cfg until the test ends, its
// subscriptions allowing webhooks on loopback.
func startNotifier(t *testing.T, cfg residents.NotifierConfig) *notifyEnv {
	t.Helper()
	return startNotifierWith(t, cfg, residents.SubscriptionsConfig{AllowPrivateWebhooks: true})
}

// startNotifierWith is startNotifier with subscriptions configured by sc.
func startNotifierWith(t *testing.T, cfg residents.NotifierConfig, sc residents.SubscriptionsConfig) *notifyEnv {
	t.Helper()
	ctx := context.Background()
	e := &notifyEnv{js: alertstest.JetStream(t), nlog: &memNoticeLog{}, reg: prometheus.NewRegistry(), logs: &alertstest.Buffer{}}
	e.store = alertstest.Store(t, e.js, alerts.NewMetrics(e.reg))
	var err error
	if e.subs, err = residents.NewSubscriptions(ctx, e.js, sc); err != nil {
		t.Fatal(err)
	}
	cfg.NoticeLog = e.nlog
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if e.n, err = residents.NewNotifier(ctx, e.js, e.subs, testSites, cfg, residents.NewMetrics(e.reg), log); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.n.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Notifier.Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Notifier.Run did not return 10s after cancel")
		}
	})
	// Run creates its consumers; alerts published before would be missed.
	poll.Until(t, 10*time.Second, func() error {
		_, err := e.js.Consumer(ctx, alerts.StreamName, "tapproof-notice-dispatch")
		return err
	})
	return e
}

// subscribed returns a confirmed subscription, confirmed without mail.
func (e *notifyEnv) subscribed(t *testing.T, req residents.SubscribeRequest) residents.Subscription {
	t.Helper()
	_, token, err := e.subs.Subscribe(context.Background(), req)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	sub, err := e.subs.Confirm(context.Background(), token)
	if err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	return sub
}

func (e *notifyEnv) waitDelivery(t *testing.T, alertID, status string, n int) []residents.DeliveryStatus {
	t.Helper()
	var got []residents.DeliveryStatus
	poll.Until(t, 20*time.Second, func() error {
		var err error
		if got, err = e.n.Deliveries(context.Background(), alertID); err != nil {
			return err
		}
		k := 0
		for _, d := range got {
			if d.Status == status {
				k++
			}
		}
		if k != n {
			return errorf("deliveries of %s = %+v, want %d %s", alertID, got, n, status)
		}
		return nil
	})
	return got
}

func waitMail(t *testing.T, mp *localstack.Mailpit, to string, n int) []localstack.MailpitMessage {
	t.Helper()
	var out []localstack.MailpitMessage
	poll.Until(t, 20*time.Second, func() error {
		list, err := mp.Search(context.Background(), "to:"+to)
		if err != nil {
			return err
		}
		if len(list) < n {
			return errorf("%d messages to %s, want %d", len(list), to, n)
		}
		out = out[:0]
		for _, m := range list {
			full, err := mp.Message(context.Background(), m.ID)
			if err != nil {
				return err
			}
			out = append(out, full)
		}
		return nil
	})
	return out
}

func mailpitMailer(t *testing.T, host string, port int) residents.Mailer {
	t.Helper()
	m, err := residents.NewSMTPMailer(residents.SMTPConfig{Host: host, Port: port, From: "alerts@water.example.org",
		TLS: residents.SMTPTLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var confirmLink = regexp.MustCompile(`https://water\.example\.org/confirm\?token=([0-9a-f]{64})`)

// TestNotifyEmail: double opt-in through real SMTP, a notice to the
// confirmed address only, its record in the log, and unsubscribe.
func TestNotifyEmail(t *testing.T) {
	mp := localstack.MailpitForTest(t, nil)
	e := startNotifier(t, fastNotifier(mailpitMailer(t, mp.SMTPHost, mp.SMTPPort)))
	ctx := context.Background()
	const resident, lurker = "resident@example.org", "never-confirms@example.org"

	sub, err := e.n.Subscribe(ctx, residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Area: "north"}, Channel: residents.ChannelEmail, Address: resident})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, err := e.n.Subscribe(ctx, residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Site: "elm-st-12"}, Channel: residents.ChannelEmail, Address: lurker}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	confirm := waitMail(t, mp, resident, 1)[0]
	if !strings.Contains(confirm.Subject, "Confirm") || !strings.Contains(confirm.Text, "North service area") {
		t.Errorf("confirmation = %q / %q, want a confirmation for the North service area", confirm.Subject, confirm.Text)
	}
	m := confirmLink.FindStringSubmatch(confirm.Text)
	if m == nil {
		t.Fatalf("confirmation text has no confirm link:\n%s", confirm.Text)
	}
	if got, err := e.n.Confirm(ctx, m[1]); err != nil || got.ID != sub.ID || !got.Confirmed {
		t.Fatalf("Confirm = %v, %v; want %s confirmed", got, err, sub.ID)
	}
	if _, err := e.n.Confirm(ctx, strings.Repeat("ab", 32)); !errors.Is(err, residents.ErrUnknownToken) {
		t.Errorf("Confirm(unknown token) = %v, want ErrUnknownToken", err)
	}
	waitMail(t, mp, lurker, 1) // its confirmation, and nothing more later

	a := alertstest.Alert(5) // elm-st-12: in the north area
	alertstest.Publish(t, e.store, a)
	e.waitDelivery(t, a.ID, residents.DeliveryDelivered, 1)
	msgs := waitMail(t, mp, resident, 2)
	mail := msgs[0] // newest first
	for _, want := range []string{"Elm Street school", "20 µg/L (ppb)", notice.HealthEffectsLead, "To unsubscribe: https://water.example.org/unsubscribe?token=" + sub.UnsubscribeToken,
		"Proof of the reading: https://water.example.org/v1/readings/asv-1/5/bundle", "tapproof verify"} {
		if !strings.Contains(mail.Text, want) {
			t.Errorf("notice text lacks %q:\n%s", want, mail.Text)
		}
	}
	hdr, err := mp.Headers(ctx, mail.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := hdr["List-Unsubscribe-Post"]; len(got) != 1 || got[0] != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}

	recs := e.nlog.all()
	if len(recs) != 1 {
		t.Fatalf("notice log holds %d records, want 1", len(recs))
	}
	r := recs[0]
	text := strings.ReplaceAll(mail.Text, "\r\n", "\n")
	body, _, _ := strings.Cut(text, "\n-- \n")
	sum := sha256.Sum256([]byte(mail.Subject + "\n\n" + body + "\n"))
	sumNoNL := sha256.Sum256([]byte(mail.Subject + "\n\n" + body))
	if r.TextSHA256 != hex.EncodeToString(sum[:]) && r.TextSHA256 != hex.EncodeToString(sumNoNL[:]) {
		t.Errorf("record text_sha256 %s is not the SHA-256 of the text sent:\n%q", r.TextSHA256, mail.Subject+"\n\n"+body)
	}
	if r.AlertID != a.ID || r.Recipients != 1 || r.Template != notice.TemplateScreeningAlert || r.TemplateVersion != 2 ||
		r.Class != tapproof.Screening || r.SentAt.IsZero() || !r.AlertRaisedAt.Equal(a.RaisedAt) {
		t.Errorf("notice record = %+v", r)
	}
	for _, raw := range e.nlog.raw {
		if strings.Contains(string(raw), "@") {
			t.Errorf("notice record contains an address: %s", raw)
		}
	}
	if _, idx, ok, err := e.n.Issued(ctx, a.ID); err != nil || !ok || idx != 0 {
		t.Errorf("Issued(%s) = _, %d, %v, %v; want index 0", a.ID, idx, ok, err)
	}

	// Unsubscribed: the all-clear is recorded with no recipient and sent
	// to nobody.
	if _, err := e.n.Unsubscribe(ctx, sub.UnsubscribeToken); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if _, err := e.n.Unsubscribe(ctx, sub.UnsubscribeToken); !errors.Is(err, residents.ErrUnknownToken) {
		t.Errorf("second Unsubscribe = %v, want ErrUnknownToken", err)
	}
	clear := a
	clear.ID, clear.MsgType, clear.Status, clear.References = "clear-"+a.ID, tapproof.CancelMsg, tapproof.AlertCleared, []tapproof.AlertRef{a.Ref()}
	alertstest.Publish(t, e.store, clear)
	poll.Until(t, 10*time.Second, func() error {
		if n := len(e.nlog.all()); n != 2 {
			return errorf("%d notice records, want 2", n)
		}
		return nil
	})
	if r := e.nlog.all()[1]; r.Recipients != 0 || r.Template != notice.TemplateScreeningClear || r.MsgType != tapproof.CancelMsg {
		t.Errorf("all-clear record = %+v, want 0 recipients from %s", r, notice.TemplateScreeningClear)
	}
	if n := len(waitMail(t, mp, resident, 2)); n != 2 {
		t.Errorf("%s received %d messages, want 2 (confirmation, notice)", resident, n)
	}
	if n := len(waitMail(t, mp, lurker, 1)); n != 1 {
		t.Errorf("unconfirmed %s received %d messages, want only the confirmation", lurker, n)
	}
	for _, addr := range []string{resident, lurker, sub.UnsubscribeToken, m[1]} {
		if strings.Contains(e.logs.String(), addr) {
			t.Errorf("logs contain %q", addr)
		}
	}
}

// TestNotifySMTPDown: a notice waits while the SMTP server is down and is
// delivered, once, when it comes up; with the server down for good the
// delivery is recorded as failed.
func TestNotifySMTPDown(t *testing.T) {
	t.Run("then up", func(t *testing.T) {
		port := freePort(t)
		nc := fastNotifier(mailpitMailer(t, "127.0.0.1", port))
		nc.MaxDeliver = 50
		e := startNotifier(t, nc)
		e.subscribed(t, residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Site: "elm-st-12"}, Channel: residents.ChannelEmail, Address: "patient@example.org"})
		a := alertstest.Alert(7)
		alertstest.Publish(t, e.store, a)
		poll.Until(t, 10*time.Second, func() error {
			ds, err := e.n.Deliveries(context.Background(), a.ID)
			if err != nil || len(ds) != 1 || ds[0].Status != residents.DeliveryRetrying || ds[0].Attempts < 2 {
				return errorf("deliveries = %+v, %v; want retrying after 2 attempts", ds, err)
			}
			if strings.Contains(ds[0].Error, "patient@") {
				t.Errorf("delivery error reveals the address: %s", ds[0].Error)
			}
			return nil
		})
		mp := localstack.MailpitForTest(t, &localstack.MailpitConfig{SMTPPort: port})
		e.waitDelivery(t, a.ID, residents.DeliveryDelivered, 1)
		if n := len(waitMail(t, mp, "patient@example.org", 1)); n != 1 {
			t.Errorf("received %d notices, want 1", n)
		}
	})
	t.Run("for good", func(t *testing.T) {
		nc := fastNotifier(mailpitMailer(t, "127.0.0.1", freePort(t)))
		nc.MaxDeliver = 3
		e := startNotifier(t, nc)
		e.subscribed(t, residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Area: "north"}, Channel: residents.ChannelEmail, Address: "unlucky@example.org"})
		a := alertstest.Alert(8)
		alertstest.Publish(t, e.store, a)
		ds := e.waitDelivery(t, a.ID, residents.DeliveryFailed, 1)
		if ds[0].Attempts != 3 || ds[0].Channel != residents.ChannelEmail {
			t.Errorf("failed delivery = %+v, want 3 attempts by email", ds[0])
		}
		if r := e.nlog.all(); len(r) != 1 || r[0].Recipients != 1 {
			t.Errorf("notice records = %+v, want one with 1 recipient", r)
		}
	})
}

// TestNotifyWebhook: resident webhooks are signed with the subscription's
// secret, retried after a 500 and after a timeout, and get the confirmation
// request too.
func TestNotifyWebhook(t *testing.T) {
	e := startNotifier(t, fastNotifier(nil))
	block := make(chan struct{})
	rcv := alertstest.NewReceiver(t, func(n int) int {
		switch n {
		case 2:
			return http.StatusInternalServerError
		case 3:
			<-block // a timeout: the notifier gives up after 500ms
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(block) }) // before the receiver closes
	ctx := context.Background()
	sub, err := e.n.Subscribe(ctx, residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Site: "elm-st-12"}, Channel: residents.ChannelWebhook, Address: rcv.URL + "/sms-gateway"})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Secret == "" {
		t.Fatal("webhook subscription has no secret")
	}
	req := rcv.Wait(t, 1)[0]
	var p struct {
		Type       string `json:"type"`
		ConfirmURL string `json:"confirm_url"`
		Secret     string `json:"secret"`
	}
	if !alerts.Verify(sub.Secret, req.Body, req.Header.Get(alerts.HeaderSignature)) {
		t.Errorf("confirmation signature does not verify")
	}
	if err := json.Unmarshal(req.Body, &p); err != nil || p.Type != "confirm" || p.Secret != sub.Secret || !confirmLink.MatchString(p.ConfirmURL) {
		t.Fatalf("confirmation payload %s: %v", req.Body, err)
	}
	if _, err := e.n.Confirm(ctx, confirmLink.FindStringSubmatch(p.ConfirmURL)[1]); err != nil {
		t.Fatal(err)
	}

	a := alertstest.Alert(9)
	alertstest.Publish(t, e.store, a)
	ds := e.waitDelivery(t, a.ID, residents.DeliveryDelivered, 1)
	if ds[0].Attempts != 3 {
		t.Errorf("delivered after %d attempts, want 3 (500, timeout, 200)", ds[0].Attempts)
	}
	reqs := rcv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("receiver got %d requests, want 4", len(reqs))
	}
	last := reqs[3]
	if !alerts.Verify(sub.Secret, last.Body, last.Header.Get(alerts.HeaderSignature)) || last.Header.Get(alerts.HeaderAlertID) != a.ID {
		t.Errorf("notice delivery not signed with the subscription secret or wrong alert id")
	}
	var got struct {
		Type  string         `json:"type"`
		Alert tapproof.Alert `json:"alert"`
		Text  string         `json:"text"`
		Unsub string         `json:"unsubscribe_url"`
		Proof string         `json:"proof_url"`
	}
	if err := json.Unmarshal(last.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "notice" || got.Alert.ID != a.ID || !strings.Contains(got.Text, notice.HealthEffectsLead) || !strings.Contains(got.Unsub, sub.UnsubscribeToken) {
		t.Errorf("notice payload = %+v", got)
	}
	if want := "https://water.example.org/v1/readings/asv-1/9/bundle"; got.Proof != want || !strings.Contains(got.Text, want) {
		t.Errorf("notice payload proof_url = %q, want %s, the one its text links:\n%s", got.Proof, want, got.Text)
	}
}

func TestSubscribeValidation(t *testing.T) {
	js := alertstest.JetStream(t)
	ctx := context.Background()
	strict, err := residents.NewSubscriptions(ctx, js, residents.SubscriptionsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	site := residents.Target{Utility: "springfield", Site: "elm-st-12"}
	tests := []struct {
		name    string
		req     residents.SubscribeRequest
		refused residents.RefusalCode // "" if accepted
	}{
		{"email", residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail, Address: "a@example.org"}, ""},
		{"email with spaces around", residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail, Address: "  a@example.org "}, ""},
		{"area", residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Area: "north"}, Channel: residents.ChannelEmail, Address: "a@example.org"}, ""},
		{"public webhook", residents.SubscribeRequest{Target: site, Channel: residents.ChannelWebhook, Address: "https://hooks.example.org/x?k=1"}, ""},
		{"no target", residents.SubscribeRequest{Target: residents.Target{Utility: "springfield"}, Channel: residents.ChannelEmail, Address: "a@example.org"}, residents.RefuseNoTarget},
		{"site and area", residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Site: "x", Area: "y"}, Channel: residents.ChannelEmail, Address: "a@example.org"}, residents.RefuseSiteAndArea},
		{"bad utility", residents.SubscribeRequest{Target: residents.Target{Utility: "Spring Field", Site: "x"}, Channel: residents.ChannelEmail, Address: "a@example.org"}, residents.RefuseUtility},
		{"named address", residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail, Address: "Bob <a@example.org>"}, residents.RefuseEmail},
		{"header injection", residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail, Address: "a@example.org\r\nBcc: b@example.org"}, residents.RefuseEmail},
		{"no domain dot", residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail, Address: "a@example"}, residents.RefuseEmail},
		{"too long", residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail, Address: strings.Repeat("a", 250) + "@example.org"}, residents.RefuseEmail},
		{"empty", residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail}, residents.RefuseAddressLength},
		{"unknown channel", residents.SubscribeRequest{Target: site, Channel: "sms", Address: "+15555550100"}, residents.RefuseChannel},
		{"ftp webhook", residents.SubscribeRequest{Target: site, Channel: residents.ChannelWebhook, Address: "ftp://example.org/x"}, residents.RefuseWebhook},
		{"webhook with credentials", residents.SubscribeRequest{Target: site, Channel: residents.ChannelWebhook, Address: "https://u:p@example.org/x"}, residents.RefuseWebhook},
		{"loopback webhook", residents.SubscribeRequest{Target: site, Channel: residents.ChannelWebhook, Address: "http://127.0.0.1:8080/x"}, residents.RefusePrivateWebhook},
		{"localhost webhook", residents.SubscribeRequest{Target: site, Channel: residents.ChannelWebhook, Address: "http://localhost/x"}, residents.RefusePrivateWebhook},
		{"metadata webhook", residents.SubscribeRequest{Target: site, Channel: residents.ChannelWebhook, Address: "http://169.254.169.254/latest"}, residents.RefusePrivateWebhook},
		{"private webhook", residents.SubscribeRequest{Target: site, Channel: residents.ChannelWebhook, Address: "http://10.1.2.3/x"}, residents.RefusePrivateWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, token, err := strict.Subscribe(ctx, tt.req)
			if tt.refused == "" {
				if err != nil || token == "" || sub.Confirmed {
					t.Errorf("Subscribe = %v, token %q, %v; want a pending subscription and a token", sub, token, err)
				}
				return
			}
			var r *residents.Refusal
			if !errors.Is(err, residents.ErrInvalidSubscription) || !errors.As(err, &r) || r.Code != tt.refused {
				t.Errorf("Subscribe = %v, want a refusal %s", err, tt.refused)
			}
			if tt.req.Address != "" && err != nil && strings.Contains(err.Error(), strings.TrimSpace(tt.req.Address)) {
				t.Errorf("error %q repeats the address", err)
			}
		})
	}

	// Subscribing again while pending replaces the token; once confirmed,
	// subscribing again sends nothing.
	req := residents.SubscribeRequest{Target: site, Channel: residents.ChannelEmail, Address: "twice@example.org"}
	s1, tok1, err := strict.Subscribe(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	s2, tok2, err := strict.Subscribe(ctx, req)
	if err != nil || s2.ID != s1.ID || tok2 == tok1 {
		t.Fatalf("second Subscribe = %v, %q, %v; want the same subscription with a new token", s2, tok2, err)
	}
	if _, err := strict.Confirm(ctx, tok1); !errors.Is(err, residents.ErrUnknownToken) {
		t.Errorf("Confirm(replaced token) = %v, want ErrUnknownToken", err)
	}
	if _, err := strict.Confirm(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if _, tok3, err := strict.Subscribe(ctx, req); err != nil || tok3 != "" {
		t.Errorf("Subscribe when confirmed = %q, %v; want no token", tok3, err)
	}
	for _, bad := range []string{"", "../sub.x", strings.Repeat("f", 65), "ABC"} {
		if _, err := strict.Confirm(ctx, bad); !errors.Is(err, residents.ErrUnknownToken) {
			t.Errorf("Confirm(%q) = %v, want ErrUnknownToken", bad, err)
		}
	}
	if got := s1.String() + s1.GoString(); strings.Contains(got, "twice@") {
		t.Errorf("Subscription formats with its address: %s", got)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMetricsLint: the notice metrics register beside the alert metrics,
// in one registry, whichever comes first, with every channel and result.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	alerts.NewMetrics(reg)
	residents.NewMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	const want = `
# HELP tapproof_notice_deliveries_total Resident notice and confirmation delivery attempts, by channel (email, webhook) and result (delivered, retried, failed).
# TYPE tapproof_notice_deliveries_total counter
tapproof_notice_deliveries_total{channel="email",result="delivered"} 0
tapproof_notice_deliveries_total{channel="email",result="failed"} 0
tapproof_notice_deliveries_total{channel="email",result="retried"} 0
tapproof_notice_deliveries_total{channel="webhook",result="delivered"} 0
tapproof_notice_deliveries_total{channel="webhook",result="failed"} 0
tapproof_notice_deliveries_total{channel="webhook",result="retried"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tapproof_notice_deliveries_total"); err != nil {
		t.Error(err)
	}
	// One series per refusal code, and nothing else: the label is bounded.
	if n := testutil.CollectAndCount(reg, "tapproof_subscription_refusals_total"); n != len(residents.RefusalCodes) {
		t.Errorf("tapproof_subscription_refusals_total has %d series, want %d (one per RefusalCode)", n, len(residents.RefusalCodes))
	}
}

// TestRefusalsCounted: the notifier counts each refused subscription by its
// code, and its metrics never carry an address.
func TestRefusalsCounted(t *testing.T) {
	e := startNotifierWith(t, fastNotifier(nil), residents.SubscriptionsConfig{MaxPendingPerAddress: 1})
	ctx := context.Background()
	hook := residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Site: "elm-st-12"}, Channel: residents.ChannelWebhook, Address: "https://hooks.example.org/once"}
	if _, err := e.n.Subscribe(ctx, hook); err != nil {
		t.Fatal(err)
	}
	for _, req := range []residents.SubscribeRequest{
		hook, // a second request while the first is pending
		{Target: hook.Target, Channel: residents.ChannelEmail, Address: "someone@example.org"},        // no mailer
		{Target: hook.Target, Channel: residents.ChannelWebhook, Address: "http://[64:ff9b::a00:1]/"}, // NAT64 of 10.0.0.1
	} {
		if _, err := e.n.Subscribe(ctx, req); err == nil {
			t.Errorf("Subscribe(%s) accepted, want a refusal", req.Channel)
		}
	}
	for code, want := range map[residents.RefusalCode]float64{residents.RefusePendingAddress: 1, residents.RefuseNoEmail: 1, residents.RefusePrivateWebhook: 1, residents.RefuseEmail: 0} {
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := -1.0
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if strings.Contains(lp.GetValue(), "example.org") || strings.Contains(lp.GetValue(), "64:ff9b") {
						t.Errorf("metric %s has an address in a label: %s", mf.GetName(), lp.GetValue())
					}
				}
				if mf.GetName() == "tapproof_subscription_refusals_total" && m.GetLabel()[0].GetValue() == string(code) {
					got = m.GetCounter().GetValue()
				}
			}
		}
		if got != want {
			t.Errorf("tapproof_subscription_refusals_total{reason=%q} = %v, want %v", code, got, want)
		}
	}
}
