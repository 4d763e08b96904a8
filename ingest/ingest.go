// Package ingest consumes signed readings, lab samples and invalidations
// from NATS JetStream, decides for each whether it is accepted, and if so
// appends it to its utility's journal and checks it for alerts.
//
// Per message: parse the DSSE envelope, look the device up, verify the
// signature with the device's enrolled key, check the subject against the
// payload, the firmware digest, the values and timestamps, that the reading's
// method is the device's enrolled kind and may report its analyte, and the
// per-device sequence number. A refused message is counted by reason, logged
// once, and published with its reason to tapproof.rejected.<reason>; it never
// reaches the log. The sensor's message is acknowledged only once the
// reading is durable in the journal (or its rejection is), so a crash at any
// point loses nothing; JetStream's optimistic concurrency on the journal
// makes a redelivered reading land once. Lab samples and invalidations follow
// the same rules with their own checks; see labsamples.go.
//
// ingest must not import anchor, alerts, influx, dashboards or httpapi.
package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// Registry looks up enrolled devices.
type Registry interface {
	Device(id string) (tapproof.Device, bool)
}

// Journal is where accepted readings, lab samples and invalidations go.
type Journal interface {
	Head(ctx context.Context, utility, device string) (journal.Head, error)
	Reading(ctx context.Context, utility, device string, seq uint64) (journal.Entry, error)
	AppendReading(ctx context.Context, r tapproof.Reading, leaf []byte, expect uint64) (uint64, error)

	LabSample(ctx context.Context, utility, lab, sampleID string) (journal.Entry, error)
	AppendLabSample(ctx context.Context, s tapproof.LabSample, leaf []byte, opts ...journal.AppendOption) (uint64, error)
	Invalidations(ctx context.Context, utility, lab, sampleID string, after uint64) ([]journal.Entry, error)
	AppendInvalidation(ctx context.Context, inv tapproof.Invalidation, leaf []byte, opts ...journal.AppendOption) (uint64, error)
}

// Alerter checks an accepted reading or lab sample for alerts and raises
// them. It must be idempotent: it is called again when a message is
// redelivered.
type Alerter interface {
	Check(ctx context.Context, r tapproof.Reading) error
	// CheckSample checks lab sample s, accepted at leaf index of its
	// utility's log.
	CheckSample(ctx context.Context, s tapproof.LabSample, index uint64) error
}

// Defaults.
const (
	DefaultDurable       = "tapproof-ingest"
	DefaultWorkers       = 64
	DefaultMaxAckPending = 4096
	DefaultAckWait       = 30 * time.Second
)

// Config configures an Ingester. Zero values take the defaults.
type Config struct {
	Stream string // readings stream; journal.ReadingsStream
	// Utility, if set, limits the Ingester to one utility's readings, lab
	// samples and invalidations, through a consumer of its own (see For).
	Utility       string
	Durable       string        // durable consumer name; DefaultDurable, or DefaultDurable-<utility>
	Workers       int           // parallel workers, mostly waiting on JetStream; each device is always handled by the same one
	MaxAckPending int           // bound on unacknowledged readings in flight
	AckWait       time.Duration // before JetStream redelivers an unacknowledged reading
	MaxSize       int           // largest envelope accepted; signed.MaxEnvelopeSize
	ClockSkew     time.Duration // allowed future skew of sampled_at; tapproof.DefaultClockSkew
	// Labs and Reviewers hold the keys of certified laboratories and of
	// state reviewers. If nil, every lab sample or invalidation is
	// rejected as unknown_signer.
	Labs      Labs
	Reviewers Reviewers
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = journal.ReadingsStream
	}
	if c.Durable == "" {
		c.Durable = DefaultDurable
		if c.Utility != "" {
			c.Durable = DurableFor(c.Utility)
		}
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxSize <= 0 {
		c.MaxSize = signed.MaxEnvelopeSize
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = tapproof.DefaultClockSkew
	}
}

// Ingester is the readings consumer.
type Ingester struct {
	cfg      Config
	js       jetstream.JetStream
	registry Registry
	journal  Journal
	alerter  Alerter
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
	decided  decided // shared with the alert lane
}

// New returns an Ingester. metrics may be nil.
func New(cfg Config, js jetstream.JetStream, reg Registry, j Journal, a Alerter, m *Metrics, log *slog.Logger) *Ingester {
	cfg.setDefaults()
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Ingester{cfg: cfg, js: js, registry: reg, journal: j, alerter: a, metrics: m, log: log, now: time.Now}
}

// For returns an Ingester of utility's messages alone, sharing in's
// configuration, registry, journal, alerter and metrics. Replicas that
// share the work by utility each run For(u) for the utilities they lead:
// one consumer per utility, filtered to its subjects, so that a
// utility's messages are decided by one replica at a time and each
// device's readings in the order they arrived.
func (in *Ingester) For(utility string) *Ingester {
	cfg := in.cfg
	cfg.Utility, cfg.Durable = utility, DurableFor(utility)
	return &Ingester{cfg: cfg, js: in.js, registry: in.registry, journal: in.journal, alerter: in.alerter, metrics: in.metrics, log: in.log, now: in.now}
}

// DurableFor names the durable consumer of utility's messages.
func DurableFor(utility string) string { return DefaultDurable + "-" + utility }

// Subjects are the readings stream's subjects of utility's messages.
func Subjects(utility string) []string {
	return []string{
		journal.ReadingsSubject + "." + utility + ".>",
		journal.LabSamplesSubject + "." + utility + ".>",
		journal.InvalidationsSubject + "." + utility + ".>",
	}
}

// Run consumes readings until ctx is done, then lets in-flight readings
// finish and returns. It waits for its consumer as long as JetStream
// refuses it: while the stream is electing a leader, or while another
// consumer still covers its subjects (see consumer).
func (in *Ingester) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		cons, err := in.consumer(ctx)
		if err != nil {
			if ctx.Err() == nil {
				in.log.Warn("ingest: consumer unavailable; will retry", slog.String("consumer", in.cfg.Durable), slog.Any("error", err))
				sleep(ctx, time.Second)
			}
			continue
		}
		if err := in.session(ctx, cons); err != nil {
			in.log.Warn("ingest: starting again at the oldest unacknowledged message", slog.String("consumer", in.cfg.Durable), slog.Any("why", err))
		}
	}
	return nil
}

// errGap ends a session whose flow skipped a delivery.
var errGap = errors.New("a delivery never arrived")

// session decides cons's messages until ctx is done, or until a delivery
// is missing from the flow: JetStream delivered a message this consumer
// never received (lost in flight when a server or the consumer's leader
// went away), and would deliver it again only after its ack wait, behind
// the device's later readings, which ingest would then take for a replay.
// The session then stops taking messages, lets the workers finish what
// they hold, and returns errGap; Run opens the consumer again, which
// starts at the oldest unacknowledged message (journal.Resume).
func (in *Ingester) session(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(min(in.cfg.MaxAckPending, 1000)))
	if err != nil {
		return fmt.Errorf("ingest consume: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	queues := make([]chan jetstream.Msg, in.cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan jetstream.Msg, 4)
		wg.Go(func() {
			w := &worker{in: in, heads: map[string]journal.Head{}}
			for m := range queues[i] {
				w.handle(ctx, m)
			}
		})
	}
	defer func() {
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()
	delivered := cons.CachedInfo().Delivered.Consumer
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			in.log.Warn("ingest: next message", slog.Any("error", err))
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			in.log.Warn("ingest: message metadata", slog.Any("error", err))
			continue
		}
		if meta.Sequence.Consumer != delivered+1 {
			return fmt.Errorf("%w: delivery %d follows %d", errGap, meta.Sequence.Consumer, delivered)
		}
		delivered = meta.Sequence.Consumer
		queues[shard(m.Subject(), len(queues))] <- m
	}
}

// consumer returns the durable consumer this Ingester reads. A utility's
// consumer replaces the single consumer of every utility that replicas
// before version 0.11 shared (DefaultDurable): a work-queue stream lets no
// two consumers cover one subject, so that one is deleted first. Messages
// it had delivered and not acknowledged stay in the stream, and the
// utility's consumer starts at the first of them.
func (in *Ingester) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       in.cfg.Durable,
		Description:   "tapproof ingest: verify, validate, journal",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       in.cfg.AckWait,
		MaxAckPending: in.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if in.cfg.Utility != "" {
		cfg.Description = "tapproof ingest of " + in.cfg.Utility + ": verify, validate, journal"
		cfg.FilterSubjects = Subjects(in.cfg.Utility)
		err := in.js.DeleteConsumer(ctx, in.cfg.Stream, DefaultDurable)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("ingest consumer: retire %s: %w", DefaultDurable, err)
		}
	}
	cons, err := journal.Resume(ctx, in.js, in.cfg.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("ingest consumer: %w", err)
	}
	return cons, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// shard sends every message of one device to the same worker, so a device's
// readings are decided in the order they arrive.
func shard(subject string, n int) int {
	h := fnv.New32a()
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		subject = subject[i+1:]
	}
	h.Write([]byte(subject))
	return int(h.Sum32() % uint32(n))
}

// worker decides readings one at a time. heads caches the journal head of
// each device this worker has seen; the journal's optimistic concurrency
// catches a stale cache.
type worker struct {
	in    *Ingester
	heads map[string]journal.Head
}

// handle decides one message and acknowledges it once its outcome is
// durable. Transient failures are retried in place, keeping the device's
// order, while JetStream is told the message is still in progress.
func (w *worker) handle(ctx context.Context, m jetstream.Msg) {
	start := time.Now()
	backoff := 50 * time.Millisecond
	for {
		err := w.decide(ctx, m)
		if err == nil {
			w.in.metrics.seconds.Observe(time.Since(start).Seconds())
			return
		}
		if ctx.Err() != nil {
			return // unacknowledged: redelivered after restart
		}
		w.in.metrics.errors.Inc()
		w.in.log.Warn("ingest: will retry", slog.String("subject", m.Subject()), slog.Any("error", err))
		_ = m.InProgress()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// decide returns nil once the message is accepted or rejected durably and
// acknowledged, or an error if that should be tried again.
func (w *worker) decide(ctx context.Context, m jetstream.Msg) error {
	env, err := signed.Parse(m.Data(), w.in.cfg.MaxSize)
	if err != nil {
		return w.reject(ctx, m, asRejection(err))
	}
	switch env.PayloadType() {
	case tapproof.LabSamplePayloadType:
		return w.decideLabSample(ctx, m, env)
	case tapproof.InvalidationPayloadType:
		return w.decideInvalidation(ctx, m, env)
	}
	r, dev, rej := w.verify(m, env)
	if rej != nil {
		return w.reject(ctx, m, rej)
	}
	for attempt := 0; ; attempt++ {
		h, err := w.head(ctx, r.Utility, r.Device)
		if err != nil {
			return err
		}
		if h.Revoked {
			// The registry this replica reads is a copy that may not yet
			// show the revocation; the journal is the record, and a
			// revocation there makes the append below fail.
			return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonDeviceDisabled, "device %s is revoked in the log", r.Device))
		}
		digest := sha256.Sum256(m.Data())
		if r.Seq <= h.Seq {
			rej, err := w.old(ctx, r, h, digest)
			if err != nil {
				return err
			}
			if rej.Reason == tapproof.ReasonDuplicate {
				// The same reading again: it may have been accepted by a
				// run that crashed before raising its alert.
				if err := w.in.alerter.Check(ctx, r); err != nil {
					return fmt.Errorf("alert: %w", err)
				}
			}
			return w.reject(ctx, m, rej)
		}
		// The alert goes out before the reading is journaled: it waits for
		// nothing but the verdict. Its id is the reading's, so raising it
		// again after a crash or a lost race changes nothing.
		if err := w.in.alerter.Check(ctx, r); err != nil {
			return fmt.Errorf("alert: %w", err)
		}
		idx, err := w.in.journal.AppendReading(ctx, r, m.Data(), h.StreamSeq)
		if errors.Is(err, tapproof.ErrConflict) && attempt < 3 {
			delete(w.heads, r.Device)
			continue
		}
		if err != nil {
			return err
		}
		w.heads[r.Device] = journal.Head{Seq: r.Seq, Digest: digest, StreamSeq: idx + 1}
		w.in.decided.raise(r.Utility, r.Device, r.Seq)
		if err := m.Ack(); err != nil {
			// Redelivery will find the reading in the journal.
			w.in.log.Warn("ingest: ack", slog.Any("error", err))
		}
		w.in.metrics.accepted.WithLabelValues(string(r.Analyte), string(dev.Kind)).Inc()
		return nil
	}
}

func (w *worker) head(ctx context.Context, utility, device string) (journal.Head, error) {
	if h, ok := w.heads[device]; ok {
		return h, nil
	}
	h, err := w.in.journal.Head(ctx, utility, device)
	if err != nil {
		return h, fmt.Errorf("device head: %w", err)
	}
	w.heads[device] = h
	w.in.decided.raise(utility, device, h.Seq)
	return h, nil
}

// old classifies a reading whose sequence number is not above the device's
// last accepted one.
func (w *worker) old(ctx context.Context, r tapproof.Reading, h journal.Head, digest [32]byte) (*tapproof.Rejection, error) {
	prev := h.Digest
	if r.Seq != h.Seq {
		e, err := w.in.journal.Reading(ctx, r.Utility, r.Device, r.Seq)
		if errors.Is(err, tapproof.ErrNotFound) {
			return tapproof.Reject(tapproof.ReasonReplayed, "seq %d is below the last accepted %d of %s", r.Seq, h.Seq, r.Device), nil
		}
		if err != nil {
			return nil, err
		}
		prev = sha256.Sum256(e.Bytes)
	}
	if prev == digest {
		return tapproof.Reject(tapproof.ReasonDuplicate, "%s already accepted", r.Key()), nil
	}
	return tapproof.Reject(tapproof.ReasonEquivocation, "a different reading %s was already accepted", r.Key()), nil
}

// verify runs every check of a reading that needs no state beyond the
// registry.
func (w *worker) verify(m jetstream.Msg, env *signed.Envelope) (tapproof.Reading, tapproof.Device, *tapproof.Rejection) {
	return w.in.verify(m.Subject(), env)
}

// verify runs every check of a reading received on subject that needs no
// state beyond the registry.
func (in *Ingester) verify(subject string, env *signed.Envelope) (tapproof.Reading, tapproof.Device, *tapproof.Rejection) {
	var (
		r   tapproof.Reading
		dev tapproof.Device
		err error
	)
	if r, err = env.Reading(); err != nil {
		return r, dev, asRejection(err)
	}
	dev, ok := in.registry.Device(r.Device)
	if !ok {
		return r, dev, tapproof.Reject(tapproof.ReasonUnknownDevice, "device %q is not enrolled", r.Device)
	}
	// The signature is checked before anything the payload claims is
	// trusted, including its sequence number.
	if err := env.Verify(context.Background(), dev.PublicKey); err != nil {
		return r, dev, asRejection(err)
	}
	if dev.Status != tapproof.DeviceActive {
		return r, dev, tapproof.Reject(tapproof.ReasonDeviceDisabled, "device %s is %s", dev.ID, dev.Status)
	}
	want := strings.Join([]string{journal.ReadingsSubject, r.Utility, r.Site, r.Device}, ".")
	if subject != want {
		return r, dev, tapproof.Reject(tapproof.ReasonSubjectMismatch, "subject %q, payload says %q", subject, want)
	}
	if r.Utility != dev.Utility || r.Site != dev.Site {
		return r, dev, tapproof.Reject(tapproof.ReasonSubjectMismatch, "device %s is enrolled at %s/%s, reading claims %s/%s",
			dev.ID, dev.Utility, dev.Site, r.Utility, r.Site)
	}
	if !strings.EqualFold(r.Firmware, dev.Firmware) {
		return r, dev, tapproof.Reject(tapproof.ReasonFirmware, "device %s runs firmware %.12s…, enrolled %.12s…", dev.ID, r.Firmware, dev.Firmware)
	}
	r, err = r.Normalize(in.now(), in.cfg.ClockSkew)
	if err != nil {
		return r, dev, asRejection(err)
	}
	// What the device may say: its kind's method and that method's
	// analytes. The alert lane verifies with this function too, so a NIRS
	// lead value or a sensor's "lab" result never reaches the alerter.
	if err := r.PermittedFor(dev.Kind); err != nil {
		return r, dev, asRejection(err)
	}
	return r, dev, nil
}

func asRejection(err error) *tapproof.Rejection {
	var rej *tapproof.Rejection
	if errors.As(err, &rej) {
		return rej
	}
	return tapproof.Reject(tapproof.ReasonMalformed, "%v", err)
}

// maxRejectedBody bounds what is kept of a rejected message.
const maxRejectedBody = 4 << 10

// reject publishes the message with its reason to tapproof.rejected.<reason>
// and acknowledges it. The publish is deduplicated on the original message's
// stream sequence, so a redelivery does not record it twice.
func (w *worker) reject(ctx context.Context, m jetstream.Msg, rej *tapproof.Rejection) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("message metadata: %w", err)
	}
	body := m.Data()
	if len(body) > maxRejectedBody {
		body = body[:maxRejectedBody]
	}
	out := &nats.Msg{
		Subject: journal.RejectedSubject + "." + string(rej.Reason),
		Data:    body,
		Header: nats.Header{
			journal.HeaderReason:  []string{string(rej.Reason)},
			journal.HeaderDetail:  []string{rej.Detail},
			journal.HeaderSubject: []string{m.Subject()},
		},
	}
	id := "rejected-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	if _, err := w.in.js.PublishMsg(ctx, out, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish rejection: %w", err)
	}
	if err := m.Ack(); err != nil {
		w.in.log.Warn("ingest: ack", slog.Any("error", err))
	}
	w.in.metrics.rejected.WithLabelValues(string(rej.Reason)).Inc()
	w.in.log.Info("ingest: rejected", slog.String("reason", string(rej.Reason)),
		slog.String("subject", m.Subject()), slog.String("detail", rej.Detail))
	return nil
}
