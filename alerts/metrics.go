package alerts

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
)

// Metrics are the counters of alerts raised, screening events and alert
// messages set aside: tapproof_alerts_raised_total,
// tapproof_screening_events_total and tapproof_alerts_invalid_total. The
// delivery counters belong to alerts/webhook and alerts/residents. A nil
// *Metrics counts nothing.
type Metrics struct {
	raised  *prometheus.CounterVec
	screens *prometheus.CounterVec
	invalid *prometheus.CounterVec
}

// NewMetrics creates the alerting metrics and registers them with reg, which
// may be nil (metrics are then kept but not exported). Registering twice with
// one registry reuses the first registration, so that every reader of the
// alert stream can count what it sets aside in one
// tapproof_alerts_invalid_total.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_alerts_raised_total",
			Help: "Alerts stored for the first time, by class.",
		}, []string{"class"}),
		screens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_screening_events_total",
			Help: "Screening state machine events, by event (pending, fired, updated, suppressed, recovering, cleared, abandoned, flapping).",
		}, []string{"event"}),
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
	m.screens = register(reg, m.screens)
	for _, e := range screeningEvents {
		m.screens.WithLabelValues(e)
	}
	for _, c := range []tapproof.AlertClass{tapproof.Screening, tapproof.IndividualCompliance, tapproof.SystemExceedance, tapproof.SystemUndetermined} {
		m.raised.WithLabelValues(string(c))
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

// DecodeAlert decodes and validates a message of the alert stream,
// counting what it sets aside in tapproof_alerts_invalid_total. Every reader
// of the stream uses it: nothing that fails it reaches the public or a
// resident.
func (m *Metrics) DecodeAlert(data []byte) (tapproof.Alert, error) {
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
	case tapproof.Screening, tapproof.IndividualCompliance, tapproof.SystemExceedance, tapproof.SystemUndetermined:
	default:
		c = "other" // keep the label set bounded
	}
	m.raised.WithLabelValues(string(c)).Inc()
}

func (m *Metrics) screening(event string) {
	if m == nil {
		return
	}
	m.screens.WithLabelValues(event).Inc()
}
