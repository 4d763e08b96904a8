package monitor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the monitor's Prometheus metrics, all prefixed
// tapproof_monitor_ and labelled by log (the utility). A nil *Metrics
// counts nothing.
type Metrics struct {
	findings      *prometheus.CounterVec
	verifiedSize  *prometheus.GaugeVec
	leavesChecked *prometheus.CounterVec
	unchecked     *prometheus.CounterVec
	setAside      *prometheus.CounterVec
	lastSuccess   *prometheus.GaugeVec
	pollErrors    *prometheus.CounterVec
	webhook       *prometheus.CounterVec
}

// Webhook delivery results, the values of the result label of
// tapproof_monitor_webhook_deliveries_total.
const (
	webhookDelivered = "delivered"
	webhookRetried   = "retried"
	webhookFailed    = "failed"  // given up after the last attempt
	webhookDropped   = "dropped" // the queue was full
)

// NewMetrics creates the monitor's metrics and registers them with reg,
// which may be nil (counted but not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_monitor_findings_total",
			Help: "Findings reported, by log and kind (fork, rollback, inconsistent_leaves, bad_leaf, bad_signature, unattributable_leaf, witness_policy, stale, compliance_undetermined, foreign_entry, undecodable_entry, not_permitted). A fork, rollback or inconsistent_leaves finding is reported again on every poll until resolved.",
		}, []string{"log", "kind"}),
		verifiedSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_monitor_verified_size_leaves",
			Help: "Tree size of the last checkpoint of the log the monitor verified and stored.",
		}, []string{"log"}),
		leavesChecked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_monitor_leaves_checked_total",
			Help: "Leaves read, hashed into the tree and checked, in batches whose root matched the checkpoint.",
		}, []string{"log"}),
		unchecked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_monitor_leaves_unchecked_total",
			Help: "Lab samples and invalidations whose signature could not be checked: no lab or reviewer key was given.",
		}, []string{"log"}),
		setAside: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_monitor_set_aside_leaves_total",
			Help: "Set-aside records (tombstones of journal entries tapproof did not write or could not decode) read from the log; each is also a foreign_entry or undecodable_entry finding.",
		}, []string{"log"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapproof_monitor_last_success_timestamp_seconds",
			Help: "When the monitor last verified the log's latest checkpoint against its stored state without a fork, rollback or inconsistency.",
		}, []string{"log"}),
		pollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_monitor_poll_errors_total",
			Help: "Polls that could not check the log: the server unreachable or failing, or a checkpoint not signed by the log key.",
		}, []string{"log"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_monitor_webhook_deliveries_total",
			Help: "Webhook deliveries of findings, by result (delivered, retried, failed, dropped).",
		}, []string{"result"}),
	}
	for _, r := range []string{webhookDelivered, webhookRetried, webhookFailed, webhookDropped} {
		m.webhook.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.findings, m.verifiedSize, m.leavesChecked, m.unchecked, m.setAside, m.lastSuccess, m.pollErrors, m.webhook)
	}
	return m
}

// follow initialises the series of a log.
func (m *Metrics) follow(log string, size uint64) {
	if m == nil {
		return
	}
	for _, k := range Kinds {
		m.findings.WithLabelValues(log, string(k))
	}
	m.verifiedSize.WithLabelValues(log).Set(float64(size))
	m.leavesChecked.WithLabelValues(log)
	m.unchecked.WithLabelValues(log)
	m.setAside.WithLabelValues(log)
	m.lastSuccess.WithLabelValues(log)
	m.pollErrors.WithLabelValues(log)
}

func (m *Metrics) finding(log string, k Kind, n int) {
	if m != nil {
		m.findings.WithLabelValues(log, string(k)).Add(float64(n))
	}
}

func (m *Metrics) advanced(log string, size uint64, checked uint64, c Counts) {
	if m == nil {
		return
	}
	m.verifiedSize.WithLabelValues(log).Set(float64(size))
	m.leavesChecked.WithLabelValues(log).Add(float64(checked))
	m.unchecked.WithLabelValues(log).Add(float64(c.Unchecked))
	m.setAside.WithLabelValues(log).Add(float64(c.SetAside))
}

func (m *Metrics) success(log string, at time.Time) {
	if m != nil {
		m.lastSuccess.WithLabelValues(log).Set(float64(at.UnixNano()) / 1e9)
	}
}

func (m *Metrics) pollError(log string) {
	if m != nil {
		m.pollErrors.WithLabelValues(log).Inc()
	}
}

func (m *Metrics) delivery(result string) {
	if m != nil {
		m.webhook.WithLabelValues(result).Inc()
	}
}
