package ingest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// keyring implements ingest.Labs and ingest.Reviewers.
type keyring map[string][]ed25519.PublicKey

func (k keyring) Lab(id string) ([]ed25519.PublicKey, bool)      { ks, ok := k[id]; return ks, ok }
func (k keyring) Reviewer(id string) ([]ed25519.PublicKey, bool) { ks, ok := k[id]; return ks, ok }

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, key
}

func sample(id string, ppb float64) tapproof.LabSample {
	at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	p := fmt.Sprintf("%dH%d", at.Year(), 1+(int(at.Month())-1)/6)
	return tapproof.LabSample{Lab: "lab-a", SampleID: id, Utility: "u1", Site: "s1", Tier: 1, Liter: tapproof.FirstLiter,
		Analyte: tapproof.Lead, Value: ppb, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1,
		CollectedAt: at, AnalyzedAt: at.Add(24 * time.Hour), Period: p}
}

func signJSON(t *testing.T, key ed25519.PrivateKey, payloadType string, v any) []byte {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := signed.Sign(t.Context(), key, payloadType, p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func labSubject(s tapproof.LabSample) string {
	return journal.LabSamplesSubject + "." + s.Utility + "." + s.Lab
}

func invSubject(inv tapproof.Invalidation) string {
	return journal.InvalidationsSubject + "." + inv.Utility + "." + inv.Reviewer
}

func TestLabSamplesAndInvalidations(t *testing.T) {
	labPub, labKey := newKey(t)
	revPub, revKey := newKey(t)
	_, strangerKey := newKey(t)
	dev := newSensor(t, "dev-a")
	h := startWith(t, registry{"dev-a": dev.dev},
		ingest.Config{Workers: 4, Labs: keyring{"lab-a": {labPub}}, Reviewers: keyring{"rev-1": {revPub}}}, nil)
	ctx := t.Context()
	signSample := func(key ed25519.PrivateKey, s tapproof.LabSample) []byte {
		return signJSON(t, key, tapproof.LabSamplePayloadType, s)
	}

	want := map[tapproof.Reason]float64{}
	send := func(reason tapproof.Reason, subject string, raw []byte) {
		t.Helper()
		h.publish(t, subject, raw)
		if reason != "" {
			want[reason]++
		}
	}
	low, high, bdl := sample("L1", 4), sample("L2", 20), sample("L3", 0.5)
	bdl.BelowDetection = true
	lowRaw := signSample(labKey, low)
	send("", labSubject(low), lowRaw)
	send("", labSubject(high), signSample(labKey, high))
	send("", labSubject(bdl), signSample(labKey, bdl))
	// A device reading in between: both kinds share the stream.
	send("", subj("dev-a"), dev.sign(t, dev.reading(1, 3)))

	send(tapproof.ReasonDuplicate, labSubject(low), lowRaw)
	send(tapproof.ReasonEquivocation, labSubject(low), signSample(labKey, sample("L1", 2)))
	other := sample("L9", 3)
	other.Lab = "lab-z"
	send(tapproof.ReasonUnknownSigner, labSubject(other), signSample(labKey, other))
	send(tapproof.ReasonUnknownSigner, labSubject(low), signSample(strangerKey, sample("L4", 3)))
	send(tapproof.ReasonSubjectMismatch, journal.LabSamplesSubject+".u2.lab-a", signSample(labKey, sample("L5", 3)))
	badTier := sample("L6", 3)
	badTier.Tier = 9
	send(tapproof.ReasonInvalid, labSubject(badTier), signSample(labKey, badTier))
	future := sample("L7", 3)
	future.AnalyzedAt = time.Now().Add(time.Hour)
	send(tapproof.ReasonFuture, labSubject(future), signSample(labKey, future))
	noLog := sample("L8", 3)
	noLog.Utility = "u9"
	send(tapproof.ReasonInvalid, labSubject(noLog), signSample(labKey, noLog))
	send(tapproof.ReasonMalformed, labSubject(low), signJSON(t, labKey, tapproof.LabSamplePayloadType, json.RawMessage(`{"lab":"lab-a","extra":1}`)))

	var highAt uint64
	poll.Until(t, 10*time.Second, func() error {
		e, err := h.j.LabSample(ctx, "u1", "lab-a", "L2")
		highAt = e.Index
		return err
	})
	inv := tapproof.Invalidation{Utility: "u1", Lab: "lab-a", SampleID: "L2", SampleIndex: highAt,
		Reason: "sample taken from a tap not in the sampling plan", Reviewer: "rev-1", DecidedAt: time.Now().UTC().Truncate(time.Second)}
	invRaw := signJSON(t, revKey, tapproof.InvalidationPayloadType, inv)
	send("", invSubject(inv), invRaw)
	poll.Until(t, 10*time.Second, func() error {
		es, err := h.j.Invalidations(ctx, "u1", "lab-a", "L2", highAt)
		if err != nil || len(es) != 1 {
			return fmt.Errorf("invalidations of L2 = %v, %v; want 1", es, err)
		}
		return nil
	})
	send(tapproof.ReasonDuplicate, invSubject(inv), invRaw)
	byLab := inv
	send(tapproof.ReasonUnknownSigner, invSubject(byLab), signJSON(t, labKey, tapproof.InvalidationPayloadType, byLab))
	unknown := inv
	unknown.Reviewer = "rev-9"
	send(tapproof.ReasonUnknownSigner, invSubject(unknown), signJSON(t, revKey, tapproof.InvalidationPayloadType, unknown))
	missing := inv
	missing.SampleID = "L404"
	send(tapproof.ReasonUnknownSample, invSubject(missing), signJSON(t, revKey, tapproof.InvalidationPayloadType, missing))
	wrongLeaf := inv
	wrongLeaf.SampleIndex = highAt + 1
	send(tapproof.ReasonUnknownSample, invSubject(wrongLeaf), signJSON(t, revKey, tapproof.InvalidationPayloadType, wrongLeaf))
	noReason := inv
	noReason.Reason = " "
	send(tapproof.ReasonInvalid, invSubject(noReason), signJSON(t, revKey, tapproof.InvalidationPayloadType, noReason))

	for _, r := range tapproof.Reasons {
		poll.Until(t, 10*time.Second, func() error {
			if got := testutil.ToFloat64(rejected(h, r)); got != want[r] {
				return fmt.Errorf("rejected{reason=%q} = %v, want %v", r, got, want[r])
			}
			return nil
		})
	}
	poll.Until(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(counter(h, "tapproof_ingest_accepted_total")); got != 5 {
			return fmt.Errorf("accepted = %v, want 5 (3 samples, 1 reading, 1 invalidation)", got)
		}
		return nil
	})
	es, err := h.j.ComplianceEntries(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%s %s", e.Kind, e.SampleID))
	}
	if diff := cmp.Diff([]string{"s L1", "s L2", "s L3", "i L2"}, got); diff != "" {
		t.Errorf("compliance entries (-want +got):\n%s", diff)
	}
	// Every accepted sample was checked for alerts once, as a lab reading
	// named by its leaf.
	h.alerts.mu.Lock()
	defer h.alerts.mu.Unlock()
	wantAlerts := map[string]int{"dev-a-1": 1}
	for _, e := range es[:3] {
		wantAlerts[tapproof.ReadingKey(tapproof.LabDevice("u1", "lab-a"), e.Index)] = 1
	}
	if diff := cmp.Diff(wantAlerts, h.alerts.seen); diff != "" {
		t.Errorf("alert checks (-want +got):\n%s", diff)
	}
}

// flaky fails its first fails checks, then records.
type flaky struct {
	mu    sync.Mutex
	fails int
	seen  []tapproof.Reading
}

func (f *flaky) Check(_ context.Context, r tapproof.Reading) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("alert store down")
	}
	f.seen = append(f.seen, r)
	return nil
}

func (f *flaky) CheckSample(ctx context.Context, s tapproof.LabSample, index uint64) error {
	return f.Check(ctx, s.Reading(index))
}

// TestLabSampleAlertRetried: a sample whose alert fails after it was
// journaled is retried as itself, landing once, alerted, and not counted
// as a duplicate of itself.
func TestLabSampleAlertRetried(t *testing.T) {
	labPub, labKey := newKey(t)
	a := &flaky{fails: 2}
	h := startWith(t, registry{}, ingest.Config{Workers: 2, Labs: keyring{"lab-a": {labPub}}}, a)
	s := sample("L1", 30)
	h.publish(t, labSubject(s), signJSON(t, labKey, tapproof.LabSamplePayloadType, s))
	poll.Until(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(counter(h, "tapproof_ingest_accepted_total")); got != 1 {
			return fmt.Errorf("accepted = %v, want 1", got)
		}
		return nil
	})
	if got := testutil.ToFloat64(counter(h, "tapproof_ingest_rejected_total")); got != 0 {
		t.Errorf("rejected = %v, want 0", got)
	}
	if n, _ := h.j.Size(t.Context(), "u1"); n != 1 {
		t.Errorf("journal size = %d, want 1", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) != 1 || a.seen[0].Method != tapproof.Lab || a.seen[0].Value != 30 {
		t.Errorf("alerted readings = %+v, want one lab reading of 30", a.seen)
	}
}

// publisher records what a Screener publishes.
type publisher struct{ alerts []tapproof.Alert }

func (p *publisher) Publish(_ context.Context, a tapproof.Alert) error {
	p.alerts = append(p.alerts, a)
	return nil
}
func (p *publisher) RecordSuppression(_ context.Context, a tapproof.Alert) error { return nil }

type noStates struct{}

func (noStates) Load(context.Context, string) (alerts.ScreeningState, uint64, error) {
	return alerts.ScreeningState{}, 0, nil
}
func (noStates) Save(context.Context, string, alerts.ScreeningState, uint64) (uint64, error) {
	return 0, errors.New("a compliance sample must not touch screening state")
}

// TestLabSampleRaisesComplianceAlert checks the contract with the alerts
// package: a lab sample raises an individual compliance alert above the
// action level, every time, never a screening one.
func TestLabSampleRaisesComplianceAlert(t *testing.T) {
	eval := alerts.NewEvaluator(tapproof.RuleBook{})
	high := sample("L2", 0.0151)
	high.Unit = tapproof.MilligramsPerLiter
	high.DetectionLimit = 0.001
	n, err := high.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	pub := &publisher{}
	sc, err := alerts.NewScreener(eval, pub, noStates{}, alerts.ScreenerConfig{Pending: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := sc.CheckSample(t.Context(), n, 7); err != nil {
			t.Fatal(err)
		}
	}
	a, ok := eval.EvaluateSample(n, 7, time.Now())
	if !ok {
		t.Fatal("Evaluate(15.1 ppb lab sample) raised nothing")
	}
	wantID := tapproof.AlertID(tapproof.IndividualCompliance, "lab-a.u1", 7)
	if a.ID != wantID || a.Class != tapproof.IndividualCompliance || a.Value != 15.1 || a.Site != "s1" {
		t.Errorf("Evaluate = %+v, want %s of 15.1 ug/L at s1", a, wantID)
	}
	if len(pub.alerts) != 2 || pub.alerts[0].ID != wantID {
		t.Errorf("Screener published %+v, want %s twice (never suppressed, deduplicated by id in the store)", pub.alerts, wantID)
	}
	bdl := sample("L3", 0.5)
	bdl.BelowDetection = true
	if n, err := bdl.Normalize(); err != nil {
		t.Fatal(err)
	} else if _, ok := eval.EvaluateSample(n, 8, time.Now()); ok {
		t.Error("a sample below the detection limit raised an alert")
	}
	exact := sample("L4", 15)
	if n, err := exact.Normalize(); err != nil {
		t.Fatal(err)
	} else if _, ok := eval.EvaluateSample(n, 9, time.Now()); ok {
		t.Error("a sample of exactly 15 ppb raised an alert")
	}
}
