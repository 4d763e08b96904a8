package platform

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/witness"
)

// witnessing submits the log's newest checkpoint to the witnesses of the
// policy whenever it is larger than the latest witnessed one, and publishes
// it with their cosignatures once they meet the policy. It reads only what
// the checkpointer published, so nothing else waits on witnesses: ingest,
// alerts and checkpoints go on while a witness is down, and only bundles
// (served at the latest witnessed checkpoint) wait. signed is poked by the
// checkpointer after each new checkpoint; it also tries again every
// checkpoint interval.
func (r *logRunner) witnessing(ctx context.Context, policy *witness.Policy, signed <-chan struct{}) error {
	utility, origin := r.ul.info.Utility, r.ul.info.Origin
	sub := witness.NewSubmitter(policy, r.ul.verifier, r.ul.log, nil)
	sub.Observe = func(w witness.Witness, result string, err error) {
		r.metrics.witnessResults.WithLabelValues(utility, w.Name, result).Inc()
		if err != nil {
			r.log.Warn("witness did not cosign", slog.String("utility", utility), slog.String("witness", w.Name), slog.String("result", result), slog.Any("error", err))
		}
	}
	latest := r.journal.Checkpoints(utility) // its own cursor: the checkpointer's guards its writes
	var witnessed uint64
	if cp, err := r.ul.witnessed.LatestCheckpoint(ctx, origin); err == nil && cp != nil {
		if c, err := anchor.OpenCheckpoint(cp, r.ul.verifier); err == nil {
			witnessed = c.Size
		}
	}
	t := time.NewTicker(r.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-signed:
		case <-t.C:
		}
		cp, err := latest.LatestCheckpoint(ctx, origin)
		if err != nil || cp == nil {
			continue
		}
		c, err := anchor.OpenCheckpoint(cp, r.ul.verifier)
		if err != nil || c.Size <= witnessed {
			continue
		}
		cosigned, err := sub.Submit(ctx, cp)
		if err != nil {
			if ctx.Err() == nil {
				r.metrics.witnessUnmet.WithLabelValues(utility).Inc()
				r.log.Warn("checkpoint not witnessed; will try again", slog.String("utility", utility), slog.Uint64("size", c.Size), slog.Any("error", err))
			}
			continue
		}
		if _, err := r.ul.witnessed.LatestCheckpoint(ctx, origin); err != nil {
			continue
		}
		if err := r.ul.witnessed.PutCheckpoint(ctx, origin, c.Size, cosigned); err != nil {
			r.onErr(ctx, "witness")(err)
			continue
		}
		witnessed = c.Size
		r.metrics.witnessedSize.WithLabelValues(utility).Set(float64(c.Size))
		r.metrics.witnessedTime.WithLabelValues(utility).Set(float64(time.Now().Unix()))
	}
}

// witnessMetrics are the metrics of witnessing, part of platformMetrics.
type witnessMetrics struct {
	witnessResults *prometheus.CounterVec
	witnessUnmet   *prometheus.CounterVec
	witnessedSize  *prometheus.GaugeVec
	witnessedTime  *prometheus.GaugeVec
}

func newWitnessMetrics(reg prometheus.Registerer) witnessMetrics {
	m := witnessMetrics{
		witnessResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_witness_submissions_total",
			Help: "Checkpoints submitted to each witness, by log, witness and result (cosigned; conflict: it held another size, asked again; ahead: it holds a larger tree; refused: another error status; failed: unreachable or no valid cosignature).",
		}, []string{"log", "witness", "result"}),
		witnessUnmet: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_witness_policy_unmet_total",
			Help: "Checkpoints whose cosignatures did not meet the witness policy when submitted; tried again.",
		}, []string{"log"}),
		witnessedSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_witnessed_log_size_leaves",
			Help: "Size of each log at its latest checkpoint cosigned as the witness policy asks.",
		}, []string{"log"}),
		witnessedTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_witnessed_checkpoint_timestamp_seconds",
			Help: "Unix time the latest checkpoint of each log met the witness policy.",
		}, []string{"log"}),
	}
	reg.MustRegister(m.witnessResults, m.witnessUnmet, m.witnessedSize, m.witnessedTime)
	return m
}
