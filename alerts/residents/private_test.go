package residents_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
)

// individualAlert is the individual compliance alert of sample
// acme-labs/L2026-00123, 22 ppb at elm-st-12, at leaf 41.
func individualAlert() tapproof.Alert {
	a := alertstest.Alert(41)
	a.ID, a.Class = tapproof.IndividualAlertID("springfield", "acme-labs", 41), tapproof.IndividualCompliance
	a.Device, a.Value, a.Sample = tapproof.LabDevice("springfield", "acme-labs"), 22, "acme-labs/L2026-00123"
	return a
}

// TestPrivateResultToItsHomeOnly: an individual lab result reaches the
// household subscribed to its sample with the sample's code, by real SMTP,
// and nobody subscribed to its site or its area; its notice record is
// appended with one recipient and no public channel. A screening alert
// at the same site still reaches the site and area subscribers, and not
// the household's subscription to its sample.
func TestPrivateResultToItsHomeOnly(t *testing.T) {
	mp := localstack.MailpitForTest(t, nil)
	codes := householdCodes(t, 7)
	e := startNotifierWith(t, fastNotifier(mailpitMailer(t, mp.SMTPHost, mp.SMTPPort)),
		residents.SubscriptionsConfig{AllowPrivateWebhooks: true, Households: codes})
	ctx := context.Background()
	const siteSub, areaSub, home = "neighbour@example.org", "north@example.org", "home@example.org"
	e.subscribed(t, residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Site: "elm-st-12"}, Channel: residents.ChannelEmail, Address: siteSub})
	e.subscribed(t, residents.SubscribeRequest{Target: residents.Target{Utility: "springfield", Area: "north"}, Channel: residents.ChannelEmail, Address: areaSub})

	// The household subscribes to its sample with its code: double
	// opt-in as for any subscription.
	code, err := codes.Code("springfield", "acme-labs", "L2026-00123")
	if err != nil {
		t.Fatal(err)
	}
	sample := residents.Target{Utility: "springfield", Sample: "acme-labs/L2026-00123"}
	sub, err := e.n.Subscribe(ctx, residents.SubscribeRequest{Target: sample, Channel: residents.ChannelEmail, Address: home, Code: strings.ToLower(code)})
	if err != nil {
		t.Fatalf("Subscribe(sample, its code) = %v", err)
	}
	confirm := waitMail(t, mp, home, 1)[0]
	if !strings.Contains(confirm.Subject, "acme-labs/L2026-00123") {
		t.Errorf("confirmation subject %q does not name the sample", confirm.Subject)
	}
	m := confirmLink.FindStringSubmatch(confirm.Text)
	if m == nil {
		t.Fatalf("confirmation has no link:\n%s", confirm.Text)
	}
	if _, err := e.n.Confirm(ctx, m[1]); err != nil {
		t.Fatal(err)
	}

	a := individualAlert()
	alertstest.Publish(t, e.store, a)
	e.waitDelivery(t, a.ID, residents.DeliveryDelivered, 1)
	mails := waitMail(t, mp, home, 2)
	if n := mails[0]; !strings.Contains(n.Subject, "Your lead result") || !strings.Contains(n.Text, "22 µg/L (ppb)") ||
		!strings.Contains(n.Text, "https://water.example.org/v1/logs/springfield/leaves/41/bundle") {
		t.Errorf("household's notice = %q:\n%s", n.Subject, n.Text)
	}
	poll.Until(t, 10*time.Second, func() error {
		if len(e.nlog.all()) != 1 {
			return errorf("notice records = %d, want 1", len(e.nlog.all()))
		}
		return nil
	})
	if r := e.nlog.all()[0]; r.AlertID != a.ID || r.Class != tapproof.IndividualCompliance || r.Recipients != 1 ||
		r.Template != notice.TemplateIndividualResult || len(r.Public) != 0 {
		t.Errorf("notice record = %+v, want %s's, one recipient, no public channel", r, a.ID)
	}
	if ds, _ := e.n.Deliveries(ctx, a.ID); len(ds) != 1 || ds[0].Subscription != sub.ID {
		t.Errorf("deliveries of %s = %+v, want one, to the household's subscription %s", a.ID, ds, sub.ID)
	}

	// A screening alert at the same site: the site and area subscribers
	// get it (and only it: the result came before it on one consumer);
	// the household's subscription to its sample does not.
	s := alertstest.Alert(42)
	alertstest.Publish(t, e.store, s)
	e.waitDelivery(t, s.ID, residents.DeliveryDelivered, 2)
	for _, to := range []string{siteSub, areaSub} {
		got := waitMail(t, mp, to, 1)
		if len(got) != 1 || !strings.Contains(got[0].Subject, "Water alert") {
			t.Errorf("%s received %d messages (%q), want only the screening alert", to, len(got), got[0].Subject)
		}
	}
	if got := waitMail(t, mp, home, 2); len(got) != 2 {
		t.Errorf("household received %d messages, want 2 (confirmation, its result)", len(got))
	}
	for _, secret := range []string{code, strings.ToLower(code), strings.ReplaceAll(code, "-", "")} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("logs contain the household code %q", secret)
		}
	}
}

// TestHouseholdCodeRefused: a subscription to a sample needs that
// sample's code; a wrong or missing one is refused with a stable code and
// counted, and nothing is sent or stored. Without a key, every sample
// subscription is refused.
func TestHouseholdCodeRefused(t *testing.T) {
	codes := householdCodes(t, 7)
	e := startNotifierWith(t, fastNotifier(nil), residents.SubscriptionsConfig{AllowPrivateWebhooks: true, Households: codes})
	ctx := context.Background()
	rcv := alertstest.NewReceiver(t, func(int) int { return http.StatusOK })
	sample := residents.Target{Utility: "springfield", Sample: "acme-labs/L2026-00123"}
	other, _ := codes.Code("springfield", "acme-labs", "L2026-00124")
	for name, tc := range map[string]struct {
		target residents.Target
		code   string
		want   residents.RefusalCode
	}{
		"no code":          {sample, "", residents.RefuseHouseholdCode},
		"another sample's": {sample, other, residents.RefuseHouseholdCode},
		"guessed":          {sample, "AAAA-AAAA-AAAA-AAAA", residents.RefuseHouseholdCode},
		"not a sample":     {residents.Target{Utility: "springfield", Sample: "L2026-00123"}, other, residents.RefuseSample},
		"sample and site":  {residents.Target{Utility: "springfield", Site: "elm-st-12", Sample: sample.Sample}, other, residents.RefuseSiteAndArea},
	} {
		_, err := e.n.Subscribe(ctx, residents.SubscribeRequest{Target: tc.target, Channel: residents.ChannelWebhook, Address: rcv.URL + "/x", Code: tc.code})
		var r *residents.Refusal
		if !errors.As(err, &r) || r.Code != tc.want {
			t.Errorf("Subscribe(%s) = %v, want refusal %s", name, err, tc.want)
		}
	}
	if got := refusalCount(t, e, residents.RefuseHouseholdCode); got != 3 {
		t.Errorf("tapproof_subscription_refusals_total{reason=household_code} = %v, want 3", got)
	}
	if all, _ := e.subs.All(ctx); len(all) != 0 {
		t.Errorf("refused requests stored %d subscriptions", len(all))
	}
	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("refused requests sent %d confirmations", n)
	}

	keyless, err := residents.NewSubscriptions(ctx, e.js, residents.SubscriptionsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := codes.Code("springfield", "acme-labs", "L2026-00123")
	var r *residents.Refusal
	if _, _, err := keyless.Subscribe(ctx, residents.SubscribeRequest{Target: sample, Channel: residents.ChannelWebhook, Address: "https://h.example.org/x", Code: good}); !errors.As(err, &r) || r.Code != residents.RefuseHouseholdCode {
		t.Errorf("Subscribe(sample) without a key = %v, want refusal %s", err, residents.RefuseHouseholdCode)
	}
}

// refusalCount is tapproof_subscription_refusals_total{reason=code}.
func refusalCount(t *testing.T, e *notifyEnv, code residents.RefusalCode) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "tapproof_subscription_refusals_total" && m.GetLabel()[0].GetValue() == string(code) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}
