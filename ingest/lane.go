package ingest

import (
	"context"
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

// LanePrefix is where, in tapproof's account, the intake copies urgent
// readings (IntakeConfig.Urgent) for the alert lane: tapproof.lane.<the
// subject the device published on>. Devices cannot publish there.
const LanePrefix = "tapproof.lane"

// Heads looks up the last journaled reading of a device. *journal.Journal
// implements it.
type Heads interface {
	Head(ctx context.Context, utility, device string) (journal.Head, error)
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
// wait behind it. The intake therefore copies each urgent reading here as
// well as to the stream. The lane verifies it exactly as ingest does
// (envelope, registry, signature, status, subject, firmware, values, and a
// sequence number above the device's last journaled one) and raises its
// alert; it journals nothing and acknowledges nothing. When the bulk path
// reaches the same reading it decides it in full, and raising its alert
// again changes nothing: an alert's id is its reading's. A copy the lane
// drops or cannot check is therefore only later, never lost.
//
// Only the replica that runs ingest runs the lane, so one screening state
// machine sees every reading.
func (in *Ingester) RunLane(ctx context.Context, nc *nats.Conn, heads Heads) error {
	msgs := make(chan *nats.Msg, laneBuffer)
	sub, err := nc.ChanSubscribe(LanePrefix+".>", msgs)
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
		wg.Go(func() {
			for m := range queues[i] {
				in.laneCheck(ctx, m, heads)
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

// Lane outcomes, the values of the result label of
// tapproof_ingest_lane_readings_total.
const (
	laneChecked = "checked" // verified and checked for alerts ahead of the bulk
	laneSkipped = "skipped" // refused by a check, or the journal did not answer in time: left to the bulk path
	laneDropped = "dropped" // the lane was full: left to the bulk path
)

func (in *Ingester) laneCheck(ctx context.Context, m *nats.Msg, heads Heads) {
	skip := func(why string, err error) {
		in.metrics.lane.WithLabelValues(laneSkipped).Inc()
		in.log.Debug("alert lane: left to the bulk path", slog.String("why", why), slog.Any("error", err))
	}
	subject := strings.TrimPrefix(m.Subject, LanePrefix+".")
	env, err := signed.Parse(m.Data, in.cfg.MaxSize)
	if err != nil || env.PayloadType() != tapproof.ReadingPayloadType {
		skip("not a reading", err)
		return
	}
	r, _, rej := in.verify(subject, env)
	if rej != nil {
		skip("refused", rej)
		return
	}
	hctx, cancel := context.WithTimeout(ctx, laneHeadWait)
	h, err := heads.Head(hctx, r.Utility, r.Device)
	cancel()
	if err != nil || r.Seq <= h.Seq {
		skip("sequence", err)
		return
	}
	if err := in.alerter.Check(ctx, r); err != nil {
		skip("alert", err)
		return
	}
	in.metrics.lane.WithLabelValues(laneChecked).Inc()
}
