package alerts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/internal/alertstest"
)

// memPublisher records what a Screener publishes, absorbing duplicate ids
// like the Store does.
type memPublisher struct {
	mu    sync.Mutex
	msgs  []tapproof.Alert
	seen  map[string]bool
	fail  error // returned (once) by the next call, if set
	calls int
}

func (p *memPublisher) add(a tapproof.Alert) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail != nil {
		err := p.fail
		p.fail = nil
		return err
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if !p.seen[a.ID] {
		p.seen[a.ID] = true
		p.msgs = append(p.msgs, a)
	}
	return nil
}

func (p *memPublisher) Publish(_ context.Context, a tapproof.Alert) error { return p.add(a) }
func (p *memPublisher) RecordSuppression(_ context.Context, a tapproof.Alert) error {
	if a.Status != tapproof.AlertSuppressed {
		return errors.New("not a suppression")
	}
	return p.add(a)
}

// kinds summarises messages as "<msgType|status> <id>".
func (p *memPublisher) kinds() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, a := range p.msgs {
		k := string(a.Type())
		if a.Status == tapproof.AlertSuppressed {
			k = "suppressed"
		}
		out = append(out, k+" "+a.ID)
	}
	return out
}

// memStates keeps screening state in memory, with revisions like a KV.
type memStates struct {
	mu   sync.Mutex
	st   map[string]alerts.ScreeningState
	rev  map[string]uint64
	fail error
}

func newMemStates() *memStates {
	return &memStates{st: map[string]alerts.ScreeningState{}, rev: map[string]uint64{}}
}

func (m *memStates) Load(_ context.Context, key string) (alerts.ScreeningState, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st[key], m.rev[key], nil
}

func (m *memStates) Save(_ context.Context, key string, st alerts.ScreeningState, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		err := m.fail
		m.fail = nil
		return 0, err
	}
	if m.rev[key] != rev {
		return 0, fmt.Errorf("wrong last revision %d, have %d", rev, m.rev[key])
	}
	m.st[key] = st
	m.rev[key]++
	return m.rev[key], nil
}

// sensor returns lead readings of device asv-1 at elm-st-12, sampled now.
type sensor struct{ seq uint64 }

func (s *sensor) read(v float64) tapproof.Reading {
	s.seq++
	r := lead(v)
	r.Seq, r.SampledAt, r.DetectionLimit = s.seq, time.Now(), 0
	return r
}

func newScreener(t *testing.T, cfg alerts.ScreenerConfig, pub alerts.Publisher, st alerts.ScreeningStates, m *alerts.Metrics) *alerts.Screener {
	t.Helper()
	s, err := alerts.NewScreener(alerts.NewEvaluator(tapproof.RuleBook{}), pub, st, cfg, m, nil)
	if err != nil {
		t.Fatalf("NewScreener: %v", err)
	}
	return s
}

// TestScreenerTimeline feeds one reading every 5 minutes of (fake) time and
// checks what each configuration publishes.
func TestScreenerTimeline(t *testing.T) {
	// A spike with noise around the level: 20 ppb for 25 minutes, a dip into
	// the hysteresis band, back up, then recovery.
	spike := []float64{3, 20, 14, 21, 22, 25, 13, 16, 14, 11, 12.5, 10, 9, 3}
	tests := []struct {
		name string
		cfg  alerts.ScreenerConfig
		in   []float64
		want []string // kinds of published messages
	}{
		{
			name: "immediate, dedup, hysteresis, all-clear",
			in:   spike,
			// 20 fires; 14 is in the band (12..15]; 21, 22, 25 suppressed;
			// 13 in band; 16 suppressed; 14 band; 11 clears.
			want: []string{
				"Alert screening-asv-1-2",
				"suppressed suppressed-screening-asv-1-4", "suppressed suppressed-screening-asv-1-5",
				"suppressed suppressed-screening-asv-1-6", "suppressed suppressed-screening-asv-1-8",
				"Cancel clear-screening-asv-1-10",
			},
		},
		{
			name: "pending 10 minutes: a reading in the band resets it",
			cfg:  alerts.ScreenerConfig{Pending: 10 * time.Minute},
			in:   spike,
			// 20 at 5m starts pending; 14 at 10m abandons it; 21 at 15m
			// starts again; 22 at 20m waits; 25 at 25m fires (10m later).
			want: []string{
				"Alert screening-asv-1-6",
				"suppressed suppressed-screening-asv-1-8",
				"Cancel clear-screening-asv-1-10",
			},
		},
		{
			name: "a spike shorter than the pending duration raises nothing",
			cfg:  alerts.ScreenerConfig{Pending: 15 * time.Minute},
			in:   []float64{20, 30, 40, 3, 20, 3},
			want: nil,
		},
		{
			name: "recovery at 50%: 9 ppb is not low enough, 7 is",
			cfg:  alerts.ScreenerConfig{Recovery: 0.5},
			in:   []float64{16, 9, 8, 7.5, 7},
			want: []string{"Alert screening-asv-1-1", "Cancel clear-screening-asv-1-4"},
		},
		{
			name: "clear after 10 minutes: a bounce into the band restarts the wait",
			cfg:  alerts.ScreenerConfig{ClearAfter: 10 * time.Minute},
			in:   []float64{16, 5, 5, 13, 5, 5, 5},
			// 5 at 5m starts recovering; at 10m waits; 13 reopens; 5 at 20m
			// recovers again; at 25m waits; at 30m clears.
			want: []string{"Alert screening-asv-1-1", "Cancel clear-screening-asv-1-7"},
		},
		{
			name: "escalation doubles the peak: an Update, not a suppression",
			in:   []float64{16, 20, 33, 40, 70, 3},
			want: []string{
				"Alert screening-asv-1-1", "suppressed suppressed-screening-asv-1-2",
				"Update update-screening-asv-1-3", "suppressed suppressed-screening-asv-1-4",
				"Update update-screening-asv-1-5", "Cancel clear-screening-asv-1-6",
			},
		},
		{
			name: "escalation disabled",
			cfg:  alerts.ScreenerConfig{Escalation: -1},
			in:   []float64{16, 100, 3},
			want: []string{"Alert screening-asv-1-1", "suppressed suppressed-screening-asv-1-2", "Cancel clear-screening-asv-1-3"},
		},
		{
			name: "exactly the level neither fires nor suppresses",
			in:   []float64{15, 15, 16, 15, 12},
			want: []string{"Alert screening-asv-1-3", "Cancel clear-screening-asv-1-5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pub := &memPublisher{}
				s := newScreener(t, tt.cfg, pub, newMemStates(), nil)
				var sen sensor
				for i, v := range tt.in {
					if i > 0 {
						time.Sleep(5 * time.Minute)
					}
					if err := s.Check(t.Context(), sen.read(v)); err != nil {
						t.Fatalf("Check(%v): %v", v, err)
					}
				}
				if diff := cmp.Diff(tt.want, pub.kinds()); diff != "" {
					t.Errorf("published (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestScreenerMessages checks the content of the alert, a suppression and
// the all-clear: references, times, recovery level.
func TestScreenerMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		pub := &memPublisher{}
		s := newScreener(t, alerts.ScreenerConfig{Pending: 10 * time.Minute}, pub, newMemStates(), nil)
		var sen sensor
		for i, v := range []float64{18, 19, 20, 21, 4} {
			if i > 0 {
				time.Sleep(5 * time.Minute)
			}
			if err := s.Check(t.Context(), sen.read(v)); err != nil {
				t.Fatal(err)
			}
		}
		if len(pub.msgs) != 3 {
			t.Fatalf("published %v, want alert, suppression, all-clear", pub.kinds())
		}
		fired, sup, clear := pub.msgs[0], pub.msgs[1], pub.msgs[2]
		at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
		want := tapproof.Alert{
			ID: "screening-asv-1-3", Class: tapproof.Screening, Utility: "springfield", Site: "elm-st-12",
			Device: "asv-1", Seq: 3, Analyte: tapproof.Lead, Value: 20, Unit: tapproof.MicrogramsPerLiter,
			Level: 15, Rule: "us-lead-lcr@v1", SampledAt: at(10), RaisedAt: at(10),
			MsgType: tapproof.AlertMsg, Status: tapproof.AlertOpen, Recovery: 12, Since: at(0),
		}
		if diff := cmp.Diff(want, fired); diff != "" {
			t.Errorf("alert (-want +got):\n%s", diff)
		}
		ref := []tapproof.AlertRef{{ID: "screening-asv-1-3", RaisedAt: at(10)}}
		if sup.Status != tapproof.AlertSuppressed || sup.Value != 21 || !cmp.Equal(ref, sup.References) || !sup.Since.Equal(at(0)) {
			t.Errorf("suppression = %+v, want status suppressed, value 21, references %v, since %v", sup, ref, at(0))
		}
		if clear.Type() != tapproof.CancelMsg || clear.State() != tapproof.AlertCleared || clear.Value != 4 ||
			!cmp.Equal(ref, clear.References) || !clear.RaisedAt.Equal(at(20)) {
			t.Errorf("all-clear = %+v, want Cancel/cleared, value 4, references %v, raised %v", clear, ref, at(20))
		}
		st, err := s.State(t.Context(), "springfield", "elm-st-12", "asv-1", tapproof.Lead)
		if err != nil || st.Phase != alerts.PhaseNormal || st.Seen["asv-1"] != 5 {
			t.Errorf("State = %+v, %v; want normal with asv-1 seen up to 5", st, err)
		}
	})
}

// TestScreenerRedeliveryAndRestart: a reading redelivered decides nothing
// new; a crash between publishing and saving republishes the same ids; a new
// Screener on the same state carries on where the first stopped.
func TestScreenerRedeliveryAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &memPublisher{}
		states := newMemStates()
		s := newScreener(t, alerts.ScreenerConfig{}, pub, states, nil)
		var sen sensor
		r1 := sen.read(30)
		for range 3 {
			if err := s.Check(t.Context(), r1); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Minute)
		r2 := sen.read(31)
		states.fail = errors.New("kv down") // published, not saved
		if err := s.Check(t.Context(), r2); err == nil {
			t.Fatal("Check with a failing state store = nil, want error")
		}
		if err := s.Check(t.Context(), r2); err != nil { // redelivered
			t.Fatal(err)
		}
		// Publishing fails: nothing is saved, the redelivery publishes.
		time.Sleep(time.Minute)
		r3 := sen.read(2)
		pub.fail = errors.New("nats down")
		if err := s.Check(t.Context(), r3); err == nil {
			t.Fatal("Check with a failing publisher = nil, want error")
		}
		// A restart: a new Screener loads the state.
		s2 := newScreener(t, alerts.ScreenerConfig{}, pub, states, nil)
		if err := s2.Check(t.Context(), r2); err != nil {
			t.Fatal(err)
		}
		if err := s2.Check(t.Context(), r3); err != nil {
			t.Fatal(err)
		}
		want := []string{"Alert screening-asv-1-1", "suppressed suppressed-screening-asv-1-2", "Cancel clear-screening-asv-1-3"}
		if diff := cmp.Diff(want, pub.kinds()); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}
	})
}

// TestScreenerComplianceNeverSuppressed: lab results raise an alert every
// time, even while a screening alert is open, and never touch its state.
func TestScreenerComplianceNeverSuppressed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &memPublisher{}
		reg := prometheus.NewPedanticRegistry()
		s := newScreener(t, alerts.ScreenerConfig{Pending: time.Hour}, pub, newMemStates(), alerts.NewMetrics(reg))
		r := lead(0)
		for i, v := range []float64{40, 50, 16, 3} {
			sample := tapproof.LabSample{
				Lab: "acme-labs", SampleID: fmt.Sprint("S", i), Utility: r.Utility, Site: r.Site, Tier: 1, Liter: tapproof.FirstLiter,
				Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1,
				CollectedAt: time.Now(), AnalyzedAt: time.Now(), Period: "2026H2",
			}
			if err := s.CheckSample(t.Context(), sample, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Minute)
		}
		var want []string
		for i := range 3 {
			want = append(want, "Alert "+tapproof.IndividualAlertID(r.Utility, "acme-labs", uint64(i+1)))
		}
		if diff := cmp.Diff(want, pub.kinds()); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}
		st, _ := s.State(t.Context(), "springfield", "elm-st-12", tapproof.LabDevice(r.Utility, "acme-labs"), tapproof.Lead)
		if st.Phase != alerts.PhaseNormal {
			t.Errorf("screening phase after lab results = %q, want normal", st.Phase)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tapproof_alerts_raised_total Alerts stored for the first time, by class.
# TYPE tapproof_alerts_raised_total counter
tapproof_alerts_raised_total{class="individual_compliance"} 0
tapproof_alerts_raised_total{class="screening"} 0
tapproof_alerts_raised_total{class="system_exceedance"} 0
tapproof_alerts_raised_total{class="system_undetermined"} 0
`), "tapproof_alerts_raised_total"); err != nil {
			t.Error(err) // counted by the Store, not the Screener
		}
	})
}

func TestScreenerMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		s := newScreener(t, alerts.ScreenerConfig{Pending: time.Minute}, &memPublisher{}, newMemStates(), alerts.NewMetrics(reg))
		var sen sensor
		for _, v := range []float64{20, 3, 20, 20, 20, 3} {
			if err := s.Check(t.Context(), sen.read(v)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Minute)
		}
		want := `
# HELP tapproof_screening_events_total Screening state machine events, by event (pending, fired, updated, suppressed, recovering, cleared, abandoned, flapping).
# TYPE tapproof_screening_events_total counter
tapproof_screening_events_total{event="abandoned"} 1
tapproof_screening_events_total{event="cleared"} 1
tapproof_screening_events_total{event="fired"} 1
tapproof_screening_events_total{event="flapping"} 0
tapproof_screening_events_total{event="pending"} 2
tapproof_screening_events_total{event="recovering"} 0
tapproof_screening_events_total{event="suppressed"} 1
tapproof_screening_events_total{event="updated"} 0
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tapproof_screening_events_total"); err != nil {
			t.Error(err)
		}
	})
}

func TestScreenerConfigValidate(t *testing.T) {
	tests := []struct {
		cfg alerts.ScreenerConfig
		ok  bool
	}{
		{alerts.ScreenerConfig{}, true},
		{alerts.ScreenerConfig{Recovery: 1, Pending: time.Hour, ClearAfter: time.Hour, Escalation: 3}, true},
		{alerts.ScreenerConfig{Recovery: 1.2}, false},
		{alerts.ScreenerConfig{Recovery: -0.1}, false},
		{alerts.ScreenerConfig{Pending: -time.Second}, false},
		{alerts.ScreenerConfig{ClearAfter: -time.Second}, false},
		{alerts.ScreenerConfig{Escalation: 1}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tt.cfg, err, tt.ok)
		}
	}
}

// TestScreenerOnJetStream runs the Screener on the real Store and KV: one
// spike, one alert, one all-clear, suppressions on their own stream, and
// the state surviving a new Screener.
func TestScreenerOnJetStream(t *testing.T) {
	js := alertstest.JetStream(t)
	ctx := context.Background()
	store := alertstest.Store(t, js, nil)
	kv, err := alerts.NewScreeningKV(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	eval := alerts.NewEvaluator(tapproof.RuleBook{})
	s, err := alerts.NewScreener(eval, store, kv, alerts.ScreenerConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	read := func(seq uint64, v float64) tapproof.Reading {
		r := lead(v)
		r.Seq, r.SampledAt = seq, base.Add(time.Duration(seq)*time.Minute)
		return r
	}
	for _, r := range []tapproof.Reading{read(1, 20), read(2, 25), read(3, 30)} {
		if err := s.Check(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Restart, then the redelivery of reading 3 and the recovery.
	s2, err := alerts.NewScreener(eval, store, kv, alerts.ScreenerConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []tapproof.Reading{read(3, 30), read(4, 2)} {
		if err := s2.Check(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := store.Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range got {
		kinds = append(kinds, string(a.Type())+" "+a.ID)
	}
	if diff := cmp.Diff([]string{"Cancel clear-screening-asv-1-4", "Alert screening-asv-1-1"}, kinds); diff != "" {
		t.Errorf("alert stream, newest first (-want +got):\n%s", diff)
	}
	sups, err := store.Suppressions(ctx, "springfield", "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range sups {
		ids = append(ids, a.ID)
	}
	if diff := cmp.Diff([]string{"suppressed-screening-asv-1-2", "suppressed-screening-asv-1-3"}, ids); diff != "" {
		t.Errorf("suppressions (-want +got):\n%s", diff)
	}
	if a, ok, err := store.Get(ctx, "clear-screening-asv-1-4"); err != nil || !ok || a.References[0].ID != "screening-asv-1-1" {
		t.Errorf("Get(all-clear) = %+v, %v, %v; want it, referencing screening-asv-1-1", a, ok, err)
	}
	if _, ok, err := store.Get(ctx, "nope"); err != nil || ok {
		t.Errorf("Get(nope) = _, %v, %v; want not found", ok, err)
	}
	if open := alerts.Open(got); len(open) != 0 {
		t.Errorf("Open after the all-clear = %v, want none", open)
	}
}

func TestOpen(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	msg := func(id string, mt tapproof.MsgType, min int, refs ...string) tapproof.Alert {
		a := tapproof.Alert{ID: id, MsgType: mt, RaisedAt: t0.Add(time.Duration(min) * time.Minute)}
		for _, r := range refs {
			a.References = append(a.References, tapproof.AlertRef{ID: r})
		}
		return a
	}
	tests := []struct {
		name string
		in   []tapproof.Alert
		want []string
	}{
		{"none", nil, []string{}},
		{"one open", []tapproof.Alert{msg("a", "", 1)}, []string{"a"}},
		{"cancelled", []tapproof.Alert{msg("c", tapproof.CancelMsg, 2, "a"), msg("a", "", 1)}, []string{}},
		{"update replaces", []tapproof.Alert{msg("a", tapproof.AlertMsg, 1), msg("u", tapproof.UpdateMsg, 2, "a"), msg("b", "", 3)}, []string{"b", "u"}},
		{"update then cancel", []tapproof.Alert{msg("a", "", 1), msg("u", tapproof.UpdateMsg, 2, "a"), msg("c", tapproof.CancelMsg, 3, "a", "u")}, []string{}},
	}
	for _, tt := range tests {
		var got []string
		for _, a := range alerts.Open(tt.in) {
			got = append(got, a.ID)
		}
		if got == nil {
			got = []string{}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Open(%s) (-want +got):\n%s", tt.name, diff)
		}
	}
}
