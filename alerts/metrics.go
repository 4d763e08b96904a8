package alerts

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
)

// Webhook delivery results, the values of the result label of
// tapproof_webhook_deliveries_total.
const (
	ResultDelivered = "delivered" // the receiver answered 2xx
	ResultRetried   = "retried"   // failed; JetStream redelivers after a back-off
	ResultFailed    = "failed"    // failed for the last time (MaxDeliver reached) or undecodable
)

// Metrics are the alerting counters. A nil *Metrics counts nothing.
type Metrics struct {
	raised     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	screens    *prometheus.CounterVec
	notices    *prometheus.CounterVec
	invalid    *prometheus.CounterVec
}

// NewMetrics creates the alerting metrics and registers them with reg, which
// may be nil (metrics are then kept but not exported). Registering twice with
// one registry reuses the first registration.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_alerts_raised_total",
			Help: "Alerts stored for the first time, by class.",
		}, []string{"class"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_webhook_deliveries_total",
			Help: "Webhook delivery attempts, by result (delivered, retried, failed).",
		}, []string{"result"}),
		screens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_screening_events_total",
			Help: "Screening state machine events, by event (pending, fired, updated, suppressed, recovering, cleared, abandoned).",
		}, []string{"event"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_notice_deliveries_total",
			Help: "Resident notice and confirmation delivery attempts, by channel (email, webhook) and result (delivered, retried, failed).",
		}, []string{"channel", "result"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_alerts_invalid_total",
			Help: "Messages on the alert stream that do not decode or validate, by reason (undecodable, invalid): set aside, never shown to the public nor sent to residents.",
		}, []string{"reason"}),
	}
	m.raised = register(reg, m.raised)
	m.invalid = register(reg, m.invalid)
	for _, r := range []string{invalidUndecodable, invalidAlert} {
		m.invalid.WithLabelValues(r)
	}
	m.deliveries = register(reg, m.deliveries)
	m.screens = register(reg, m.screens)
	m.notices = register(reg, m.notices)
	for _, e := range screeningEvents {
		m.screens.WithLabelValues(e)
	}
	for _, ch := range []Channel{ChannelEmail, ChannelWebhook} {
		for _, r := range []string{ResultDelivered, ResultRetried, ResultFailed} {
			m.notices.WithLabelValues(string(ch), r)
		}
	}
	for _, c := range []tapproof.AlertClass{tapproof.Screening, tapproof.IndividualCompliance, tapproof.SystemExceedance} {
		m.raised.WithLabelValues(string(c))
	}
	for _, r := range []string{ResultDelivered, ResultRetried, ResultFailed} {
		m.deliveries.WithLabelValues(r)
	}
	return m
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Reasons an alert message is set aside.
const (
	invalidUndecodable = "undecodable"
	invalidAlert       = "invalid"
)

// decodeAlert decodes and validates an alert message from the alert
// stream, counting what it sets aside. Every reader of the stream uses it:
// nothing that fails it reaches the public or a resident.
func (m *Metrics) decodeAlert(data []byte) (tapproof.Alert, error) {
	var a tapproof.Alert
	if err := json.Unmarshal(data, &a); err != nil {
		m.alertInvalid(invalidUndecodable)
		return a, fmt.Errorf("alert message: %w", err)
	}
	if err := a.Validate(); err != nil {
		m.alertInvalid(invalidAlert)
		return a, err
	}
	return a, nil
}

func (m *Metrics) alertInvalid(reason string) {
	if m == nil {
		return
	}
	m.invalid.WithLabelValues(reason).Inc()
}

func (m *Metrics) alertRaised(c tapproof.AlertClass) {
	if m == nil {
		return
	}
	switch c {
	case tapproof.Screening, tapproof.IndividualCompliance, tapproof.SystemExceedance:
	default:
		c = "other" // keep the label set bounded
	}
	m.raised.WithLabelValues(string(c)).Inc()
}

func (m *Metrics) delivery(result string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(result).Inc()
}

func (m *Metrics) screening(event string) {
	if m == nil {
		return
	}
	m.screens.WithLabelValues(event).Inc()
}

func (m *Metrics) notice(ch Channel, result string) {
	if m == nil {
		return
	}
	m.notices.WithLabelValues(string(ch), result).Inc()
}
