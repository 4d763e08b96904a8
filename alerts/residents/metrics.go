package residents

import (
	"errors"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
)

// Metrics count deliveries to residents, refused subscriptions and
// expired ones; never an address. A nil *Metrics counts nothing.
type Metrics struct {
	notices  *prometheus.CounterVec
	refusals *prometheus.CounterVec
	purged   prometheus.Counter
	alerts   *alerts.Metrics // messages set aside
}

// NewMetrics creates tapproof_notice_deliveries_total,
// tapproof_subscription_refusals_total (by RefusalCode) and
// tapproof_subscriptions_expired_total and registers them with reg, which
// may be nil (counted but not exported), together with the
// metrics of package alerts (alerts.NewMetrics), whose
// tapproof_alerts_invalid_total counts the alert messages the Notifier sets
// aside.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_notice_deliveries_total",
			Help: "Resident notice and confirmation delivery attempts, by channel (email, webhook) and result (delivered, retried, failed).",
		}, []string{"channel", "result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_subscription_refusals_total",
			Help: "Subscription requests refused, by reason (the residents.RefusalCode, e.g. pending_address, private_webhook).",
		}, []string{"reason"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapproof_subscriptions_expired_total",
			Help: "Pending subscriptions deleted because their confirmation expired.",
		}),
		alerts: alerts.NewMetrics(reg),
	}
	for _, c := range RefusalCodes {
		m.refusals.WithLabelValues(string(c))
	}
	for _, ch := range []Channel{ChannelEmail, ChannelWebhook} {
		for _, r := range []string{alerts.ResultDelivered, alerts.ResultRetried, alerts.ResultFailed} {
			m.notices.WithLabelValues(string(ch), r)
		}
	}
	if reg != nil {
		reg.MustRegister(m.notices, m.refusals, m.purged)
	}
	return m
}

func (m *Metrics) notice(ch Channel, result string) {
	if m == nil {
		return
	}
	m.notices.WithLabelValues(string(ch), result).Inc()
}

// refused counts err if it is a *Refusal, by its code.
func (m *Metrics) refused(err error) {
	var r *Refusal
	if m == nil || !errors.As(err, &r) || !slices.Contains(RefusalCodes, r.Code) {
		return
	}
	m.refusals.WithLabelValues(string(r.Code)).Inc()
}

func (m *Metrics) expired(n int) {
	if m != nil && n > 0 {
		m.purged.Add(float64(n))
	}
}

// decodeAlert is alerts.Metrics.DecodeAlert.
func (m *Metrics) decodeAlert(data []byte) (tapproof.Alert, error) {
	var am *alerts.Metrics
	if m != nil {
		am = m.alerts
	}
	return am.DecodeAlert(data)
}
