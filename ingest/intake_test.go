package ingest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
)

// secureHarness runs ingest and the intake behind the real broker: devices
// connect with their keys, over TLS, into their own account.
type secureHarness struct {
	b      *natstest.Broker
	j      *journal.Journal
	alerts *alerter
	reg    *prometheus.Registry
}

func startSecure(t *testing.T, cfg ingest.IntakeConfig, sensors ...sensor) *secureHarness {
	t.Helper()
	return startSecureWith(t, cfg, nil, true, sensors...)
}

// startSecureWith runs the intake and, if lane is not nil, the alert lane
// and, if bulk, ingest.
func startSecureWith(t *testing.T, cfg ingest.IntakeConfig, lane *ingest.LaneConfig, bulk bool, sensors ...sensor) *secureHarness {
	t.Helper()
	return startSecureOn(t, natstest.SecureServer(t), cfg, lane, bulk, sensors...)
}

// startSecureOn is startSecureWith on broker b.
func startSecureOn(t *testing.T, b *natstest.Broker, cfg ingest.IntakeConfig, lane *ingest.LaneConfig, bulk bool, sensors ...sensor) *secureHarness {
	t.Helper()
	nc, js := b.JetStream(t)
	ctx, cancel := context.WithCancel(t.Context())
	j, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	reg := registry{}
	for _, s := range sensors {
		reg[s.dev.ID] = s.dev
		b.Directory.Add(s.dev.PublicKey, broker.Party{Kind: broker.Device, ID: s.dev.ID, Utility: s.dev.Utility, Site: s.dev.Site})
	}
	h := &secureHarness{b: b, j: j, alerts: &alerter{seen: map[string]int{}}, reg: prometheus.NewRegistry()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := ingest.NewMetrics(h.reg)
	in := ingest.New(ingest.Config{Workers: 4}, js, reg, j, h.alerts, m, log)
	intake := ingest.NewIntake(cfg, js, m, log)
	done := make(chan struct{}, 3)
	go func() {
		if bulk {
			_ = in.Run(ctx)
		}
		done <- struct{}{}
	}()
	go func() {
		if lane != nil {
			if err := in.RunLane(ctx, nc, j, *lane); err != nil {
				t.Errorf("alert lane: %v", err)
			}
		}
		done <- struct{}{}
	}()
	go func() {
		if err := intake.Run(ctx, nc); err != nil {
			t.Errorf("intake: %v", err)
		}
		done <- struct{}{}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done; <-done })
	return h
}

// device connects as s and returns its JetStream publisher.
func (h *secureHarness) device(t *testing.T, s sensor) jetstream.JetStream {
	t.Helper()
	nc, err := h.b.ConnectParty(broker.Device, s.dev.ID, s.key)
	if err != nil {
		t.Fatalf("connect %s: %v", s.dev.ID, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestMessageIDSquatting: an enrolled, malicious device publishes on its
// own subject with the message id its neighbour will use next. The
// neighbour's reading must still land and raise its alert.
func TestMessageIDSquatting(t *testing.T) {
	natstest.EachBroker(t, func(t *testing.T, start func(testing.TB) *natstest.Broker) {
		testMessageIDSquatting(t, start(t))
	})
}

func testMessageIDSquatting(t *testing.T, b *natstest.Broker) {
	victim, attacker := newSensor(t, "victim"), newSensor(t, "attacker")
	h := startSecureOn(t, b, ingest.IntakeConfig{}, nil, true, victim, attacker)
	vjs, ajs := h.device(t, victim), h.device(t, attacker)

	r := victim.reading(1, 44.4)
	if _, err := ajs.Publish(t.Context(), subj("attacker"), []byte("garbage"), jetstream.WithMsgID(r.Key())); err != nil {
		t.Fatalf("attacker publish: %v", err)
	}
	ack, err := vjs.Publish(t.Context(), subj("victim"), victim.sign(t, r), jetstream.WithMsgID(r.Key()))
	if err != nil {
		t.Fatalf("victim publish: %v", err)
	}
	if ack.Duplicate {
		t.Fatal("the victim's reading was acknowledged as a duplicate of the attacker's message")
	}
	poll.Until(t, 10*time.Second, func() error {
		_, err := h.j.Reading(t.Context(), "u1", "victim", 1)
		return err
	})
	h.alerts.mu.Lock()
	n := h.alerts.seen[r.Key()]
	h.alerts.mu.Unlock()
	if n == 0 {
		t.Fatal("the victim's 44.4 ppb reading was never checked for alerts")
	}
	// The attacker's garbage was rejected with a reason, not journaled.
	poll.Until(t, 10*time.Second, func() error {
		if v := testutil.ToFloat64(rejected(h.regHarness(), tapproof.ReasonMalformed)); v != 1 {
			return errors.New("malformed not counted")
		}
		return nil
	})
}

func (h *secureHarness) regHarness() *harness { return &harness{reg: h.reg} }

// TestIntakeAbsorbsRetries: a device that did not see its acknowledgement
// sends the same bytes again; it is acknowledged, and journaled once.
func TestIntakeAbsorbsRetries(t *testing.T) {
	s := newSensor(t, "d1")
	h := startSecure(t, ingest.IntakeConfig{}, s)
	js := h.device(t, s)
	raw := s.sign(t, s.reading(1, 3))
	first, err := js.Publish(t.Context(), subj("d1"), raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := js.Publish(t.Context(), subj("d1"), raw)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("retry acknowledged as %+v, want a duplicate of %+v", again, first)
	}
	poll.Until(t, 10*time.Second, func() error {
		n, err := h.j.Size(t.Context(), "u1")
		if err != nil || n != 1 {
			return errors.New("journal does not hold exactly the one reading yet")
		}
		return nil
	})
}

// TestIntakeRateLimit: a device above its rate is refused with
// rate_limited, counted, and another device is unaffected.
func TestIntakeRateLimit(t *testing.T) {
	flood, calm := newSensor(t, "flood"), newSensor(t, "calm")
	h := startSecure(t, ingest.IntakeConfig{Rate: 0.001, Burst: 3}, flood, calm)
	fjs, cjs := h.device(t, flood), h.device(t, calm)
	var refused error
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := fjs.Publish(t.Context(), subj("flood"), flood.sign(t, flood.reading(seq, 1)))
		if seq <= 3 && err != nil {
			t.Fatalf("reading %d within the burst: %v", seq, err)
		}
		if seq > 3 {
			refused = err
		}
	}
	var apiErr *jetstream.APIError
	if !errors.As(refused, &apiErr) || !strings.Contains(apiErr.Description, string(tapproof.ReasonRateLimited)) {
		t.Fatalf("publish over the rate: %v, want an API error saying %s", refused, tapproof.ReasonRateLimited)
	}
	if got := testutil.ToFloat64(rejected(h.regHarness(), tapproof.ReasonRateLimited)); got != 2 {
		t.Fatalf("rate_limited counted %v times, want 2", got)
	}
	if _, err := cjs.Publish(t.Context(), subj("calm"), calm.sign(t, calm.reading(1, 1))); err != nil {
		t.Fatalf("another device: %v", err)
	}
}

// TestIntakeDropsPublisherHeaders: headers a device sets do not reach the
// readings stream.
func TestIntakeDropsPublisherHeaders(t *testing.T) {
	s := newSensor(t, "d1")
	h := startSecure(t, ingest.IntakeConfig{}, s)
	js := h.device(t, s)
	m := &nats.Msg{Subject: subj("d1"), Data: s.sign(t, s.reading(1, 2)), Header: nats.Header{"Tapproof-Seq": []string{"999"}}}
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		e, err := h.j.Reading(t.Context(), "u1", "d1", 1)
		if err != nil {
			return err
		}
		if e.Seq != 1 {
			t.Fatalf("journaled seq %d", e.Seq)
		}
		return nil
	})
}

// TestAlertLane: with the bulk path stopped (as if it were minutes behind),
// an urgent reading's alert is still decided, by the lane, and only for a
// reading that verifies and is new.
func TestAlertLane(t *testing.T) {
	s, other := newSensor(t, "d1"), newSensor(t, "d2")
	urgent := func(r tapproof.Reading) bool { return r.Value > 12 }
	h := startSecureWith(t, ingest.IntakeConfig{}, &ingest.LaneConfig{Urgent: urgent}, false, s, other)
	js := h.device(t, s)
	seen := func(key string) int {
		h.alerts.mu.Lock()
		defer h.alerts.mu.Unlock()
		return h.alerts.seen[key]
	}
	low, high := s.reading(1, 3), s.reading(2, 31.5)
	for _, r := range []tapproof.Reading{low, high} {
		if _, err := js.Publish(t.Context(), subj("d1"), s.sign(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, func() error {
		if seen(high.Key()) == 0 {
			return errors.New("the lane did not check the 31.5 ppb reading")
		}
		return nil
	})
	if n := seen(low.Key()); n != 0 {
		t.Errorf("the lane checked a 3 ppb reading %d times; only urgent ones go there", n)
	}
	// A reading that does not verify never reaches the alerter: another
	// key's signature on d1's subject.
	forged := s.reading(3, 40)
	if _, err := js.Publish(t.Context(), subj("d1"), other.sign(t, forged)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := seen(forged.Key()); n != 0 {
		t.Errorf("the lane raised an alert for a reading another key signed")
	}
	// A reading whose sequence number the lane has already seen decided
	// is a replay or an equivocation, whatever the journal says yet (here
	// nothing: the bulk path is stopped).
	again := s.reading(2, 44.4)
	if _, err := js.Publish(t.Context(), subj("d1"), s.sign(t, again)); err != nil {
		t.Fatal(err)
	}
	next := s.reading(4, 33)
	if _, err := js.Publish(t.Context(), subj("d1"), s.sign(t, next)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if seen(next.Key()) == 0 {
			return errors.New("the lane did not check the reading after the replay")
		}
		return nil
	})
	if n := seen(again.Key()); n != 1 {
		t.Errorf("the lane checked seq 2 %d times, want once: the second one reuses a decided sequence number", n)
	}
	if n, _ := h.j.Size(t.Context(), "u1"); n != 0 {
		t.Errorf("the lane journaled %d entries; it must journal nothing", n)
	}
}

// TestIntakeRefusesInvalidUtility: a lab may name any utility in its
// subject, and each utility's messages are ingested by a consumer named
// after it, so a subject naming no valid utility id is refused at the
// door with a reason, never left in the stream for no consumer to take.
func TestIntakeRefusesInvalidUtility(t *testing.T) {
	h := startSecure(t, ingest.IntakeConfig{})
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h.b.Directory.Add(pub, broker.Party{Kind: broker.Lab, ID: "lab-1"})
	nc, err := h.b.ConnectParty(broker.Lab, "lab-1", key)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	_, err = js.Publish(t.Context(), "tapproof.labsamples.No_Such.lab-1", []byte("{}"))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || !strings.Contains(apiErr.Description, "no valid utility") {
		t.Fatalf("publish naming utility No_Such: %v, want a 400 saying it names no valid utility", err)
	}
	if got := testutil.ToFloat64(rejected(h.regHarness(), tapproof.ReasonInvalid)); got != 1 {
		t.Errorf("invalid counted %v times, want 1", got)
	}
	if _, err := js.Publish(t.Context(), "tapproof.labsamples.u1.lab-1", []byte("{}")); err != nil {
		t.Errorf("publish naming utility u1: %v", err)
	}
}

// TestAlertLaneRefusesBeyondKind: the lane verifies what a device may say
// as the bulk path does, so a NIRS lead value, a lead sensor's "lab" result
// or its reading claiming NIRS, all above the action level, never reach the
// alerter, not even ahead of the bulk (stopped here, as if minutes behind).
// The valid urgent readings each device sends after them are checked.
func TestAlertLaneRefusesBeyondKind(t *testing.T) {
	asv, nirs := newSensor(t, "d1"), nirsSensor(t, "n1")
	urgent := func(r tapproof.Reading) bool { return r.Value > 12 }
	h := startSecureWith(t, ingest.IntakeConfig{}, &ingest.LaneConfig{Urgent: urgent}, false, asv, nirs)
	sensors := map[string]sensor{"d1": asv, "n1": nirs}
	js := map[string]jetstream.JetStream{"d1": h.device(t, asv), "n1": h.device(t, nirs)}
	seen := func(key string) int {
		h.alerts.mu.Lock()
		defer h.alerts.mu.Unlock()
		return h.alerts.seen[key]
	}
	before, forbidden, after := beyondKind(asv, nirs)
	for _, r := range slices.Concat(before, forbidden, after) {
		if _, err := js[r.Device].Publish(t.Context(), subj(r.Device), sensors[r.Device].sign(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	// The lane takes each device's readings in order: once the reading
	// after the forbidden ones is checked, they have been decided.
	poll.Until(t, 10*time.Second, func() error {
		for _, r := range after {
			if seen(r.Key()) == 0 {
				return fmt.Errorf("the lane did not check %s, a valid urgent reading", r.Key())
			}
		}
		return nil
	})
	for _, r := range forbidden {
		if n := seen(r.Key()); n != 0 {
			t.Errorf("the lane checked a %s %s reading of a device enrolled as %s for alerts %d times, want never", r.Method, r.Analyte, sensors[r.Device].dev.Kind, n)
		}
	}
	lane := gatherSum{h.reg, "tapproof_ingest_lane_readings_total", map[string]string{"result": "skipped"}}
	if got := testutil.ToFloat64(lane); got != float64(len(forbidden)) {
		t.Errorf("lane skipped %v readings, want the %d forbidden ones", got, len(forbidden))
	}
}
