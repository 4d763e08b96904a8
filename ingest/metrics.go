package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
)

// Metrics are ingest's Prometheus metrics.
type Metrics struct {
	accepted *prometheus.CounterVec
	rejected *prometheus.CounterVec
	errors   prometheus.Counter
	seconds  prometheus.Histogram
	lane     *prometheus.CounterVec
}

// NewMetrics creates ingest's metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_ingest_accepted_total",
			Help: "Readings, lab samples and invalidations accepted and appended to their utility's journal, by analyte and kind (the device kind, lab or invalidation).",
		}, []string{"analyte", "kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_ingest_rejected_total",
			Help: "Messages rejected, by reason; each is published to tapproof.rejected.<reason>.",
		}, []string{"reason"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapproof_ingest_retries_total",
			Help: "Transient failures while deciding a reading; the reading is retried, never dropped.",
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tapproof_ingest_decision_seconds",
			Help:    "Time from taking a message to its durable outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		lane: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_ingest_lane_readings_total",
			Help: "Urgent readings (above the recovery level of their rule) the alert lane took ahead of the bulk, by result: checked for alerts, skipped or dropped (the lane full, or the device above its rate): the bulk path decides every reading.",
		}, []string{"result"}),
	}
	for _, r := range []string{laneChecked, laneSkipped, laneDropped} {
		m.lane.WithLabelValues(r)
	}
	for _, r := range tapproof.Reasons {
		m.rejected.WithLabelValues(string(r))
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.rejected, m.errors, m.seconds, m.lane)
	}
	return m
}
