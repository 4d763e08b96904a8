package alerts_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/internal/alertstest"
)

// ids lists the ids of as.
func ids(as []tapproof.Alert) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

// TestOpenAlertsNotAWindow: two open lab-result alerts of one utility stay
// open through 1,200 messages of a flapping device of another utility, more
// than any window over the stream (MaxRecent) would hold.
func TestOpenAlertsNotAWindow(t *testing.T) {
	js := alertstest.JetStream(t)
	s := alertstest.Store(t, js, nil)
	ctx := context.Background()
	t0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	lab := func(i uint64) tapproof.Alert {
		return tapproof.Alert{ID: tapproof.IndividualAlertID("utility-1", "acme", i), Class: tapproof.IndividualCompliance,
			Utility: "utility-1", Site: "site-1", Device: tapproof.LabDevice("utility-1", "acme"), Seq: i, Sample: fmt.Sprintf("acme/S%d", i),
			Analyte: tapproof.Lead, Value: 26, Unit: tapproof.MicrogramsPerLiter, Level: 15, RaisedAt: t0}
	}
	alertstest.Publish(t, s, lab(1), lab(2))
	var noise []tapproof.Alert
	for i := range uint64(600) {
		a := alertstest.Alert(i + 1)
		a.Utility, a.Device = "utility-2", "flappy"
		a.ID = tapproof.AlertID(tapproof.Screening, "flappy", 2*i+1)
		a.RaisedAt = t0.Add(time.Duration(i+1) * time.Second)
		c := a
		c.ID, c.MsgType, c.Status = "clear-"+a.ID, tapproof.CancelMsg, tapproof.AlertCleared
		c.References = []tapproof.AlertRef{a.Ref()}
		noise = append(noise, a, c)
	}
	alertstest.Publish(t, s, noise...)

	got, err := s.OpenAlerts(ctx, "utility-1", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{lab(1).ID, lab(2).ID}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("OpenAlerts(utility-1) after 1,200 other messages (-want +got):\n%s", diff)
	}
	if all, err := s.OpenAlerts(ctx, "", ""); err != nil || len(all) != 2 {
		t.Errorf("OpenAlerts(all) = %v, %v; want the two lab alerts", ids(all), err)
	}
	// The window the pages used before: the lab alerts are gone from it.
	recent, err := s.Recent(ctx, alerts.MaxRecent)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(alerts.Open(recent)); n != 0 {
		t.Fatalf("open alerts in the newest %d messages = %d; the test no longer shows the window's flaw", alerts.MaxRecent, n)
	}
}

// TestOpenAlertsLifecycle: an alert is open from its Alert, carried by its
// newest Update, closed by its Cancel; a replayed older message changes
// nothing; system alerts show at every site of their utility.
func TestOpenAlertsLifecycle(t *testing.T) {
	js := alertstest.JetStream(t)
	s := alertstest.Store(t, js, nil)
	ctx := context.Background()
	a := alertstest.Alert(1)
	u := alertstest.Alert(2)
	u.ID, u.MsgType, u.References = "update-"+a.ID, tapproof.UpdateMsg, []tapproof.AlertRef{a.Ref()}
	c := alertstest.Alert(3)
	c.ID, c.MsgType, c.Status, c.References = "clear-"+a.ID, tapproof.CancelMsg, tapproof.AlertCleared, []tapproof.AlertRef{a.Ref(), u.Ref()}
	sys := tapproof.Alert{ID: tapproof.SystemExceedanceID("springfield", tapproof.Lead, "2026H1"), Class: tapproof.SystemExceedance,
		Utility: "springfield", Analyte: tapproof.Lead, Value: 17, Unit: tapproof.MicrogramsPerLiter, Level: 15, RaisedAt: a.RaisedAt}
	other := alertstest.Alert(4)
	other.Site, other.ID = "oak-ave-1", "screening-asv-9-4"

	open := func(utility, site string) []string {
		t.Helper()
		got, err := s.OpenAlerts(ctx, utility, site)
		if err != nil {
			t.Fatal(err)
		}
		return ids(got)
	}
	alertstest.Publish(t, s, a, sys, other)
	if diff := cmp.Diff([]string{other.ID, a.ID, sys.ID}, open("springfield", "")); diff != "" {
		t.Errorf("open (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{a.ID, sys.ID}, open("springfield", "elm-st-12")); diff != "" {
		t.Errorf("open at elm-st-12, with the system's (-want +got):\n%s", diff)
	}
	alertstest.Publish(t, s, u, a) // the update, then a replay of the alert
	got, _ := s.OpenAlerts(ctx, "springfield", "elm-st-12")
	if len(got) != 2 || got[0].ID != u.ID {
		t.Errorf("open after an update and a replayed alert = %v, want the update first", ids(got))
	}
	alertstest.Publish(t, s, c)
	if diff := cmp.Diff([]string{sys.ID}, open("springfield", "elm-st-12")); diff != "" {
		t.Errorf("open after the all-clear (-want +got):\n%s", diff)
	}
	if _, err := s.OpenAlerts(ctx, "spring*", ""); err == nil {
		t.Error("OpenAlerts with a wildcard utility = nil error")
	}
}

// TestOpenAlertsRebuilt: a store opened on an alert stream kept before the
// bucket existed fills it from the stream.
func TestOpenAlertsRebuilt(t *testing.T) {
	js := alertstest.JetStream(t)
	ctx := context.Background()
	s := alertstest.Store(t, js, nil)
	a, b := alertstest.Alert(1), alertstest.Alert(2)
	c := alertstest.Alert(3)
	c.ID, c.MsgType, c.Status, c.References = "clear-"+a.ID, tapproof.CancelMsg, tapproof.AlertCleared, []tapproof.AlertRef{a.Ref()}
	alertstest.Publish(t, s, a, b, c)
	if err := js.DeleteKeyValue(ctx, alerts.OpenBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := js.KeyValue(ctx, alerts.OpenBucket); err != jetstream.ErrBucketNotFound {
		t.Fatalf("bucket after delete: %v", err)
	}
	s2 := alertstest.Store(t, js, nil)
	got, err := s2.OpenAlerts(ctx, "springfield", "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{b.ID}, ids(got)); diff != "" {
		t.Errorf("open after rebuild (-want +got):\n%s", diff)
	}
}
