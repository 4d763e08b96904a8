package public_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/internal/alertstest"
)

// TestOpenAlertsOutlastOtherTraffic: an open alert stays on the index, its
// site's page and the Atom feed however many messages another utility's
// flapping device adds to the alert stream (the pages once decided what
// was open from the newest 500 messages, which 520 readings of one device
// emptied).
func TestOpenAlertsOutlastOtherTraffic(t *testing.T) {
	e := newUnitEnv(t)
	open := alertAt(1, 24)
	alertstest.Publish(t, e.store, open)
	for i := range uint64(300) {
		a := alertAt(2*i+2, 30)
		a.Utility, a.Site, a.Device = "shelbyville", "main-st-1", "flappy"
		a.ID = tapproof.AlertID(tapproof.Screening, "flappy", a.Seq)
		a.RaisedAt = a.RaisedAt.Add(time.Duration(i) * time.Second)
		c := a
		c.ID, c.MsgType, c.Status, c.References = "clear-"+a.ID, tapproof.CancelMsg, tapproof.AlertCleared, []tapproof.AlertRef{a.Ref()}
		alertstest.Publish(t, e.store, a, c)
	}
	for _, path := range []string{"/", "/sites/springfield", "/sites/springfield/elm-st-12"} {
		if _, body := e.do(t, "GET", path, ""); !strings.Contains(body, `data-alert="`+open.ID+`"`) {
			t.Errorf("GET %s after 600 messages of another utility does not show open alert %s:\n%s", path, open.ID, body)
		}
	}
	if _, body := e.do(t, "GET", "/v1/alerts/feed.atom", ""); !strings.Contains(body, "/v1/alerts/"+open.ID+"/cap.xml") {
		t.Errorf("Atom feed lacks open alert %s", open.ID)
	}
}

// TestUndeterminedPeriodPublic: a period that the samples leave
// undetermined is said on the pages (never as fine) and in the feed, in
// both languages.
func TestUndeterminedPeriodPublic(t *testing.T) {
	e := newUnitEnv(t)
	a := alertAt(1, 14)
	a.ID, a.Class, a.Site, a.Device, a.Seq = tapproof.SystemUndeterminedID("springfield", tapproof.Lead, "2026H1", 40), tapproof.SystemUndetermined, "", "", 0
	a.Upper = 17
	alertstest.Publish(t, e.store, a)
	for lang, want := range map[string]string{
		"en": "lead compliance is not yet decided: its latest compliance testing puts the 90th percentile between 14 µg/L",
		"es": "El cumplimiento de springfield para el plomo aún no está decidido",
	} {
		_, body := e.do(t, "GET", "/sites/springfield/elm-st-12?lang="+lang, "")
		if !strings.Contains(body, `data-status="undetermined"`) || !strings.Contains(body, want) || !strings.Contains(body, `data-kind="undetermined"`) {
			t.Errorf("site page in %s does not say the period is undetermined (%q):\n%s", lang, want, body)
		}
	}
	_, body := e.do(t, "GET", "/v1/alerts/feed.atom", "")
	if want := "90th percentile between 14 and 17 ug/L in the springfield water system, undetermined"; !strings.Contains(body, want) {
		t.Errorf("feed lacks %q:\n%s", want, body)
	}
}
