package platform

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/influx"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// logRunner runs one utility's work: ingest of its messages and its alert
// lane, and the consumers of its journal (the Trillian anchor, the
// InfluxDB writer, the exceedance watch and the checkpointer), and reports
// their lag.
type logRunner struct {
	ul *utilityLog
	// ingest, if set, is ingest of every utility, of which the runner runs
	// For(utility) and its alert lane on lane.
	ingest  *ingest.Ingester
	lane    laneParts
	journal *journal.Journal
	influx  *influx.Writer
	// audit, if set, is InfluxDB as the scheduled audit reads it.
	audit audit.Store
	// exceedances raises the system action level exceedance alerts.
	exceedances *exceedanceWatch
	metrics     *platformMetrics
	stalls      *stallWatch
	cfg         Config
	log         *slog.Logger
}

func (r *logRunner) start(ctx context.Context, g *errgroup.Group) {
	if r.ingest != nil {
		u := r.ul.info.Utility
		in := r.ingest.For(u)
		g.Go(func() error { return in.Run(ctx) })
		g.Go(func() error { return in.RunLane(ctx, r.lane.nc, r.lane.heads, r.lane.cfg) })
		g.Go(func() error {
			defer r.metrics.ingestPending.DeleteLabelValues(u)
			watchIngest(ctx, r.journal, u, r.metrics, r.stalls)
			return nil
		})
	}
	batch := max(r.cfg.BatchSize, anchor.DefaultBatchSize)
	r.drain(ctx, g, "anchor", batch, r.anchor)
	r.drain(ctx, g, "influx", 5000, r.writeInflux)
	r.drain(ctx, g, "exceedance", 500, r.raiseExceedances, journal.KindLabSample, journal.KindInvalidation)
	var signed chan struct{}
	if r.cfg.WitnessPolicy != nil {
		signed = make(chan struct{}, 1)
		g.Go(func() error { return r.witnessing(ctx, r.cfg.WitnessPolicy, signed) })
	}
	g.Go(func() error { return r.checkpoints(ctx, signed) })
	if r.audit != nil {
		served := r.journal.Checkpoints(r.ul.info.Utility)
		if r.cfg.WitnessPolicy != nil {
			served = r.journal.WitnessedCheckpoints(r.ul.info.Utility)
		}
		g.Go(func() error { return r.auditing(ctx, r.audit, served) })
	}
}

func (r *logRunner) onErr(ctx context.Context, sink string) func(error) {
	return func(err error) {
		if ctx.Err() != nil {
			return
		}
		r.metrics.sinkErrors.WithLabelValues(sink).Inc()
		r.log.Warn("sink failed; will retry", slog.String("sink", sink), slog.String("utility", r.ul.info.Utility), slog.Any("error", err))
	}
}

// drain runs one durable cursor over the journal (or over its entries of
// kinds), and samples its backlog.
func (r *logRunner) drain(ctx context.Context, g *errgroup.Group, name string, max int, sink journal.Sink, kinds ...journal.Kind) {
	g.Go(func() error {
		c, err := r.journal.Cursor(ctx, r.ul.info.Utility, name, kinds...)
		for err != nil {
			r.onErr(ctx, name)(err)
			if !sleepCtx(ctx, time.Second) {
				return nil
			}
			c, err = r.journal.Cursor(ctx, r.ul.info.Utility, name, kinds...)
		}
		sink := r.setAside(name, sink)
		g.Go(func() error {
			gauge := r.metrics.pending.WithLabelValues(r.ul.info.Utility, name)
			// Once another replica leads the log, its backlog is reported
			// there; a stale figure here would keep a backlog alert firing.
			defer r.metrics.pending.DeleteLabelValues(r.ul.info.Utility, name)
			for sleepCtx(ctx, time.Second) {
				if p, err := c.Progress(ctx); err == nil {
					gauge.Set(float64(p.Pending))
					r.stalls.observe(r.ul.info.Utility, name, p, time.Now())
				}
			}
			return nil
		})
		return c.Drain(ctx, max, sink, r.onErr(ctx, name))
	})
}

// setAside wraps sink so that entries the journal set aside never reach
// it: counted, logged by the anchor, and, for the anchor only, replaced by
// the tombstone leaf that keeps their index in the log.
func (r *logRunner) setAside(name string, sink journal.Sink) journal.Sink {
	return func(ctx context.Context, es []journal.Entry) error {
		kept := es[:0:0]
		for _, e := range es {
			if e.SetAside == "" {
				kept = append(kept, e)
				continue
			}
			r.metrics.setAside.WithLabelValues(name, e.SetAside).Inc()
			if name == "anchor" {
				r.log.Warn("journal entry set aside: a tombstone takes its index in the log; the entry stays in the journal for inspection",
					slog.String("utility", r.ul.info.Utility), slog.Uint64("index", e.Index), slog.String("reason", e.SetAside),
					slog.String("stream", journal.LogStreamName(r.ul.info.Utility)), slog.Uint64("stream_seq", e.Index+1))
				e.Bytes = e.LogLeaf()
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		return sink(ctx, kept)
	}
}

func (r *logRunner) anchor(ctx context.Context, es []journal.Entry) error {
	entries := make([]tapproof.Leaf, len(es))
	for i, e := range es {
		entries[i] = e.Leaf
	}
	if err := r.ul.log.Append(ctx, entries); err != nil {
		return err
	}
	r.metrics.sinkEntries.WithLabelValues("anchor").Add(float64(len(es)))
	return nil
}

func (r *logRunner) raiseExceedances(ctx context.Context, es []journal.Entry) error {
	if err := r.exceedances.handle(ctx, r.ul.info.Utility, es); err != nil {
		return err
	}
	r.metrics.sinkEntries.WithLabelValues("exceedance").Add(float64(len(es)))
	return nil
}

func (r *logRunner) writeInflux(ctx context.Context, es []journal.Entry) error {
	var rs []tapproof.Accepted
	for _, e := range es {
		var (
			rd  tapproof.Reading
			err error
		)
		switch e.Kind {
		case journal.KindReading:
			rd, err = signed.LoggedReading(e.Bytes)
		case journal.KindLabSample:
			// Lab samples are points too (method "lab"), for the compliance
			// dashboard; the log stays the source of the official figures.
			var s tapproof.LabSample
			if s, err = signed.LoggedLabSample(e.Bytes); err == nil {
				rd = s.Reading(e.Index)
			}
		default:
			continue
		}
		if err != nil {
			// Sealed by tapproof, so accepted once: a leaf that no longer
			// decodes is set aside, never retried for ever.
			r.metrics.setAside.WithLabelValues("influx", tapproof.SetAsideUndecodable).Inc()
			r.log.Warn("influx: journal entry set aside", slog.String("utility", r.ul.info.Utility), slog.Uint64("index", e.Index), slog.Any("error", err))
			continue
		}
		rs = append(rs, tapproof.Accepted{Reading: rd, Index: e.Index})
	}
	if len(rs) == 0 {
		return nil
	}
	if err := r.influx.Write(ctx, rs); err != nil {
		return err
	}
	r.metrics.sinkEntries.WithLabelValues("influx").Add(float64(len(rs)))
	return nil
}

// checkpoints signs a checkpoint whenever the tree has grown
// (anchor.Log.RunCheckpointer), and records the log's size, the
// checkpoint's time, how long the entries it newly covers waited for it,
// and how old the oldest entry not yet covered is. A tree that does not
// extend what was signed, or that holds a leaf tapproof did not append
// (checked against the leaves the anchor appended, and the journal for
// those it appended before this replica led the log), stops this log's
// checkpoints for good: the error holds the evidence, the refusal is
// counted, and /readyz fails until a person has looked.
//
// After each new checkpoint it pokes signed, if not nil, without waiting.
func (r *logRunner) checkpoints(ctx context.Context, signed chan<- struct{}) error {
	utility := r.ul.info.Utility
	var covered uint64 // size of the latest checkpoint
	if cp, err := r.ul.checkpoints.LatestCheckpoint(ctx, r.ul.info.Origin); err == nil && cp != nil {
		if c, err := anchor.OpenCheckpoint(cp, r.ul.verifier); err == nil {
			covered = c.Size
		}
	}
	tick := func(cp []byte) {
		if cp != nil {
			select {
			case signed <- struct{}{}:
			default:
			}
			if c, err := anchor.OpenCheckpoint(cp, r.ul.verifier); err == nil {
				now := time.Now()
				if c.Size > covered {
					if t, err := r.journal.EntryTime(ctx, utility, covered); err == nil {
						r.metrics.proofLatency.Observe(now.Sub(t).Seconds())
					}
				}
				covered = c.Size
				r.metrics.logSize.WithLabelValues(utility).Set(float64(c.Size))
				r.metrics.checkpointTime.WithLabelValues(utility).Set(float64(now.Unix()))
			}
		}
		// The oldest entry the log's checkpoints do not cover yet.
		var age time.Duration
		if t, err := r.journal.EntryTime(ctx, utility, covered); err == nil {
			age = time.Since(t)
		}
		r.ul.lag.Store(int64(age))
		r.metrics.oldestUnanchored.WithLabelValues(utility).Set(age.Seconds())
	}
	err := r.ul.log.RunCheckpointer(ctx, r.ul.checkpoints, journalLeaves{r.journal, utility}, r.cfg.CheckpointInterval,
		anchor.CheckpointerHooks{Err: r.onErr(ctx, "checkpoint"), Tick: tick})
	if inconsistent, ok := errors.AsType[*anchor.InconsistencyError](err); ok {
		// Never sign over a tree that does not extend what was signed:
		// this is the evidence a regulator needs. Stop and shout, and
		// leave the other logs and ingest running.
		r.metrics.sinkErrors.WithLabelValues("checkpoint").Inc()
		r.metrics.checkpointRefused.WithLabelValues(utility, refusedInconsistent).Inc()
		r.ul.inconsistent.Store(inconsistent)
		r.log.Error("LOG INCONSISTENT: refusing to sign any further checkpoint", slog.String("utility", utility), slog.Any("error", err))
		return nil
	}
	if foreign, ok := errors.AsType[*anchor.ForeignLeafError](err); ok {
		// Trillian is storage, not authority: a leaf tapproof did not
		// append was written into the tree behind its back. The same.
		r.metrics.sinkErrors.WithLabelValues("checkpoint").Inc()
		r.metrics.checkpointRefused.WithLabelValues(utility, refusedForeignLeaf).Inc()
		r.ul.foreign.Store(foreign)
		r.log.Error("FOREIGN LEAF IN THE LOG: refusing to sign any further checkpoint", slog.String("utility", utility),
			slog.Uint64("index", foreign.Index), slog.Any("error", err))
		return nil
	}
	return err
}

// The reasons of tapproof_checkpoint_refused_total.
const (
	refusedInconsistent = "inconsistent"
	refusedForeignLeaf  = "foreign_leaf"
)

// journalLeaves serves a log's leaves from the journal only, as the
// anchor appends them (journal.Leaves): what the checkpointer checks
// Trillian's tree against where it did not see the anchor append.
type journalLeaves struct {
	journal *journal.Journal
	utility string
}

func (j journalLeaves) Leaves(ctx context.Context, start, count uint64) ([]tapproof.Leaf, error) {
	bs, err := j.journal.Leaves(ctx, j.utility, start, count)
	if err != nil {
		return nil, err
	}
	out := make([]tapproof.Leaf, len(bs))
	for i, b := range bs {
		out[i] = tapproof.Leaf{Index: start + uint64(i), Bytes: b}
	}
	return out, nil
}

// watchIngest samples how many readings wait for ingest.
// laneParts are what a utility's alert lane runs on: the urgent
// connection, the journal it reads heads from over it, and its rules.
type laneParts struct {
	nc    *nats.Conn
	heads ingest.Heads
	cfg   ingest.LaneConfig
}

// watchIngest samples the backlog of utility's ingest consumer.
func watchIngest(ctx context.Context, j *journal.Journal, utility string, m *platformMetrics, stalls *stallWatch) {
	for sleepCtx(ctx, time.Second) {
		if p, err := j.IngestProgress(ctx, ingest.DurableFor(utility)); err == nil {
			m.ingestPending.WithLabelValues(utility).Set(float64(p.Pending))
			stalls.observe(utility, "ingest", p, time.Now())
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// platformMetrics are the metrics of the journal's consumers and the logs.
// The log label is a utility id: one per water system, a bounded set.
type platformMetrics struct {
	sinkEntries      *prometheus.CounterVec
	sinkErrors       *prometheus.CounterVec
	pending          *prometheus.GaugeVec
	ingestPending    *prometheus.GaugeVec
	logSize          *prometheus.GaugeVec
	checkpointTime   *prometheus.GaugeVec
	oldestUnanchored *prometheus.GaugeVec
	proofLatency     prometheus.Histogram
	leader           prometheus.Gauge
	logLeader        *prometheus.GaugeVec
	setAside         *prometheus.CounterVec
	leavesRead       *prometheus.CounterVec
	// checkpointRefused counts the logs whose checkpointer stopped, by
	// reason.
	checkpointRefused *prometheus.CounterVec
	witnessMetrics
	auditMetrics
}

func newPlatformMetrics(reg prometheus.Registerer) *platformMetrics {
	m := &platformMetrics{
		sinkEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_sink_entries_total",
			Help: "Journal entries stored by each sink (anchor: Trillian log; influx: InfluxDB; exceedance: lab samples and invalidations checked for an action level exceedance).",
		}, []string{"sink"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_sink_errors_total",
			Help: "Failed sink attempts (anchor, influx, checkpoint), retried, never dropped; and monitoring periods the exceedance sink could not compute.",
		}, []string{"sink"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_journal_pending_entries",
			Help: "Journal entries waiting for each sink.",
		}, []string{"log", "sink"}),
		ingestPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_ingest_pending_messages",
			Help: "Readings, lab samples and invalidations waiting in JetStream for ingest, by utility; reported by the replica leading it.",
		}, []string{"log"}),
		logSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_log_size_leaves",
			Help: "Size of each log at its latest signed checkpoint.",
		}, []string{"log"}),
		checkpointTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_checkpoint_timestamp_seconds",
			Help: "Unix time the latest checkpoint of each log was signed.",
		}, []string{"log"}),
		oldestUnanchored: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_oldest_unanchored_seconds",
			Help: "Age of the oldest journal entry no signed checkpoint covers yet; 0 when all are covered.",
		}, []string{"log"}),
		proofLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tapproof_publish_to_proof_seconds",
			Help:    "For each new checkpoint, time from journaling the oldest entry it newly covers to signing it: when an inclusion proof becomes available.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tapproof_leader",
			Help: "1 if this replica holds the leadership lease and runs the notifiers; each utility's ingest runs where tapproof_log_leader is 1.",
		}),
		logLeader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_log_leader",
			Help: "1 for each log this replica leads (holds its lease and runs its sinks, checkpointer, witnessing and audit), 0 for one it does not.",
		}, []string{"log"}),
		setAside: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_journal_set_aside_total",
			Help: "Journal entries a sink set aside, by sink and reason (unsealed: tapproof did not write it; undecodable): kept in the journal, a tombstone in the log, skipped by the other sinks.",
		}, []string{"sink", "reason"}),
		leavesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_log_leaves_read_total",
			Help: "Leaves served to readers of the logs (GET /v1/logs/{log}/leaves, the audit), by source: the journal for what the latest signed checkpoint covers, Trillian for a tail integrated since or when the journal cannot answer.",
		}, []string{"source"}),
	}
	m.checkpointRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tapproof_checkpoint_refused_total",
		Help: "Times a log's checkpointer stopped signing, by reason: inconsistent (the tree does not extend the last checkpoint) or foreign_leaf (Trillian holds a leaf tapproof did not append). /readyz says why.",
	}, []string{"log", "reason"})
	m.leavesRead.WithLabelValues("journal")
	m.leavesRead.WithLabelValues("trillian")
	for _, s := range []string{"anchor", "influx", "exceedance"} {
		for _, r := range tapproof.SetAsideReasons {
			m.setAside.WithLabelValues(s, r)
		}
	}
	for _, s := range []string{"anchor", "influx", "checkpoint"} {
		m.sinkErrors.WithLabelValues(s)
	}
	m.sinkEntries.WithLabelValues("anchor")
	m.sinkEntries.WithLabelValues("influx")
	reg.MustRegister(m.sinkEntries, m.sinkErrors, m.pending, m.ingestPending, m.logSize, m.checkpointTime, m.oldestUnanchored, m.proofLatency, m.leader, m.logLeader, m.setAside, m.leavesRead, m.checkpointRefused)
	m.witnessMetrics = newWitnessMetrics(reg)
	m.auditMetrics = newAuditMetrics(reg)
	return m
}
