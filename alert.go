package tapproof

import "time"

// AlertClass is one of the three kinds of lead alert (DOMAIN.md).
type AlertClass string

// Alert classes. Screening alerts come from continuous sensors; individual
// compliance and system action-level exceedance alerts from lab samples.
const (
	Screening            AlertClass = "screening"
	IndividualCompliance AlertClass = "individual_compliance"
	SystemExceedance     AlertClass = "system_exceedance"
)

// Alert is raised when a reading exceeds the rule in force.
type Alert struct {
	ID      string     `json:"id"`
	Class   AlertClass `json:"class"`
	Utility string     `json:"utility"`
	Site    string     `json:"site"`
	Device  string     `json:"device"`
	Seq     uint64     `json:"seq"`
	Analyte Analyte    `json:"analyte"`
	Value   float64    `json:"value"`
	Unit    Unit       `json:"unit"`
	Level   float64    `json:"level"`
	Rule    string     `json:"rule"` // Rule.Name() of the rule that decided
	// SampledAt is when the water was sampled; RaisedAt when tapproof decided.
	SampledAt time.Time `json:"sampled_at"`
	RaisedAt  time.Time `json:"raised_at"`
}

// AlertID is the deterministic id of the alert raised by a reading, so that a
// redelivered reading cannot raise a second alert.
func AlertID(class AlertClass, device string, seq uint64) string {
	return string(class) + "-" + ReadingKey(device, seq)
}
