package platform

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/journal"
)

// auditing audits InfluxDB against the log every interval
// (Config.AuditInterval): every reading and lab sample under the latest
// served checkpoint must be in InfluxDB as logged, and every point there one
// of them. The findings of each audit are set on /metrics for the rules
// to raise; the log names them. It audits a checkpoint only once the
// InfluxDB sink has stored every entry it covers, so that a sink that is
// behind is not taken for a deletion; such a round is deferred.
func (r *logRunner) auditing(ctx context.Context, store audit.Store, served *journal.Checkpoints) error {
	utility := r.ul.info.Utility
	src := logLeaves{ul: r.ul, journal: r.journal, counted: r.metrics.leavesRead, log: r.log}
	for sleepCtx(ctx, r.cfg.AuditInterval) {
		signed, err := served.LatestCheckpoint(ctx, r.ul.info.Origin)
		if err != nil || signed == nil {
			continue
		}
		cp, err := anchor.OpenCheckpoint(signed, r.ul.verifier)
		if err != nil {
			r.auditFailed(ctx, err)
			continue
		}
		if p, err := r.journal.CursorProgress(ctx, utility, "influx"); err != nil || p.Done < cp.Size {
			r.metrics.auditRuns.WithLabelValues(utility, "deferred").Inc()
			continue
		}
		begin := time.Now()
		rep, err := audit.Run(ctx, src, store, utility, cp)
		if err != nil {
			r.auditFailed(ctx, err)
			continue
		}
		r.metrics.auditRuns.WithLabelValues(utility, "done").Inc()
		r.metrics.auditTime.WithLabelValues(utility).Set(float64(time.Now().Unix()))
		r.metrics.auditSize.WithLabelValues(utility).Set(float64(cp.Size))
		for _, k := range audit.Kinds {
			r.metrics.auditFindings.WithLabelValues(utility, string(k)).Set(float64(rep.Count(k)))
		}
		if !rep.Clean() {
			r.log.Error("AUDIT: InfluxDB disagrees with the log", slog.String("utility", utility), slog.Uint64("size", cp.Size),
				slog.Int("missing", rep.Count(audit.Missing)), slog.Int("changed", rep.Count(audit.Changed)), slog.Int("without_leaf", rep.Count(audit.WithoutLeaf)),
				slog.String("first", rep.Findings[0].String()), slog.String("see", "tapproof audit --utility "+utility))
			continue
		}
		r.log.Info("audit: InfluxDB agrees with the log", slog.String("utility", utility), slog.Uint64("size", cp.Size),
			slog.Int("points", rep.Points), slog.Duration("took", time.Since(begin)))
	}
	return nil
}

func (r *logRunner) auditFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	r.metrics.auditRuns.WithLabelValues(r.ul.info.Utility, "failed").Inc()
	r.log.Warn("audit could not run; will try again", slog.String("utility", r.ul.info.Utility), slog.Any("error", err))
}

// auditMetrics are the metrics of the scheduled audit, part of
// platformMetrics.
type auditMetrics struct {
	auditRuns     *prometheus.CounterVec
	auditFindings *prometheus.GaugeVec
	auditTime     *prometheus.GaugeVec
	auditSize     *prometheus.GaugeVec
}

func newAuditMetrics(reg prometheus.Registerer) auditMetrics {
	m := auditMetrics{
		auditRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_audit_runs_total",
			Help: "Scheduled audits of InfluxDB against each log, by result (done; deferred: the InfluxDB sink had not stored all the checkpoint covers; failed).",
		}, []string{"log", "result"}),
		auditFindings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_audit_findings",
			Help: "Discrepancies between InfluxDB and each log found by the latest audit, by kind (missing: a leaf's point is not in InfluxDB; changed: it is there otherwise; without_leaf: a point no leaf accounts for).",
		}, []string{"log", "kind"}),
		auditTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_audit_timestamp_seconds",
			Help: "Unix time of the latest audit of each log that ran to the end.",
		}, []string{"log"}),
		auditSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_audit_log_size_leaves",
			Help: "Size of the checkpoint the latest audit of each log was at.",
		}, []string{"log"}),
	}
	reg.MustRegister(m.auditRuns, m.auditFindings, m.auditTime, m.auditSize)
	return m
}
