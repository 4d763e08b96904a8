package alerts_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/internal/alertstest"
)

// device returns a sensor at elm-st-12 with its own id.
type device struct {
	id  string
	seq uint64
}

func (d *device) read(v float64) tapproof.Reading {
	d.seq++
	r := lead(v)
	r.Device, r.Seq, r.SampledAt, r.DetectionLimit = d.id, d.seq, time.Now(), 0
	return r
}

// TestScreenerPerDevice: a second device at the same site, reading low,
// neither clears the first device's alert nor abandons its pending
// exceedance; each device's alert is its own.
func TestScreenerPerDevice(t *testing.T) {
	tests := []struct {
		name string
		cfg  alerts.ScreenerConfig
		want []string
	}{
		{
			name: "immediate: the control sensor's 1 ppb clears nothing",
			// real reads 24 at 0, 1, 2, 3 min; control reads 1 right after
			// each; real recovers at 4 min.
			want: []string{
				"Alert screening-real-1",
				"suppressed suppressed-screening-real-2", "suppressed suppressed-screening-real-3",
				"suppressed suppressed-screening-real-4",
				"Cancel clear-screening-real-5",
			},
		},
		{
			name: "pending 2 minutes: the control sensor's 1 ppb abandons nothing",
			cfg:  alerts.ScreenerConfig{Pending: 2 * time.Minute},
			want: []string{
				"Alert screening-real-3",
				"suppressed suppressed-screening-real-4",
				"Cancel clear-screening-real-5",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pub := &memPublisher{}
				s := newScreener(t, tt.cfg, pub, newMemStates(), nil)
				real, control := &device{id: "real"}, &device{id: "control"}
				for i, v := range []float64{24, 24, 24, 24, 2} {
					if i > 0 {
						time.Sleep(time.Minute)
					}
					for _, r := range []tapproof.Reading{real.read(v), control.read(1)} {
						if err := s.Check(t.Context(), r); err != nil {
							t.Fatal(err)
						}
					}
				}
				if diff := cmp.Diff(tt.want, pub.kinds()); diff != "" {
					t.Errorf("published (-want +got):\n%s", diff)
				}
			})
		})
	}

	t.Run("two devices, two alerts, each cleared by its own device", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			pub := &memPublisher{}
			s := newScreener(t, alerts.ScreenerConfig{}, pub, newMemStates(), nil)
			a, b := &device{id: "a"}, &device{id: "b"}
			for _, r := range []tapproof.Reading{a.read(20), b.read(30), a.read(2), b.read(31)} {
				time.Sleep(time.Minute)
				if err := s.Check(t.Context(), r); err != nil {
					t.Fatal(err)
				}
			}
			want := []string{"Alert screening-a-1", "Alert screening-b-1", "Cancel clear-screening-a-2", "suppressed suppressed-screening-b-2"}
			if diff := cmp.Diff(want, pub.kinds()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
		})
	})
}

// TestScreenerFlapping: a device alternating 30 and 1 ppb for 520 readings
// raises its alert FlapCount times, and then keeps one alert open, with no
// further message on the alert stream, until it has read low for the flap
// window; then one all-clear.
func TestScreenerFlapping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &memPublisher{}
		s := newScreener(t, alerts.ScreenerConfig{}, pub, newMemStates(), nil)
		d := &device{id: "flappy"}
		for i := range 520 {
			v := 30.0
			if i%2 == 1 {
				v = 1
			}
			time.Sleep(10 * time.Second)
			if err := s.Check(t.Context(), d.read(v)); err != nil {
				t.Fatal(err)
			}
		}
		var shown []tapproof.Alert
		var kinds []string
		for _, a := range pub.msgs {
			if a.State() != tapproof.AlertSuppressed {
				shown = append(shown, a)
				kinds = append(kinds, string(a.Type())+" "+a.ID)
			}
		}
		want := []string{
			"Alert screening-flappy-1", "Cancel clear-screening-flappy-2",
			"Alert screening-flappy-3", "Cancel clear-screening-flappy-4",
			"Alert screening-flappy-5",
		}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Errorf("alert stream after 520 flapping readings (-want +got):\n%s", diff)
		}
		if open := alerts.Open(shown); len(open) != 1 || open[0].ID != "screening-flappy-5" {
			t.Errorf("open alerts = %v, want screening-flappy-5 alone", open)
		}
		st, err := s.State(t.Context(), "springfield", "elm-st-12", "flappy", tapproof.Lead)
		if err != nil || !st.Flapping {
			t.Errorf("State = %+v, %v; want flapping", st, err)
		}

		// Low for less than the flap window keeps it open; then it clears.
		for range 59 {
			time.Sleep(time.Minute)
			if err := s.Check(t.Context(), d.read(1)); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(pub.kinds()); pub.msgs[n-1].Type() == tapproof.CancelMsg {
			t.Fatalf("cleared after less than the flap window of low readings")
		}
		time.Sleep(2 * time.Minute)
		if err := s.Check(t.Context(), d.read(1)); err != nil {
			t.Fatal(err)
		}
		last := pub.msgs[len(pub.msgs)-1]
		if last.Type() != tapproof.CancelMsg || last.References[0].ID != "screening-flappy-5" {
			t.Errorf("after an hour of low readings, last message = %s %s, want the all-clear of screening-flappy-5", last.Type(), last.ID)
		}
		if st, _ := s.State(t.Context(), "springfield", "elm-st-12", "flappy", tapproof.Lead); st.Flapping || st.Phase != alerts.PhaseNormal {
			t.Errorf("State after the all-clear = %+v, want normal, not flapping", st)
		}
	})
}

// TestScreenerAdoptsSiteState: state kept per site by an earlier version
// with an open alert is taken over by the device that raised it, which
// then clears it; another device at the site starts afresh.
func TestScreenerAdoptsSiteState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		states := newMemStates()
		open := tapproof.Alert{ID: "screening-real-7", Class: tapproof.Screening, Utility: "springfield", Site: "elm-st-12",
			Device: "real", Seq: 7, Analyte: tapproof.Lead, Value: 24, Level: 15, RaisedAt: time.Now()}
		legacy := alerts.ScreeningState{Phase: alerts.PhaseOpen, Open: &open, Refs: []tapproof.AlertRef{open.Ref()},
			Reported: 24, Seen: map[string]uint64{"real": 7, "control": 3}}
		if _, err := states.Save(t.Context(), "springfield.elm-st-12.lead", legacy, 0); err != nil {
			t.Fatal(err)
		}
		pub := &memPublisher{}
		s := newScreener(t, alerts.ScreenerConfig{}, pub, states, nil)
		control, real := &device{id: "control", seq: 3}, &device{id: "real", seq: 7}
		for _, r := range []tapproof.Reading{control.read(1), real.read(2)} {
			time.Sleep(time.Minute)
			if err := s.Check(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"Cancel clear-screening-real-8"}
		if diff := cmp.Diff(want, pub.kinds()); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}
	})
}

// TestScreeningAttacksOnJetStream runs two attacks of issue 20 on the real
// Store and screening bucket: a second device at the site answering each
// high reading of the real sensor with 1 ppb, and a device of another site
// flapping between 30 and 1 ppb 520 times. The real sensor's alert stays
// open, one alert among the open ones, and the flapping device has one
// open alert and five messages on the alert stream, not one per reading.
func TestScreeningAttacksOnJetStream(t *testing.T) {
	js := alertstest.JetStream(t)
	ctx := context.Background()
	store := alertstest.Store(t, js, nil)
	kv, err := alerts.NewScreeningKV(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	s, err := alerts.NewScreener(alerts.NewEvaluator(tapproof.RuleBook{}), store, kv, alerts.ScreenerConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	read := func(device, site string, seq uint64, v float64) tapproof.Reading {
		r := lead(v)
		r.Device, r.Site, r.Seq, r.SampledAt = device, site, seq, base.Add(time.Duration(seq)*10*time.Second)
		return r
	}
	for i := range uint64(5) {
		for _, r := range []tapproof.Reading{read("real", "elm-st-12", i+1, 24), read("control", "elm-st-12", i+1, 1)} {
			if err := s.Check(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range uint64(520) {
		v := 30.0
		if i%2 == 1 {
			v = 1
		}
		if err := s.Check(ctx, read("flappy", "oak-ave-3", i+1, v)); err != nil {
			t.Fatal(err)
		}
	}
	open, err := store.OpenAlerts(ctx, "springfield", "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"screening-flappy-5", "screening-real-1"}, ids(open)); diff != "" {
		t.Errorf("open alerts (-want +got):\n%s", diff)
	}
	msgs, err := store.Recent(ctx, alerts.MaxRecent)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range msgs {
		if a.Device == "flappy" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("the flapping device put %d messages on the alert stream, want 5 (three alerts, two all-clears)", n)
	}
}
