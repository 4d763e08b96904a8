package ingest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

var firmware = strings.Repeat("ab", 32)

type registry map[string]tapproof.Device

func (r registry) Device(id string) (tapproof.Device, bool) { d, ok := r[id]; return d, ok }

type alerter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (a *alerter) Check(_ context.Context, r tapproof.Reading) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[r.Key()]++
	return nil
}

func (a *alerter) CheckSample(ctx context.Context, s tapproof.LabSample, index uint64) error {
	return a.Check(ctx, s.Reading(index))
}

type sensor struct {
	key ed25519.PrivateKey
	dev tapproof.Device
}

func newSensor(t *testing.T, id string) sensor {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sensor{key: key, dev: tapproof.Device{ID: id, Utility: "u1", Site: "s1", Kind: tapproof.ASV,
		PublicKey: pub, Firmware: firmware, Status: tapproof.DeviceActive}}
}

func (s sensor) reading(seq uint64, ppb float64) tapproof.Reading {
	return tapproof.Reading{Utility: "u1", Site: "s1", Device: s.dev.ID, Seq: seq, Analyte: tapproof.Lead,
		Value: ppb, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: time.Now().UTC().Truncate(time.Second), Firmware: firmware}
}

func (s sensor) sign(t *testing.T, r tapproof.Reading) []byte {
	b, err := signed.SignReading(t.Context(), s.key, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type harness struct {
	js      jetstream.JetStream
	j       *journal.Journal
	alerts  *alerter
	reg     *prometheus.Registry
	pubs    int
	cancel  context.CancelFunc
	stopped chan struct{}
}

func start(t *testing.T, reg registry) *harness {
	t.Helper()
	return startWith(t, reg, ingest.Config{Workers: 4}, nil)
}

// startWith runs ingest with cfg; a non-nil alerter replaces the recording
// one.
func startWith(t *testing.T, reg registry, cfg ingest.Config, a ingest.Alerter) *harness {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Server(t))
	ctx, cancel := context.WithCancel(t.Context())
	j, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	h := &harness{js: js, j: j, alerts: &alerter{seen: map[string]int{}}, reg: prometheus.NewRegistry(), cancel: cancel, stopped: make(chan struct{})}
	if a == nil {
		a = h.alerts
	}
	in := ingest.New(cfg, js, reg, j, a, ingest.NewMetrics(h.reg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { defer close(h.stopped); _ = in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.stopped })
	return h
}

// publish sends raw on subject with a unique message id, so that
// JetStream's own deduplication does not hide what ingest does.
func (h *harness) publish(t *testing.T, subject string, raw []byte) {
	t.Helper()
	h.pubs++
	if _, err := h.js.Publish(t.Context(), subject, raw, jetstream.WithMsgID(fmt.Sprint("m", h.pubs))); err != nil {
		t.Fatal(err)
	}
}

func subj(dev string) string { return "tapproof.readings.u1.s1." + dev }

func TestBadInputRejectedValidLands(t *testing.T) {
	a, b, stranger := newSensor(t, "dev-a"), newSensor(t, "dev-b"), newSensor(t, "dev-x")
	h := start(t, registry{"dev-a": a.dev, "dev-b": b.dev})

	var validA, validB uint64
	valid := func() {
		validA++
		h.publish(t, subj("dev-a"), a.sign(t, a.reading(validA, 3)))
		validB++
		h.publish(t, subj("dev-b"), b.sign(t, b.reading(validB, 4)))
	}
	mutate := func(mod func(*tapproof.Reading)) []byte {
		r := a.reading(100, 2)
		mod(&r)
		return a.sign(t, r)
	}
	valid()
	first := a.sign(t, a.reading(2, 5)) // kept to be sent again
	h.publish(t, subj("dev-a"), first)
	validA = 2

	bad := []struct {
		reason  tapproof.Reason
		subject string
		raw     []byte
	}{
		{tapproof.ReasonMalformed, subj("dev-a"), []byte("{not json")},
		{tapproof.ReasonMalformed, subj("dev-a"), []byte(strings.Replace(string(a.sign(t, a.reading(50, 1))), `"payload":"`, `"payload":"!!`, 1))},
		{tapproof.ReasonMalformed, subj("dev-a"), naNPayload(t, a)},
		{tapproof.ReasonOversized, subj("dev-a"), bytes.Repeat([]byte("x"), signed.MaxEnvelopeSize+1)},
		{tapproof.ReasonBadSignature, subj("dev-a"), func() []byte { // signed by a key other than dev-a's
			r := a.reading(101, 2)
			raw, _ := signed.SignReading(t.Context(), stranger.key, r)
			return raw
		}()},
		{tapproof.ReasonUnknownDevice, subj("dev-x"), func() []byte {
			r := stranger.reading(1, 2)
			return stranger.sign(t, r)
		}()},
		{tapproof.ReasonSubjectMismatch, "tapproof.readings.u1.s2.dev-a", mutate(func(r *tapproof.Reading) {})},
		{tapproof.ReasonSubjectMismatch, "tapproof.readings.u1.s9.dev-a", mutate(func(r *tapproof.Reading) { r.Site = "s9" })},
		{tapproof.ReasonFirmware, subj("dev-a"), mutate(func(r *tapproof.Reading) { r.Firmware = strings.Repeat("cd", 32) })},
		{tapproof.ReasonAbsurd, subj("dev-a"), mutate(func(r *tapproof.Reading) { r.Value = -1 })},
		{tapproof.ReasonAbsurd, subj("dev-a"), mutate(func(r *tapproof.Reading) { r.Value = 5e6 })},
		{tapproof.ReasonFuture, subj("dev-a"), mutate(func(r *tapproof.Reading) { r.SampledAt = time.Now().Add(time.Hour) })},
		{tapproof.ReasonInvalid, subj("dev-a"), mutate(func(r *tapproof.Reading) { r.Unit = "ppm-ish" })},
		{tapproof.ReasonDuplicate, subj("dev-a"), first},
		{tapproof.ReasonEquivocation, subj("dev-a"), a.sign(t, a.reading(2, 6))},
	}

	want := map[tapproof.Reason]float64{}
	for _, c := range bad {
		h.publish(t, c.subject, c.raw)
		want[c.reason]++
		valid()
	}
	// A gap, then an old sequence number that was skipped: replayed.
	h.publish(t, subj("dev-a"), a.sign(t, a.reading(validA+5, 3)))
	h.publish(t, subj("dev-a"), a.sign(t, a.reading(validA+2, 3)))
	want[tapproof.ReasonReplayed]++
	acceptedA := validA + 1

	poll.Until(t, 10*time.Second, func() error {
		got := testutil.ToFloat64(counter(h, "tapproof_ingest_accepted_total"))
		if wantN := float64(acceptedA + validB); got != wantN {
			return fmt.Errorf("accepted = %v, want %v", got, wantN)
		}
		return nil
	})
	for _, r := range tapproof.Reasons {
		poll.Until(t, 5*time.Second, func() error {
			got := testutil.ToFloat64(rejected(h, r))
			if got != want[r] {
				return fmt.Errorf("rejected{reason=%q} = %v, want %v", r, got, want[r])
			}
			return nil
		})
	}
	n, err := h.j.Size(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if n != acceptedA+validB {
		t.Errorf("journal size = %d, want %d accepted readings", n, acceptedA+validB)
	}
	// Every rejection is on tapproof.rejected.<reason> with its reason.
	info, err := h.js.Stream(t.Context(), journal.RejectedStream)
	if err != nil {
		t.Fatal(err)
	}
	si, _ := info.Info(t.Context())
	var total float64
	for _, v := range want {
		total += v
	}
	if float64(si.State.Msgs) != total {
		t.Errorf("rejected stream holds %d messages, want %v", si.State.Msgs, total)
	}
}

func naNPayload(t *testing.T, s sensor) []byte {
	p := fmt.Sprintf(`{"utility":"u1","site":"s1","device":%q,"seq":77,"analyte":"lead","value":NaN,"unit":"ug/L","method":"ASV","sampled_at":"2026-01-01T00:00:00Z","firmware_sha256":%q}`, s.dev.ID, firmware)
	raw, err := signed.Sign(t.Context(), s.key, tapproof.ReadingPayloadType, []byte(p))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func counter(h *harness, name string) prometheus.Collector {
	return gatherSum{h.reg, name, nil}
}

func rejected(h *harness, r tapproof.Reason) prometheus.Collector {
	return gatherSum{h.reg, "tapproof_ingest_rejected_total", map[string]string{"reason": string(r)}}
}

// gatherSum is a collector exposing the sum of a gathered metric family's
// counters that match labels, for testutil.ToFloat64.
type gatherSum struct {
	g      prometheus.Gatherer
	name   string
	labels map[string]string
}

func (g gatherSum) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc("sum", "sum", nil, nil)
}

func (g gatherSum) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.g.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != g.name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range g.labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("sum", "sum", nil, nil), prometheus.GaugeValue, sum)
}

func TestRedeliveredReadingLandsOnce(t *testing.T) {
	a := newSensor(t, "dev-a")
	h := start(t, registry{"dev-a": a.dev})
	raw := a.sign(t, a.reading(1, 16))
	for range 3 { // network retries with distinct message ids
		h.publish(t, subj("dev-a"), raw)
	}
	poll.Until(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(rejected(h, tapproof.ReasonDuplicate)); got != 2 {
			return fmt.Errorf("duplicates = %v, want 2", got)
		}
		return nil
	})
	if n, _ := h.j.Size(t.Context(), "u1"); n != 1 {
		t.Errorf("journal size = %d, want 1", n)
	}
	e, err := h.j.Reading(t.Context(), "u1", "dev-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Bytes, raw) {
		t.Errorf("journal leaf differs from the envelope as received")
	}
	r, err := signed.LoggedReading(e.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(16.0, r.Value); diff != "" {
		t.Errorf("journaled reading's value, in canonical units (-want +got):\n%s", diff)
	}
}

// A reading of a device whose revocation is in the journal is refused even
// while this replica's registry still says the device is active (the
// registry is a watched copy, written after the revocation is journaled),
// so no reading lands after its device's revocation in the log.
func TestReadingAfterRevocationRefused(t *testing.T) {
	a := newSensor(t, "dev-a")
	h := start(t, registry{"dev-a": a.dev}) // never learns of the revocation
	h.publish(t, subj("dev-a"), a.sign(t, a.reading(1, 3)))
	poll.Until(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(counter(h, "tapproof_ingest_accepted_total")); got != 1 {
			return fmt.Errorf("accepted = %v, want 1", got)
		}
		return nil
	})
	revokedAt, err := h.j.AppendRevocation(t.Context(), "u1", "dev-a", []byte(`{"device":"dev-a"}`))
	if err != nil {
		t.Fatal(err)
	}
	h.publish(t, subj("dev-a"), a.sign(t, a.reading(2, 30)))
	poll.Until(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(rejected(h, tapproof.ReasonDeviceDisabled)); got != 1 {
			return fmt.Errorf("device_disabled rejections = %v, want 1", got)
		}
		return nil
	})
	if n, _ := h.j.Size(t.Context(), "u1"); n != revokedAt+1 {
		t.Errorf("journal size = %d, want %d: nothing after the revocation", n, revokedAt+1)
	}
}

// Replicas share ingest by utility: For(u) consumes u's messages alone,
// through a consumer of its own, and retires the consumer of every utility
// that older replicas shared, starting from the messages that consumer
// had delivered and not had acknowledged.
func TestIngestByUtility(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Server(t))
	ctx := t.Context()
	j, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	a, b := newSensor(t, "dev-a"), newSensor(t, "dev-b")
	b.dev.Utility = "u2"
	for _, u := range []string{"u1", "u2"} {
		if err := j.EnsureLogStream(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{js: js, reg: prometheus.NewRegistry()}
	for seq := range uint64(3) {
		h.publish(t, subj("dev-a"), a.sign(t, a.reading(seq+1, 2)))
		r := b.reading(seq+1, 2)
		r.Utility = "u2"
		h.publish(t, "tapproof.readings.u2.s1.dev-b", b.sign(t, r))
	}
	// A replica of the version before took two messages and died.
	legacy, err := js.CreateConsumer(ctx, journal.ReadingsStream, jetstream.ConsumerConfig{
		Durable: ingest.DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if batch, err := legacy.FetchNoWait(2); err != nil {
		t.Fatal(err)
	} else {
		for range batch.Messages() {
		}
	}

	reg := registry{"dev-a": a.dev, "dev-b": b.dev}
	m := ingest.NewMetrics(h.reg)
	base := ingest.New(ingest.Config{Workers: 4}, js, reg, j, &alerter{seen: map[string]int{}}, m, slog.New(slog.DiscardHandler))
	run := func(u string) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = base.For(u).Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	run("u1")
	poll.Until(t, 10*time.Second, func() error {
		if n, _ := j.Size(ctx, "u1"); n != 3 {
			return fmt.Errorf("u1's journal holds %d readings, want 3", n)
		}
		return nil
	})
	if _, err := js.Consumer(ctx, journal.ReadingsStream, ingest.DefaultDurable); err == nil {
		t.Errorf("the shared consumer %s is still there", ingest.DefaultDurable)
	}
	c, err := js.Consumer(ctx, journal.ReadingsStream, ingest.DurableFor("u1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ingest.Subjects("u1"), c.CachedInfo().Config.FilterSubjects); diff != "" {
		t.Errorf("u1's consumer's subjects (-want +got):\n%s", diff)
	}
	time.Sleep(500 * time.Millisecond) // u2 has no ingest yet: nothing of it lands
	if n, _ := j.Size(ctx, "u2"); n != 0 {
		t.Fatalf("u2's journal holds %d readings before u2's ingest ran", n)
	}
	run("u2")
	poll.Until(t, 10*time.Second, func() error {
		if n, _ := j.Size(ctx, "u2"); n != 3 {
			return fmt.Errorf("u2's journal holds %d readings, want 3", n)
		}
		return nil
	})
	if got := testutil.ToFloat64(counter(h, "tapproof_ingest_rejected_total")); got != 0 {
		t.Errorf("%v readings rejected; they were all valid and in order", got)
	}
}

// An operator (or a bug elsewhere) deleting the ingest consumer under a
// running session must not stop ingest: the session ends and Run creates
// the consumer again.
func TestConsumerDeletedUnderSession(t *testing.T) {
	a := newSensor(t, "dev-a")
	h := start(t, registry{"dev-a": a.dev})
	size := func(want uint64) func() error {
		return func() error {
			if n, _ := h.j.Size(t.Context(), "u1"); n != want {
				return fmt.Errorf("journal holds %d readings, want %d", n, want)
			}
			return nil
		}
	}
	h.publish(t, subj("dev-a"), a.sign(t, a.reading(1, 2)))
	poll.Until(t, 10*time.Second, size(1))
	if err := h.js.DeleteConsumer(t.Context(), journal.ReadingsStream, ingest.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	h.publish(t, subj("dev-a"), a.sign(t, a.reading(2, 2)))
	poll.Until(t, 15*time.Second, size(2))
}

// nirsSensor is a NIRS device of u1/s1.
func nirsSensor(t *testing.T, id string) sensor {
	s := newSensor(t, id)
	s.dev.Kind = tapproof.NIRS
	return s
}

// surrogate is a valid NIRS reading of s: turbidity in NTU.
func (s sensor) surrogate(seq uint64, ntu float64) tapproof.Reading {
	r := s.reading(seq, ntu)
	r.Analyte, r.Unit, r.Method, r.Model = tapproof.Turbidity, tapproof.NTU, tapproof.NIRS, "pls-snv-2026.1"
	return r
}

// beyondKind are readings that their devices may not make, between valid
// ones: a NIRS lead value, a lead sensor's reading signed as a lab result,
// and a lead sensor's reading claiming to be NIRS, each above the lead
// action level. asv is an ASV device, nirs a NIRS one. The valid readings
// after them are urgent too (above 12, in their units).
func beyondKind(asv, nirs sensor) (before, forbidden, after []tapproof.Reading) {
	nirsLead := nirs.surrogate(2, 40)
	nirsLead.Analyte, nirsLead.Unit = tapproof.Lead, tapproof.MicrogramsPerLiter
	asvLab := asv.reading(2, 40)
	asvLab.Method = tapproof.Lab
	asvNIRS := asv.reading(3, 40)
	asvNIRS.Method, asvNIRS.Model = tapproof.NIRS, "pls-snv-2026.1"
	return []tapproof.Reading{asv.reading(1, 3), nirs.surrogate(1, 0.3)},
		[]tapproof.Reading{nirsLead, asvLab, asvNIRS},
		[]tapproof.Reading{nirs.surrogate(3, 40), asv.reading(4, 33)}
}

// TestReadingBeyondKindRejected: a device may say only what its enrolled
// kind measures. A NIRS device's lead value, a lead sensor's "lab" result
// and a lead sensor's reading claiming NIRS are rejected as not_permitted,
// counted and published with their reason, never checked for alerts and
// never journaled, while the valid readings around them land.
func TestReadingBeyondKindRejected(t *testing.T) {
	asv, nirs := newSensor(t, "dev-a"), nirsSensor(t, "dev-n")
	h := start(t, registry{"dev-a": asv.dev, "dev-n": nirs.dev})
	sensors := map[string]sensor{"dev-a": asv, "dev-n": nirs}
	before, forbidden, after := beyondKind(asv, nirs)
	valid := slices.Concat(before, after)
	for _, r := range slices.Concat(before, forbidden, after) {
		h.publish(t, subj(r.Device), sensors[r.Device].sign(t, r))
	}
	poll.Until(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(rejected(h, tapproof.ReasonNotPermitted)); got != float64(len(forbidden)) {
			return fmt.Errorf("not_permitted rejections = %v, want %d", got, len(forbidden))
		}
		if got := testutil.ToFloat64(counter(h, "tapproof_ingest_accepted_total")); got != float64(len(valid)) {
			return fmt.Errorf("accepted = %v, want %d", got, len(valid))
		}
		return nil
	})
	if got := testutil.ToFloat64(counter(h, "tapproof_ingest_rejected_total")); got != float64(len(forbidden)) {
		t.Errorf("%v rejections in all, want only the %d not_permitted", got, len(forbidden))
	}
	h.alerts.mu.Lock()
	for _, r := range forbidden {
		if n := h.alerts.seen[r.Key()]; n != 0 {
			t.Errorf("%s %s reading of a device enrolled as %s checked for alerts %d times, want never", r.Method, r.Analyte, sensors[r.Device].dev.Kind, n)
		}
	}
	for _, r := range valid {
		if n := h.alerts.seen[r.Key()]; n != 1 {
			t.Errorf("valid reading %s checked for alerts %d times, want once", r.Key(), n)
		}
	}
	h.alerts.mu.Unlock()
	for _, r := range valid {
		if _, err := h.j.Reading(t.Context(), "u1", r.Device, r.Seq); err != nil {
			t.Errorf("valid reading %s not in the journal: %v", r.Key(), err)
		}
	}
	if n, _ := h.j.Size(t.Context(), "u1"); n != uint64(len(valid)) {
		t.Errorf("journal size = %d, want the %d valid readings", n, len(valid))
	}

	// Each is on tapproof.rejected.not_permitted with its reason and a
	// detail saying what was not permitted.
	cons, err := h.js.OrderedConsumer(t.Context(), journal.RejectedStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{journal.RejectedSubject + "." + string(tapproof.ReasonNotPermitted)}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(forbidden), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var details []string
	for m := range batch.Messages() {
		if got := m.Headers().Get(journal.HeaderReason); got != string(tapproof.ReasonNotPermitted) {
			t.Errorf("%s = %q, want %q", journal.HeaderReason, got, tapproof.ReasonNotPermitted)
		}
		details = append(details, m.Headers().Get(journal.HeaderDetail))
	}
	slices.Sort(details)
	want := []string{
		"device dev-a is enrolled as ASV, its reading claims method NIRS",
		"device dev-a sent a reading by method lab: lab results are lab samples signed by an enrolled lab",
		"method NIRS does not report lead",
	}
	if diff := cmp.Diff(want, details); diff != "" {
		t.Errorf("details of the not_permitted rejections (-want +got):\n%s", diff)
	}
}
