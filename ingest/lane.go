package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// Heads looks up the last journaled reading of a device. *journal.Journal
// implements it.
type Heads interface {
	Head(ctx context.Context, utility, device string) (journal.Head, error)
}

// LaneConfig configures the alert lane (RunLane).
type LaneConfig struct {
	// Urgent says which readings, taken at their word, can raise an
	// alert. Required.
	Urgent func(tapproof.Reading) bool
	// Rate (messages per second) and Burst bound what the lane looks at
	// of one device, as IntakeConfig's bound what the intake stores, so
	// that a device flooding the broker costs the lane nothing past its
	// rate. Zero values take DefaultPartyRate and DefaultPartyBurst.
	Rate  float64
	Burst int
}

// Lane defaults.
const (
	laneWorkers = 4
	laneBuffer  = 4096
	// laneHeadWait bounds the journal lookup that keeps the lane from
	// alerting on a reading the journal already refuses (an old sequence
	// number): past it the lane leaves the reading to the bulk path.
	laneHeadWait = 250 * time.Millisecond
)

// RunLane decides the alerts of urgent readings ahead of the bulk, until
// ctx is done. Under overload the readings stream holds a backlog that
// ingest works through in order; a reading that can raise an alert must not
// wait behind it, nor behind the intake's appends to that stream. The lane
// therefore listens on the intake's subjects itself, beside the intake's
// queue group, so the broker hands it each reading as it arrives. It
// verifies an urgent one exactly as ingest does (envelope, registry,
// signature, status, subject, firmware, values, the method and analyte the
// device's kind permits, and a sequence number above the device's last decided one) and raises its alert; it journals nothing
// and acknowledges nothing. When the bulk path reaches the same reading it
// decides it in full, and raising its alert again changes nothing: an
// alert's id is its reading's. A reading the lane drops or cannot check is
// therefore only later, never lost.
//
// The lane of For(u) listens to utility u's readings alone. Only the
// replica that runs ingest of a utility runs its lane, so one screening
// state machine sees each site's readings, and the sequence numbers ingest
// journals are known to the lane without asking the journal.
func (in *Ingester) RunLane(ctx context.Context, nc *nats.Conn, heads Heads, cfg LaneConfig) error {
	if cfg.Urgent == nil {
		return errors.New("alert lane: no urgency rule")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultPartyRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultPartyBurst
	}
	// Another replica may have led since this one last did: what it
	// journaled meanwhile is known only to the journal.
	in.decided.reset()
	msgs := make(chan *nats.Msg, laneBuffer)
	subject := IntakePrefix + "." + readingsToken + ".>"
	if in.cfg.Utility != "" {
		subject = IntakePrefix + "." + readingsToken + "." + in.cfg.Utility + ".>"
	}
	sub, err := nc.ChanSubscribe(subject, msgs)
	if err != nil {
		return fmt.Errorf("alert lane: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("alert lane: %w", err)
	}
	queues := make([]chan *nats.Msg, laneWorkers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *nats.Msg, laneBuffer/laneWorkers)
		// Each worker has its own devices, and so its own limits.
		limits := newLimiter(cfg.Rate, cfg.Burst)
		wg.Go(func() {
			for m := range queues[i] {
				in.laneCheck(ctx, m, heads, cfg.Urgent, limits)
			}
		})
	}
	defer func() {
		_ = sub.Unsubscribe()
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			// One device's readings go to one worker, in order.
			h := fnv.New32a()
			h.Write([]byte(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]))
			select {
			case queues[h.Sum32()%laneWorkers] <- m:
			default:
				in.metrics.lane.WithLabelValues(laneDropped).Inc() // the bulk path will decide it
			}
		}
	}
}

// readingsToken is the token of journal.ReadingsSubject after "tapproof.".
var readingsToken = strings.TrimPrefix(journal.ReadingsSubject, "tapproof.")

// Lane outcomes, the values of the result label of
// tapproof_ingest_lane_readings_total.
const (
	laneChecked = "checked" // verified and checked for alerts ahead of the bulk
	laneSkipped = "skipped" // refused by a check, or the journal did not answer in time: left to the bulk path
	laneDropped = "dropped" // the lane was full, or the device above its rate: left to the bulk path
)

// laneCheck checks one message the broker delivered to the lane, if it is
// an urgent reading.
func (in *Ingester) laneCheck(ctx context.Context, m *nats.Msg, heads Heads, urgent func(tapproof.Reading) bool, limits *limiter) {
	subject := "tapproof." + strings.TrimPrefix(m.Subject, IntakePrefix+".")
	if !limits.allow(subject) {
		in.metrics.lane.WithLabelValues(laneDropped).Inc()
		return
	}
	env, err := signed.Parse(m.Data, in.cfg.MaxSize)
	if err != nil || env.PayloadType() != tapproof.ReadingPayloadType {
		return // the bulk path rejects it with its reason
	}
	if r, err := env.Reading(); err != nil || !urgent(r) {
		return // not urgent, taken at its word: only the bulk path decides it
	}
	skip := func(why string, err error) {
		in.metrics.lane.WithLabelValues(laneSkipped).Inc()
		in.log.Debug("alert lane: left to the bulk path", slog.String("why", why), slog.Any("error", err))
	}
	r, _, rej := in.verify(subject, env)
	if rej != nil {
		skip("refused", rej)
		return
	}
	last, ok := in.decided.get(r.Utility, r.Device)
	if !ok {
		hctx, cancel := context.WithTimeout(ctx, laneHeadWait)
		h, err := heads.Head(hctx, r.Utility, r.Device)
		cancel()
		if err != nil {
			skip("sequence", err)
			return
		}
		in.decided.raise(r.Utility, r.Device, h.Seq)
		last = h.Seq
	}
	if r.Seq <= last {
		skip("sequence", fmt.Errorf("seq %d is not above %d", r.Seq, last))
		return
	}
	if err := in.alerter.Check(ctx, r); err != nil {
		skip("alert", err)
		return
	}
	in.decided.raise(r.Utility, r.Device, r.Seq)
	in.metrics.lane.WithLabelValues(laneChecked).Inc()
}
