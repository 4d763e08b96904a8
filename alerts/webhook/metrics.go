package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
)

// Metrics count webhook deliveries. A nil *Metrics counts nothing.
type Metrics struct {
	deliveries *prometheus.CounterVec
	alerts     *alerts.Metrics // messages set aside
}

// NewMetrics creates tapproof_webhook_deliveries_total and registers it with
// reg, which may be nil (counted but not exported), together with the
// metrics of package alerts (alerts.NewMetrics), whose
// tapproof_alerts_invalid_total counts the alert messages a webhook sets
// aside.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_webhook_deliveries_total",
			Help: "Webhook delivery attempts, by result (delivered, retried, failed).",
		}, []string{"result"}),
		alerts: alerts.NewMetrics(reg),
	}
	for _, r := range []string{alerts.ResultDelivered, alerts.ResultRetried, alerts.ResultFailed} {
		m.deliveries.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries)
	}
	return m
}

func (m *Metrics) delivery(result string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(result).Inc()
}

// decodeAlert is alerts.Metrics.DecodeAlert.
func (m *Metrics) decodeAlert(data []byte) (tapproof.Alert, error) {
	var am *alerts.Metrics
	if m != nil {
		am = m.alerts
	}
	return am.DecodeAlert(data)
}
