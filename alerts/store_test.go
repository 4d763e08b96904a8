package alerts_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/internal/alertstest"
)

func TestStorePublishOnce(t *testing.T) {
	js := alertstest.JetStream(t)
	reg := prometheus.NewPedanticRegistry()
	s := alertstest.Store(t, js, alerts.NewMetrics(reg))

	a := alertstest.Alert(1)
	alertstest.Publish(t, s, a, a)
	// A redelivered reading is evaluated again later: same id, new RaisedAt.
	again := a
	again.RaisedAt = again.RaisedAt.Add(1e9)
	alertstest.Publish(t, s, again)

	if n := streamMsgs(t, js); n != 1 {
		t.Errorf("stream holds %d messages after publishing one alert three times, want 1", n)
	}
	got, err := s.Recent(context.Background(), 10)
	if err != nil {
		t.Fatalf("Recent: %v", err)
	}
	if diff := cmp.Diff([]tapproof.Alert{a}, got); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}
	want := `
# HELP tapproof_alerts_raised_total Alerts stored for the first time, by class.
# TYPE tapproof_alerts_raised_total counter
tapproof_alerts_raised_total{class="individual_compliance"} 0
tapproof_alerts_raised_total{class="screening"} 1
tapproof_alerts_raised_total{class="system_exceedance"} 0
tapproof_alerts_raised_total{class="system_undetermined"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tapproof_alerts_raised_total"); err != nil {
		t.Error(err)
	}
}

func TestStoreRecent(t *testing.T) {
	js := alertstest.JetStream(t)
	s := alertstest.Store(t, js, nil)
	ctx := context.Background()

	if got, err := s.Recent(ctx, 10); err != nil || len(got) != 0 {
		t.Errorf("Recent on empty stream = %v, %v; want none", got, err)
	}
	var all []tapproof.Alert
	for seq := uint64(1); seq <= 5; seq++ {
		all = append(all, alertstest.Alert(seq))
	}
	alertstest.Publish(t, s, all...)

	tests := []struct {
		limit int
		want  []tapproof.Alert
	}{
		{3, []tapproof.Alert{all[4], all[3], all[2]}},
		{10, []tapproof.Alert{all[4], all[3], all[2], all[1], all[0]}},
		{1, []tapproof.Alert{all[4]}},
		{0, nil},
		{-1, nil},
	}
	for _, tt := range tests {
		got, err := s.Recent(ctx, tt.limit)
		if err != nil {
			t.Fatalf("Recent(%d): %v", tt.limit, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Recent(%d) (-want +got):\n%s", tt.limit, diff)
		}
	}

	// A deleted alert is skipped, not an error.
	st, err := js.Stream(ctx, alerts.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 4); err != nil {
		t.Fatal(err)
	}
	got, err := s.Recent(ctx, 3)
	if err != nil {
		t.Fatalf("Recent after delete: %v", err)
	}
	if diff := cmp.Diff([]tapproof.Alert{all[4], all[2], all[1]}, got); diff != "" {
		t.Errorf("Recent(3) after deleting seq 4 (-want +got):\n%s", diff)
	}
}

func TestStoreSubjects(t *testing.T) {
	js := alertstest.JetStream(t)
	s := alertstest.Store(t, js, nil)
	ctx := context.Background()
	site := alertstest.Alert(1)
	system := alertstest.Alert(2)
	system.Class, system.Site, system.Device = tapproof.SystemExceedance, "", ""
	system.ID = "system_exceedance-springfield-2026h1"
	alertstest.Publish(t, s, site, system)

	st, err := js.Stream(ctx, alerts.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for seq, want := range map[uint64]string{1: "tapproof.alerts.springfield.elm-st-12", 2: "tapproof.alerts.springfield._"} {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != want {
			t.Errorf("message %d subject = %q, want %q", seq, m.Subject, want)
		}
		if got := m.Header.Get("Nats-Msg-Id"); got == "" {
			t.Errorf("message %d has no Nats-Msg-Id", seq)
		}
	}
}

func TestStorePublishRejects(t *testing.T) {
	js := alertstest.JetStream(t)
	s := alertstest.Store(t, js, nil)
	for _, f := range []func(*tapproof.Alert){
		func(a *tapproof.Alert) { a.ID = "" },
		func(a *tapproof.Alert) { a.Utility = "spring.field" },
		func(a *tapproof.Alert) { a.Utility = "" },
		func(a *tapproof.Alert) { a.Site = "elm st" },
	} {
		a := alertstest.Alert(1)
		f(&a)
		if err := s.Publish(context.Background(), a); err == nil {
			t.Errorf("Publish(utility %q site %q id %q) = nil, want error", a.Utility, a.Site, a.ID)
		}
	}
	if n := streamMsgs(t, js); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

func TestNewStoreTwice(t *testing.T) {
	js := alertstest.JetStream(t)
	s1 := alertstest.Store(t, js, nil)
	alertstest.Publish(t, s1, alertstest.Alert(1))
	s2 := alertstest.Store(t, js, nil)
	alertstest.Publish(t, s2, alertstest.Alert(1), alertstest.Alert(2))
	if n := streamMsgs(t, js); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	alerts.NewMetrics(reg)
	alerts.NewMetrics(reg) // a second registration reuses the first
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// TestStoreSetsAsideForeignAlerts: messages on the alert stream that do
// not decode or validate, as someone holding broker credentials could put
// there, are never served, and the alerts around them are.
func TestStoreSetsAsideForeignAlerts(t *testing.T) {
	js := alertstest.JetStream(t)
	reg := prometheus.NewPedanticRegistry()
	s := alertstest.Store(t, js, alerts.NewMetrics(reg))
	ctx := context.Background()
	before, after := alertstest.Alert(1), alertstest.Alert(2)
	alertstest.Publish(t, s, before)
	forged := alertstest.Alert(3)
	forged.Value, forged.Level, forged.Site = 999, 0, ""
	raw, _ := json.Marshal(forged)
	for _, data := range [][]byte{[]byte(`{"id":`), raw} {
		if _, err := js.Publish(ctx, alerts.SubjectPrefix+".u1.s1", data); err != nil {
			t.Fatal(err)
		}
	}
	alertstest.Publish(t, s, after)
	got, err := s.Recent(ctx, 10)
	if err != nil {
		t.Fatalf("Recent: %v", err)
	}
	if diff := cmp.Diff([]tapproof.Alert{after, before}, got); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}
	want := `
# HELP tapproof_alerts_invalid_total Messages on the alert stream that do not decode or validate, by reason (undecodable, invalid): set aside, never shown to the public nor sent to residents.
# TYPE tapproof_alerts_invalid_total counter
tapproof_alerts_invalid_total{reason="invalid"} 1
tapproof_alerts_invalid_total{reason="undecodable"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tapproof_alerts_invalid_total"); err != nil {
		t.Error(err)
	}
}
