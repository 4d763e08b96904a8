package platform

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/journal"
)

// Stray sweep bounds.
const (
	strayInterval = 10 * time.Second
	strayBatch    = 16              // utilities swept per interval
	strayDrain    = 2 * time.Minute // longest one utility's sweep runs
)

// sweepStrays decides, every strayInterval, the messages that wait in the
// readings stream for a utility with no log. Each utility's messages are
// ingested by the replica leading its log (see logLeases), and a utility
// with no log has none; yet a lab or a reviewer may name any utility, so
// such messages would wait for ever. The sweep runs that utility's ingest
// until its messages are decided: rejected, as naming a utility with no
// log, or accepted, should the log appear meanwhile. It holds the
// utility's log lease while it does, so it never runs beside the log's own
// ingest. It returns when ctx is done.
func sweepStrays(ctx context.Context, p *app, in *ingest.Ingester, holder string) error {
	for sleepCtx(ctx, strayInterval) {
		waiting, err := p.journal.Waiting(ctx)
		if err != nil {
			p.log.Warn("stray sweep: readings stream", slog.Any("error", err))
			continue
		}
		logs, err := p.journal.Logs(ctx)
		if err != nil {
			p.log.Warn("stray sweep: logs", slog.Any("error", err))
			continue
		}
		swept := 0
		for _, u := range waiting {
			if swept == strayBatch || ctx.Err() != nil {
				break
			}
			if slices.ContainsFunc(logs, func(li journal.LogInfo) bool { return li.Utility == u }) {
				continue
			}
			if !tapproof.ValidID(u) {
				// Only tapproof's own credentials publish past the intake,
				// which refuses such subjects.
				p.log.Warn("stray sweep: messages for an invalid utility id wait in the readings stream", slog.String("utility", u))
				continue
			}
			swept++
			if err := sweepStray(ctx, p, in.For(u), u, holder); err != nil {
				p.log.Warn("stray sweep", slog.String("utility", u), slog.Any("error", err))
			}
		}
	}
	return nil
}

// sweepStray runs in, the ingest of utility, under the utility's log lease
// until it has nothing waiting or strayDrain has passed, then deletes its
// consumer.
func sweepStray(ctx context.Context, p *app, in *ingest.Ingester, utility, holder string) error {
	lease, err := p.journal.Lease(ctx, "log."+utility, holder, journal.DefaultLeaseTTL)
	if err != nil {
		return err
	}
	_, err = lease.Once(ctx, func(ctx context.Context) error {
		p.log.Info("stray sweep: deciding messages for a utility with no log", slog.String("utility", utility))
		ctx, cancel := context.WithTimeout(ctx, strayDrain)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx) }()
		for sleepCtx(ctx, 500*time.Millisecond) {
			if pr, err := p.journal.IngestProgress(ctx, ingest.DurableFor(utility)); err == nil && pr.Pending == 0 {
				break
			}
		}
		cancel()
		if err := <-done; err != nil {
			return err
		}
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer dcancel()
		err := p.journal.JetStream().DeleteConsumer(dctx, journal.ReadingsStream, ingest.DurableFor(utility))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return err
	})
	return err
}
