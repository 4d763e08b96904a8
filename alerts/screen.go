package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// Screening defaults, used where a ScreenerConfig field is zero.
const (
	// DefaultRecovery is the fraction of the level at or below which an
	// open screening alert clears: 80% of 15 ppb is 12 ppb.
	DefaultRecovery = 0.8
	// DefaultEscalation is the factor by which a value must exceed the
	// value last reported by the open alert to publish an Update rather than be
	// suppressed.
	DefaultEscalation = 2.0
	// DefaultFlapCount is how many times a device's screening alert may
	// fire within the flap window before the device is flapping.
	DefaultFlapCount = 3
	// DefaultFlapWindow is the window, in sampled time, in which
	// DefaultFlapCount firings make a device flapping, and how long a
	// flapping device's values must stay at or below recovery before its
	// alert clears.
	DefaultFlapWindow = time.Hour
)

// logKeyAlert is the log attribute key of an alert's id.
const logKeyAlert = "alert_id"

// ScreeningBucket is the JetStream key-value bucket that keeps screening
// state, one key per utility, site, device and analyte.
const ScreeningBucket = "tapproof_screening"

// Screening events, the values of the event label of
// tapproof_screening_events_total.
const (
	EventPending    = "pending"    // an exceedance started its pending duration
	EventFired      = "fired"      // a screening alert was raised
	EventUpdated    = "updated"    // an open alert escalated (CAP Update)
	EventSuppressed = "suppressed" // a further exceedance was recorded, not alerted
	EventRecovering = "recovering" // a value fell to the recovery level; clearing waits
	EventCleared    = "cleared"    // the all-clear (CAP Cancel)
	EventAbandoned  = "abandoned"  // a pending exceedance ended before firing
	EventFlapping   = "flapping"   // a device fired too often: its alert stays open, nothing published
)

var screeningEvents = []string{EventPending, EventFired, EventUpdated, EventSuppressed, EventRecovering, EventCleared, EventAbandoned, EventFlapping}

// Phase is where a device's screening for one analyte stands.
type Phase string

// Screening phases. The zero Phase is PhaseNormal.
const (
	PhaseNormal     Phase = ""           // no exceedance
	PhasePending    Phase = "pending"    // exceeding, waiting out the pending duration
	PhaseOpen       Phase = "open"       // an alert is open
	PhaseRecovering Phase = "recovering" // open, values at or below recovery, waiting to clear
)

// ScreeningState is the state of screening for one device and analyte:
// a sensor's alert is raised, escalated and cleared by that sensor's own
// readings only, so no other device can clear or hold back its alert. A
// site's status combines its devices' open alerts. Durations are measured
// in sampled time, so that a device that uploads an hour of buffered
// readings at once is judged as if they had arrived live, and a
// redelivered reading is decided the same way again.
type ScreeningState struct {
	Phase Phase `json:"phase,omitempty"`
	// Since is the sampled time of the first exceeding reading (pending)
	// or of the first reading at or below recovery (recovering).
	Since time.Time `json:"since,omitzero"`
	// Open is the newest message of the open alert (its Alert or Update).
	Open *tapproof.Alert `json:"open,omitempty"`
	// Refs are all messages of the open alert, oldest first.
	Refs []tapproof.AlertRef `json:"refs,omitempty"`
	// Reported is the value of the open alert's newest message (its Alert
	// or Update), what residents were last told; escalation is measured
	// from it.
	Reported float64 `json:"reported,omitempty"`
	// Suppressed counts the exceedances suppressed while the alert is open.
	Suppressed int `json:"suppressed,omitempty"`
	// Seen is, per device, the highest sequence number that changed this
	// state. A reading at or below it is a redelivery and decides nothing.
	Seen map[string]uint64 `json:"seen,omitempty"`
	// Fires are the sampled times of the device's latest firings, at most
	// FlapCount of them, kept across all-clears to recognise flapping.
	Fires []time.Time `json:"fires,omitempty"`
	// Flapping says the open alert's device fired FlapCount times within
	// FlapWindow: the alert stays open until its values have stayed at or
	// below recovery for FlapWindow.
	Flapping bool `json:"flapping,omitempty"`
}

// ScreeningStates keeps ScreeningState durably. Save must fail if the key's
// revision is no longer rev (0: the key must not exist). *ScreeningKV is
// the JetStream implementation.
type ScreeningStates interface {
	Load(ctx context.Context, key string) (st ScreeningState, rev uint64, err error)
	Save(ctx context.Context, key string, st ScreeningState, rev uint64) (uint64, error)
}

// Publisher stores alert messages. *Store implements it.
type Publisher interface {
	// Publish stores an alert, update or all-clear, once per ID.
	Publish(ctx context.Context, a tapproof.Alert) error
	// RecordSuppression stores a suppression event, once per ID.
	RecordSuppression(ctx context.Context, a tapproof.Alert) error
}

// ScreenerConfig configures a Screener. Zero values take the defaults.
type ScreenerConfig struct {
	// Recovery is the fraction of the level at or below which an open
	// screening alert clears (hysteresis); DefaultRecovery if zero. Values
	// between the recovery level and the level keep the alert open.
	Recovery float64
	// Pending is how long (in sampled time) an exceedance must persist,
	// from its first exceeding reading to an exceeding reading at least
	// Pending later, before the alert fires. Zero fires on the first.
	Pending time.Duration
	// ClearAfter is how long values must stay at or below the recovery
	// level before the all-clear. Zero clears on the first such reading.
	ClearAfter time.Duration
	// Escalation is the factor above the open alert's last reported value at
	// which a further exceedance publishes an Update instead of being
	// suppressed; DefaultEscalation if zero, never if negative.
	Escalation float64
	// FlapCount is how many firings of one device's alert within
	// FlapWindow make it flapping: instead of its next all-clear, the
	// alert stays open, with no message, until the device's values have
	// stayed at or below recovery for FlapWindow (or ClearAfter, if
	// longer). DefaultFlapCount if zero; never if negative.
	FlapCount int
	// FlapWindow is the window of FlapCount; DefaultFlapWindow if zero.
	FlapWindow time.Duration
	// Now is the clock that stamps RaisedAt; time.Now if nil.
	Now func() time.Time
}

// Validate reports whether c is usable.
func (c ScreenerConfig) Validate() error {
	switch {
	case c.Recovery < 0 || c.Recovery > 1:
		return fmt.Errorf("screening recovery %g must be a fraction of the level in (0, 1]", c.Recovery)
	case c.Pending < 0 || c.ClearAfter < 0:
		return errors.New("screening pending and clear-after durations must not be negative")
	case c.Escalation > 0 && c.Escalation <= 1:
		return fmt.Errorf("screening escalation factor %g must be above 1", c.Escalation)
	case c.FlapCount == 1:
		return errors.New("screening flap count must be at least 2: one firing is not flapping")
	case c.FlapWindow < 0:
		return errors.New("screening flap window must not be negative")
	}
	return nil
}

func (c ScreenerConfig) withDefaults() ScreenerConfig {
	if c.Recovery == 0 {
		c.Recovery = DefaultRecovery
	}
	if c.Escalation == 0 {
		c.Escalation = DefaultEscalation
	}
	if c.FlapCount == 0 {
		c.FlapCount = DefaultFlapCount
	}
	if c.FlapWindow == 0 {
		c.FlapWindow = DefaultFlapWindow
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// LogValue logs the configuration.
func (c ScreenerConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.Float64("recovery", c.Recovery), slog.Duration("pending", c.Pending),
		slog.Duration("clear_after", c.ClearAfter), slog.Float64("escalation", c.Escalation),
		slog.Int("flap_count", c.FlapCount), slog.Duration("flap_window", c.FlapWindow))
}

// Screener checks each accepted reading and lab sample for alerts. Lab
// samples (CheckSample) raise an individual compliance alert every time
// they exceed the rule of their monitoring period; screening readings
// (Check) go through a state machine per device and analyte with a
// pending duration, deduplication (one open alert; further exceedances are
// recorded as suppressed), escalation, a recovery threshold, an explicit
// all-clear and flap detection (a device whose alert fires FlapCount times
// within FlapWindow keeps one alert open). It implements ingest's Alerter
// and is safe for concurrent use.
//
// Check publishes before it saves the new state. A reading redelivered
// after a crash between the two is decided again from the old state, to
// messages with the same deterministic ids, which the Publisher absorbs; a
// reading redelivered after the save is recognised by its sequence number.
type Screener struct {
	eval    *Evaluator
	pub     Publisher
	states  ScreeningStates
	cfg     ScreenerConfig
	metrics *Metrics
	log     *slog.Logger

	mu   sync.Mutex
	keys map[string]*screenKey
}

// screenKey caches one key's state; mu serializes its readings.
type screenKey struct {
	mu     sync.Mutex
	loaded bool
	st     ScreeningState
	rev    uint64
}

// NewScreener returns a Screener that evaluates readings with eval,
// publishes to pub and keeps its state in states. metrics and log may be nil.
func NewScreener(eval *Evaluator, pub Publisher, states ScreeningStates, cfg ScreenerConfig, metrics *Metrics, log *slog.Logger) (*Screener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if eval == nil || pub == nil || states == nil {
		return nil, errors.New("screener: evaluator, publisher and state store are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Screener{eval: eval, pub: pub, states: states, cfg: cfg.withDefaults(), metrics: metrics, log: log, keys: map[string]*screenKey{}}, nil
}

// ScreeningKey is the state key of device's screening of analyte a at site
// of utility.
func ScreeningKey(utility, site, device string, a tapproof.Analyte) string {
	return utility + "." + site + "." + device + "." + string(a)
}

// legacyScreeningKey is the key state was kept under, per site, before
// screening was per device.
func legacyScreeningKey(utility, site string, a tapproof.Analyte) string {
	return utility + "." + site + "." + string(a)
}

// Urgent reports whether r, taken at its word, is above the recovery level
// of the rule in force: a reading that can raise, update or keep open an
// alert, and so must not wait behind the bulk of readings (see
// ingest.Intake). It decides nothing and publishes nothing; r is not yet
// verified.
func (s *Screener) Urgent(r tapproof.Reading) bool {
	m, ok := s.eval.measure(r)
	return ok && m.value > m.rule.Level*s.cfg.Recovery
}

// Check decides what reading r raises and publishes it. It returns an error
// only when publishing or saving failed; the reading should then be
// redelivered.
func (s *Screener) Check(ctx context.Context, r tapproof.Reading) error {
	m, ok := s.eval.measure(r)
	if !ok {
		return nil
	}
	now := s.cfg.Now()
	if !tapproof.ValidID(r.Utility) || !tapproof.ValidID(r.Site) || !tapproof.ValidID(r.Device) {
		return fmt.Errorf("screening: invalid utility, site or device id")
	}
	key := ScreeningKey(r.Utility, r.Site, r.Device, r.Analyte)
	k := s.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loaded {
		st, rev, err := s.load(ctx, key, r)
		if err != nil {
			return fmt.Errorf("screening state %s: %w", key, err)
		}
		k.st, k.rev, k.loaded = st, rev, true
	}
	if r.Seq <= k.st.Seen[r.Device] {
		return nil // decided before: a redelivery
	}
	next, out, changed := s.cfg.step(k.st, r, m, now)
	if !changed {
		return nil
	}
	for _, o := range out {
		if o.msg.ID == "" {
			continue
		}
		var err error
		if o.msg.Status == tapproof.AlertSuppressed {
			err = s.pub.RecordSuppression(ctx, o.msg)
		} else {
			err = s.pub.Publish(ctx, o.msg)
		}
		if err != nil {
			return err
		}
	}
	next.Seen = maps.Clone(k.st.Seen)
	if next.Seen == nil {
		next.Seen = map[string]uint64{}
	}
	next.Seen[r.Device] = r.Seq
	rev, err := s.states.Save(ctx, key, next, k.rev)
	if err != nil {
		k.loaded = false // reload: another writer may have moved it
		return fmt.Errorf("screening state %s: %w", key, err)
	}
	k.st, k.rev = next, rev
	for _, o := range out {
		s.metrics.screening(o.event)
		if o.msg.ID != "" {
			s.log.Info("screening "+o.event, logKeyAlert, o.msg.ID, "key", key)
		}
	}
	return nil
}

// CheckSample publishes the individual compliance alert that lab sample s,
// accepted at leaf index, raises, if any (Evaluator.EvaluateSample). Such an
// alert is never suppressed. It returns an error only when publishing
// failed; the sample should then be redelivered.
func (s *Screener) CheckSample(ctx context.Context, sample tapproof.LabSample, index uint64) error {
	a, ok := s.eval.EvaluateSample(sample, index, s.cfg.Now())
	if !ok {
		return nil
	}
	if err := s.pub.Publish(ctx, a); err != nil {
		return err
	}
	s.log.Info("compliance alert", logKeyAlert, a.ID, "class", a.Class)
	return nil
}

// load returns the state of key, the key of reading r's device. A device
// with no state of its own takes over its open alert from the state its
// site kept before screening was per device, so that an upgrade neither
// forgets an open alert nor opens a second one.
func (s *Screener) load(ctx context.Context, key string, r tapproof.Reading) (ScreeningState, uint64, error) {
	st, rev, err := s.states.Load(ctx, key)
	if err != nil || rev != 0 {
		return st, rev, err
	}
	old, oldRev, err := s.states.Load(ctx, legacyScreeningKey(r.Utility, r.Site, r.Analyte))
	if err != nil || oldRev == 0 || old.Open == nil || old.Open.Device != r.Device {
		return ScreeningState{}, 0, err
	}
	old.Seen = map[string]uint64{r.Device: old.Seen[r.Device]}
	return old, 0, nil
}

// State returns the current screening state of device's analyte a at site
// of utility.
func (s *Screener) State(ctx context.Context, utility, site, device string, a tapproof.Analyte) (ScreeningState, error) {
	key := ScreeningKey(utility, site, device, a)
	k := s.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loaded {
		return k.st, nil
	}
	st, _, err := s.states.Load(ctx, key)
	return st, err
}

func (s *Screener) key(key string) *screenKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[key]
	if !ok {
		k = &screenKey{}
		s.keys[key] = k
	}
	return k
}

// outcome is one thing a reading did: an event for the metrics and, unless
// its ID is empty, a message to publish.
type outcome struct {
	event string
	msg   tapproof.Alert
}

// step is the screening state machine: it returns the state after reading
// r, measured as m, what r caused, and whether anything changed.
func (c ScreenerConfig) step(st ScreeningState, r tapproof.Reading, m measurement, now time.Time) (ScreeningState, []outcome, bool) {
	level := m.rule.Level
	recovery := level * c.Recovery
	v, t := m.value, r.SampledAt
	base := m.alert(r, now)
	base.Recovery = recovery
	event := func(kind string, mt tapproof.MsgType, status tapproof.AlertStatus) tapproof.Alert {
		a := base
		a.ID = tapproof.AlertEventID(kind, m.class, r.Device, r.Seq)
		a.MsgType, a.Status = mt, status
		a.References = append([]tapproof.AlertRef(nil), st.Refs...)
		if st.Open != nil {
			a.Since = st.Open.Since
		}
		return a
	}
	fire := func(since time.Time) (ScreeningState, []outcome, bool) {
		a := base
		a.MsgType, a.Status = tapproof.AlertMsg, tapproof.AlertOpen
		a.Since = since
		next := ScreeningState{Phase: PhaseOpen, Open: &a, Refs: []tapproof.AlertRef{a.Ref()}, Reported: v,
			Fires: c.fired(st.Fires, t)}
		return next, []outcome{{event: EventFired, msg: a}}, true
	}
	// idle is the state with no exceedance, which still remembers the
	// device's firings.
	idle := ScreeningState{Fires: st.Fires}

	switch st.Phase {
	case PhaseNormal:
		if !m.rule.Exceeds(v) {
			return st, nil, false
		}
		if c.Pending <= 0 {
			return fire(t)
		}
		return ScreeningState{Phase: PhasePending, Since: t, Fires: st.Fires}, []outcome{{event: EventPending}}, true

	case PhasePending:
		if !m.rule.Exceeds(v) {
			return idle, []outcome{{event: EventAbandoned}}, true
		}
		if t.Sub(st.Since) >= c.Pending {
			return fire(st.Since)
		}
		return st, nil, false

	case PhaseOpen, PhaseRecovering:
		switch {
		case m.rule.Exceeds(v):
			next := st
			next.Phase, next.Since = PhaseOpen, time.Time{}
			if c.Escalation > 0 && v >= st.Reported*c.Escalation {
				u := event("update", tapproof.UpdateMsg, tapproof.AlertOpen)
				next.Open = &u
				next.Refs = append(append([]tapproof.AlertRef(nil), st.Refs...), u.Ref())
				next.Reported = v
				return next, []outcome{{event: EventUpdated, msg: u}}, true
			}
			sup := event("suppressed", "", tapproof.AlertSuppressed)
			next.Suppressed++
			return next, []outcome{{event: EventSuppressed, msg: sup}}, true
		case v <= recovery:
			if !st.Flapping && c.flapping(st.Fires, t) {
				// Instead of one more all-clear, the alert stays open
				// until the device is stable. Residents were told of an
				// open alert and it is still open: nothing to publish.
				next := st
				next.Flapping = true
				next.Phase, next.Since = PhaseRecovering, t
				return next, []outcome{{event: EventFlapping}}, true
			}
			hold := c.ClearAfter
			if st.Flapping {
				hold = max(hold, c.FlapWindow)
			}
			if st.Phase == PhaseOpen && hold > 0 {
				next := st
				next.Phase, next.Since = PhaseRecovering, t
				return next, []outcome{{event: EventRecovering}}, true
			}
			if st.Phase == PhaseRecovering && t.Sub(st.Since) < hold {
				return st, nil, false
			}
			clear := event("clear", tapproof.CancelMsg, tapproof.AlertCleared)
			return idle, []outcome{{event: EventCleared, msg: clear}}, true
		default: // between recovery and level: hysteresis holds the alert open
			if st.Phase == PhaseRecovering {
				next := st
				next.Phase, next.Since = PhaseOpen, time.Time{}
				return next, nil, true
			}
			return st, nil, false
		}
	}
	return st, nil, false
}

// fired returns fires with a firing at t added, keeping the latest
// FlapCount within FlapWindow of t.
func (c ScreenerConfig) fired(fires []time.Time, t time.Time) []time.Time {
	if c.FlapCount < 0 {
		return nil
	}
	out := []time.Time{}
	for _, f := range fires {
		if t.Sub(f) < c.FlapWindow && !f.After(t) {
			out = append(out, f)
		}
	}
	out = append(out, t)
	return out[max(0, len(out)-c.FlapCount):]
}

// flapping reports whether fires, a device's latest firings, make it
// flapping at t: FlapCount of them within FlapWindow.
func (c ScreenerConfig) flapping(fires []time.Time, t time.Time) bool {
	if c.FlapCount < 0 {
		return false
	}
	n := 0
	for _, f := range fires {
		if t.Sub(f) < c.FlapWindow {
			n++
		}
	}
	return n >= c.FlapCount
}

// ScreeningKV keeps ScreeningState in the JetStream key-value bucket
// ScreeningBucket. It implements ScreeningStates.
type ScreeningKV struct{ kv jetstream.KeyValue }

// NewScreeningKV creates or opens the ScreeningBucket key-value bucket and
// returns a ScreeningKV on it.
func NewScreeningKV(ctx context.Context, js jetstream.JetStream) (*ScreeningKV, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ScreeningBucket,
		Description: "tapproof screening state per utility, site, device and analyte",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("screening bucket: %w", err)
	}
	return &ScreeningKV{kv: kv}, nil
}

// Load returns the state of key and its revision; the zero state and
// revision 0 if there is none.
func (s *ScreeningKV) Load(ctx context.Context, key string) (ScreeningState, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ScreeningState{}, 0, nil
	}
	if err != nil {
		return ScreeningState{}, 0, err
	}
	var st ScreeningState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return ScreeningState{}, 0, fmt.Errorf("decode: %w", err)
	}
	return st, e.Revision(), nil
}

// Save stores st under key if its revision is still rev (0: if the key does
// not exist yet) and returns the new revision.
func (s *ScreeningKV) Save(ctx context.Context, key string, st ScreeningState, rev uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return s.kv.Create(ctx, key, b)
	}
	return s.kv.Update(ctx, key, b, rev)
}
