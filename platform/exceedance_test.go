package platform

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// watchEnv is an exceedance watch on an embedded JetStream: the journal
// its entries are appended to, the alert store it publishes to and the
// keys of a lab and a state reviewer.
type watchEnv struct {
	t        *testing.T
	j        *journal.Journal
	store    *alerts.Store
	w        *exceedanceWatch
	lab, rev ed25519.PrivateKey
	failed   int
	pending  map[string][]journal.Entry
}

func newWatchEnv(t *testing.T, utilities ...string) *watchEnv {
	t.Helper()
	ctx := t.Context()
	js := alertstest.JetStream(t)
	j, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range utilities {
		if err := j.EnsureLogStream(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	_, lab, _ := ed25519.GenerateKey(nil)
	_, rev, _ := ed25519.GenerateKey(nil)
	keys := compliance.KeySet{
		Labs:      map[string][]ed25519.PublicKey{"acme-labs": {lab.Public().(ed25519.PublicKey)}},
		Reviewers: map[string][]ed25519.PublicKey{"mi-egle": {rev.Public().(ed25519.PublicKey)}},
	}
	_, _, backend, err := newComplianceParts(keys, compliance.HalfUp, tapproof.RuleBook{}, j)
	if err != nil {
		t.Fatal(err)
	}
	e := &watchEnv{t: t, j: j, store: alertstest.Store(t, js, nil), lab: lab, rev: rev, pending: map[string][]journal.Entry{}}
	e.w = &exceedanceWatch{journal: j, reports: backend, alerts: e.store, log: slog.New(slog.DiscardHandler),
		now: func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }, failed: func() { e.failed++ }}
	return e
}

func (e *watchEnv) sign(key ed25519.PrivateKey, payloadType string, v any) []byte {
	e.t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	env, err := signed.Sign(e.t.Context(), key, payloadType, p)
	if err != nil {
		e.t.Fatal(err)
	}
	return env
}

// sample appends a first-liter 2026H2 lead sample of v µg/L at site,
// collected on 3 August 2026, and returns it with its leaf index.
func (e *watchEnv) sample(utility, id, site string, v float64) tapproof.LabSample {
	e.t.Helper()
	at := time.Date(2026, 8, 3, 6, 30, 0, 0, time.UTC)
	s := tapproof.LabSample{Lab: "acme-labs", SampleID: id, Utility: utility, Site: site, Tier: 1, Liter: tapproof.FirstLiter,
		Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1, CollectedAt: at,
		AnalyzedAt: at.Add(48 * time.Hour), Period: "2026H2", Method: "EPA 200.8"}
	leaf := e.sign(e.lab, tapproof.LabSamplePayloadType, s)
	idx, err := e.j.AppendLabSample(e.t.Context(), s, leaf)
	if err != nil {
		e.t.Fatalf("AppendLabSample(%s): %v", id, err)
	}
	e.pending[utility] = append(e.pending[utility], journal.Entry{Leaf: tapproof.Leaf{Index: idx, Bytes: leaf}, Kind: journal.KindLabSample, Lab: s.Lab, SampleID: id})
	return s
}

// invalidate appends a state reviewer's invalidation of sample id.
func (e *watchEnv) invalidate(utility, id string) {
	e.t.Helper()
	ctx := e.t.Context()
	s, err := e.j.LabSample(ctx, utility, "acme-labs", id)
	if err != nil {
		e.t.Fatal(err)
	}
	inv := tapproof.Invalidation{Utility: utility, Lab: "acme-labs", SampleID: id, SampleIndex: s.Index,
		Reason: "second draw of one collection event", Reviewer: "mi-egle", DecidedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	leaf := e.sign(e.rev, tapproof.InvalidationPayloadType, inv)
	idx, err := e.j.AppendInvalidation(ctx, inv, leaf)
	if err != nil {
		e.t.Fatalf("AppendInvalidation(%s): %v", id, err)
	}
	e.pending[utility] = append(e.pending[utility], journal.Entry{Leaf: tapproof.Leaf{Index: idx, Bytes: leaf}, Kind: journal.KindInvalidation, Lab: inv.Lab, SampleID: id})
}

// handle hands the entries appended since the last call to the watch, as
// one batch of its cursor.
func (e *watchEnv) handle(utility string) {
	e.t.Helper()
	if err := e.w.handle(e.t.Context(), utility, e.pending[utility]); err != nil {
		e.t.Fatalf("handle: %v", err)
	}
	e.pending[utility] = nil
}

func (e *watchEnv) open(utility string) []string {
	e.t.Helper()
	as, err := e.store.OpenAlerts(context.Background(), utility, "")
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return ids
}

// Issue 20: 20 samples at 30 ppb exceed; a second first-liter sample at one
// site on the same day made the period "not computable", and the watch
// only logged it. Every reduction of that site's event exceeds: the Tier 1
// alert is raised at once.
func TestExceedanceWatchRedrawRaisesTier1(t *testing.T) {
	e := newWatchEnv(t, "flint")
	for i := range 20 {
		e.sample("flint", fmt.Sprintf("S%d", i), fmt.Sprintf("site-%d", i), 30)
	}
	e.sample("flint", "S3-redraw", "site-3", 1)
	e.handle("flint")

	a, ok, err := e.store.Get(t.Context(), "system_exceedance-flint-lead-2026h2")
	if err != nil || !ok {
		t.Fatalf("the Tier 1 alert of a re-drawn period: %v, found %t (periods not computable: %d)", err, ok, e.failed)
	}
	if a.Value != 30 || a.Level != 15 || a.Class != tapproof.SystemExceedance {
		t.Errorf("Tier 1 alert = %+v, want the 90th percentile 30 against 15 ppb", a)
	}
	if e.failed != 0 {
		t.Errorf("%d periods counted as not computable, want none", e.failed)
	}
}

// A re-draw whose reductions disagree leaves the period undetermined: a
// public alert, open until a state reviewer's invalidation decides the
// period; then it is cancelled, and here the Tier 1 alert raised.
func TestExceedanceWatchUndetermined(t *testing.T) {
	e := newWatchEnv(t, "lansing")
	for i := range 8 {
		e.sample("lansing", fmt.Sprintf("S%d", i), fmt.Sprintf("site-%d", i), 5)
	}
	e.sample("lansing", "S8", "site-8", 20)
	e.sample("lansing", "S8-redraw", "site-8", 5)
	e.sample("lansing", "S9", "site-9", 20) // leaf 10: 5 ppb or 20 ppb at rank 9
	e.handle("lansing")

	const undetermined = "system_undetermined-lansing-lead-2026h2-10"
	const tier1 = "system_exceedance-lansing-lead-2026h2"
	a, ok, err := e.store.Get(t.Context(), undetermined)
	if err != nil || !ok {
		t.Fatalf("undetermined alert %s: %v, found %t (periods not computable: %d)", undetermined, err, ok, e.failed)
	}
	if a.Class != tapproof.SystemUndetermined || a.Value != 5 || a.Upper != 20 || a.Level != 15 {
		t.Errorf("undetermined alert = %+v, want 5 to 20 against 15 ppb", a)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("undetermined alert does not validate: %v", err)
	}
	if _, ok, _ := e.store.Get(t.Context(), tier1); ok {
		t.Errorf("Tier 1 alert raised for an undetermined period")
	}
	if got, want := e.open("lansing"), []string{undetermined}; !slices.Equal(got, want) {
		t.Errorf("open alerts = %v, want %v", got, want)
	}

	// Handled again (a redelivery): nothing new.
	e.pending["lansing"] = []journal.Entry{{Leaf: tapproof.Leaf{Index: 10}, Kind: journal.KindInvalidation, Lab: "acme-labs", SampleID: "S9"}}
	e.handle("lansing")

	e.invalidate("lansing", "S8-redraw")
	e.handle("lansing")
	if _, ok, err := e.store.Get(t.Context(), tier1); err != nil || !ok {
		t.Errorf("Tier 1 alert after the re-draw was invalidated: %v, found %t", err, ok)
	}
	c, ok, err := e.store.Get(t.Context(), "resolved-"+undetermined)
	if err != nil || !ok {
		t.Fatalf("cancellation of the undetermined alert: %v, found %t", err, ok)
	}
	if c.Type() != tapproof.CancelMsg || len(c.References) != 1 || c.References[0] != a.Ref() {
		t.Errorf("cancellation = %+v, want a Cancel referring to %+v", c, a.Ref())
	}
	if got, want := e.open("lansing"), []string{tier1}; !slices.Equal(got, want) {
		t.Errorf("open alerts after the invalidation = %v, want %v", got, want)
	}
	recent, err := e.store.Recent(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 3 {
		t.Errorf("alert messages = %d, want the undetermined alert, the Tier 1 alert and the cancellation", len(recent))
	}
}
