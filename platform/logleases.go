package platform

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// logLeases spreads the utilities' logs over the replicas: each log (its
// journal's anchor, InfluxDB and exceedance cursors, its checkpointer,
// witnessing and audit) runs on the one replica holding the lease
// log.<utility>. Every replica competes for every log's lease, but one
// that already leads more waits longer before each try, and one that leads
// more than its share (the logs divided among the replicas present, rounded
// up) hands one log over every so often, so the logs spread out and a
// replica that dies has its logs taken over by the others within the
// lease's TTL.
//
// Exactly once holds as with one leader: every sink is idempotent (leaves
// at fixed indices, points by series and time, checkpoints appended only on
// the last one the writer saw), so the moment two replicas overlap during
// a handover stores nothing twice.
type logLeases struct {
	p      *app
	holder string
	ttl    time.Duration
	run    func(ctx context.Context, ul *utilityLog) error
	leader *prometheus.GaugeVec // tapproof_log_leader{log}
	log    *slog.Logger

	mu   sync.Mutex
	held map[string]chan struct{} // utility -> closed to hand the log over
}

// runAll competes for the lease of every log, including logs created later
// by any replica, until ctx is done.
func (ls *logLeases) runAll(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ls.p.journal.Announce(ctx, ls.holder, ls.ttl) })
	g.Go(func() error { return ls.rebalance(ctx) })
	competing := map[string]bool{}
	for {
		infos, err := ls.p.journal.Logs(ctx)
		if err == nil {
			for _, li := range infos {
				if competing[li.Utility] {
					continue
				}
				ul, err := ls.p.utilityLog(ctx, li.Utility)
				if err != nil {
					ls.log.Warn("log unavailable", slog.String("utility", li.Utility), slog.Any("error", err))
					continue
				}
				lease, err := ls.p.journal.Lease(ctx, "log."+li.Utility, ls.holder, ls.ttl)
				if err != nil {
					ls.log.Warn("log lease unavailable", slog.String("utility", li.Utility), slog.Any("error", err))
					continue
				}
				lease.Handicap = ls.handicap
				competing[li.Utility] = true
				ls.leader.WithLabelValues(li.Utility).Set(0) // competing, not yet leading
				g.Go(func() error {
					return lease.Lead(ctx, func(ctx context.Context) error { return ls.lead(ctx, ul) }, ls.elected(li.Utility))
				})
			}
		}
		if !sleepCtx(ctx, 2*time.Second) {
			return g.Wait()
		}
	}
}

// lead runs ul's log while this replica holds its lease, until the lease
// is lost or the log is handed over.
func (ls *logLeases) lead(ctx context.Context, ul *utilityLog) error {
	u := ul.info.Utility
	yield := make(chan struct{})
	ls.mu.Lock()
	ls.held[u] = yield
	ls.mu.Unlock()
	defer func() {
		ls.mu.Lock()
		if ls.held[u] == yield {
			delete(ls.held, u)
		}
		ls.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-yield:
			ls.log.Info("handing a log over to a replica that leads fewer", slog.String("utility", ul.info.Utility))
			cancel()
		case <-ctx.Done():
		}
	}()
	ls.log.Info("leading a log", slog.String("utility", ul.info.Utility))
	err := ls.run(ctx, ul)
	if ctx.Err() != nil {
		return nil // lost or handed over: the lease is released, the others compete
	}
	if err != nil {
		failed(ctx, ls.log, "log "+ul.info.Utility, err)
	}
	return nil
}

// failed logs a leader's failure, a JetStream that is briefly unavailable
// while a cluster heals say, and waits a moment before the lease is
// released and competed for again: a replica whose leading fails hands the
// work over rather than stop.
func failed(ctx context.Context, log *slog.Logger, what string, err error) {
	log.Warn("leading failed; will hand over and try again", slog.String("work", what), slog.Any("error", err))
	sleepCtx(ctx, 2*time.Second)
}

func (ls *logLeases) elected(utility string) func(bool) {
	return func(on bool) {
		ls.leader.WithLabelValues(utility).Set(map[bool]float64{false: 0, true: 1}[on])
	}
}

// handicap is how long this replica waits before trying for a lease: half
// a TTL for every log it leads, longer than the others wait between tries.
func (ls *logLeases) handicap() time.Duration {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return time.Duration(len(ls.held)) * ls.ttl / 2
}

// rebalance hands one log over, every two TTLs, while this replica leads
// more than its share.
func (ls *logLeases) rebalance(ctx context.Context) error {
	for sleepCtx(ctx, 2*ls.ttl) {
		logs, err := ls.p.journal.Logs(ctx)
		if err != nil {
			continue
		}
		replicas, err := ls.p.journal.Replicas(ctx)
		if err != nil || replicas == 0 {
			continue
		}
		share := (len(logs) + replicas - 1) / replicas
		ls.mu.Lock()
		if len(ls.held) > share {
			u := slices.Max(slices.Collect(maps.Keys(ls.held)))
			close(ls.held[u])
			delete(ls.held, u) // counted out of the handicap from now on
		}
		ls.mu.Unlock()
	}
	return nil
}

// forget is what the stall watch must drop for a log this replica no
// longer runs.
func (w *stallWatch) forget(log string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.consumers {
		if k[0] == log {
			delete(w.consumers, k)
		}
	}
	w.gauge.DeletePartialMatch(prometheus.Labels{"log": log})
}
