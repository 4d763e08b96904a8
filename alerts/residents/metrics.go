package residents

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
)

// Metrics count deliveries to residents. A nil *Metrics counts nothing.
type Metrics struct {
	notices *prometheus.CounterVec
	alerts  *alerts.Metrics // messages set aside
}

// NewMetrics creates tapproof_notice_deliveries_total and registers it with
// reg, which may be nil (counted but not exported), together with the
// metrics of package alerts (alerts.NewMetrics), whose
// tapproof_alerts_invalid_total counts the alert messages the Notifier sets
// aside.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_notice_deliveries_total",
			Help: "Resident notice and confirmation delivery attempts, by channel (email, webhook) and result (delivered, retried, failed).",
		}, []string{"channel", "result"}),
		alerts: alerts.NewMetrics(reg),
	}
	for _, ch := range []Channel{ChannelEmail, ChannelWebhook} {
		for _, r := range []string{alerts.ResultDelivered, alerts.ResultRetried, alerts.ResultFailed} {
			m.notices.WithLabelValues(string(ch), r)
		}
	}
	if reg != nil {
		reg.MustRegister(m.notices)
	}
	return m
}

func (m *Metrics) notice(ch Channel, result string) {
	if m == nil {
		return
	}
	m.notices.WithLabelValues(string(ch), result).Inc()
}

// decodeAlert is alerts.Metrics.DecodeAlert.
func (m *Metrics) decodeAlert(data []byte) (tapproof.Alert, error) {
	var am *alerts.Metrics
	if m != nil {
		am = m.alerts
	}
	return am.DecodeAlert(data)
}
