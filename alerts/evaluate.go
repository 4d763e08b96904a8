package alerts

import (
	"maps"
	"slices"
	"time"

	"github.com/tapproof/tapproof"
)

// Evaluator decides whether a single reading or lab sample raises an
// alert, by the rules of one tapproof.RuleBook. It is safe for concurrent
// use.
type Evaluator struct {
	rules tapproof.RuleBook
}

// NewEvaluator returns an Evaluator deciding by rules. The zero RuleBook
// follows tapproof.DefaultRules under federal jurisdiction (15 ppb until
// 31 October 2027, 10 ppb from 1 November 2027).
func NewEvaluator(rules tapproof.RuleBook) *Evaluator {
	rules.Rules = slices.Clone(rules.Rules)
	rules.Jurisdictions = maps.Clone(rules.Jurisdictions)
	return &Evaluator{rules: rules}
}

// Evaluate returns the screening alert sensor reading r raises, if any:
// when r's value is strictly above the level of the rule in force at
// r.SampledAt (exactly the level raises nothing). r should be normalised
// (tapproof.Reading.Normalize); a value below r's detection limit counts as
// zero. A reading with method tapproof.Lab raises nothing: lab results are
// lab samples, judged by EvaluateSample. The alert's ID is
// tapproof.AlertID, so evaluating a redelivered reading yields the same
// alert; now becomes its RaisedAt.
func (e *Evaluator) Evaluate(r tapproof.Reading, now time.Time) (tapproof.Alert, bool) {
	m, ok := e.measure(r)
	if !ok || !m.rule.Exceeds(m.value) {
		return tapproof.Alert{}, false
	}
	return m.alert(r, now), true
}

// measurement is a reading's value in its analyte's canonical unit, with the
// rule that judges it.
type measurement struct {
	rule  tapproof.Rule
	value float64 // canonical unit; zero below the detection limit
	class tapproof.AlertClass
}

// measure returns r's measurement, or false if no rule applies to r or its
// unit cannot be converted.
func (e *Evaluator) measure(r tapproof.Reading) (measurement, bool) {
	if r.Method == tapproof.Lab {
		return measurement{}, false
	}
	rule, ok := e.rules.At(r.Utility, r.Analyte, r.SampledAt)
	if !ok {
		return measurement{}, false
	}
	v, err := r.Analyte.Normalize(r.Value, r.Unit)
	if err != nil {
		return measurement{}, false
	}
	if r.DetectionLimit > 0 {
		dl, err := r.Analyte.Normalize(r.DetectionLimit, r.Unit)
		if err == nil && v < dl {
			v = 0
		}
	}
	return measurement{rule: rule, value: v, class: tapproof.Screening}, true
}

// EvaluateSample returns the individual compliance alert that lab sample s,
// accepted at leaf index of its utility's log, raises, if any: when the
// value it counts with (zero below the detection limit) is strictly above
// the level of the rule that judges its monitoring period
// (tapproof.RuleBook.ForPeriod), the same rule by which the period's
// report lists it as an individual exceedance. Its ID is
// tapproof.IndividualAlertID and its Sample s.Key(), so that its notice
// goes to the subscriptions bound to that sample only; now becomes its
// RaisedAt.
func (e *Evaluator) EvaluateSample(s tapproof.LabSample, index uint64, now time.Time) (tapproof.Alert, bool) {
	period, err := tapproof.ParsePeriod(s.Period)
	if err != nil {
		return tapproof.Alert{}, false
	}
	rule, err := e.rules.ForPeriod(s.Utility, s.Analyte, period)
	if err != nil {
		return tapproof.Alert{}, false
	}
	r := s.Reading(index)
	v, err := r.Analyte.Normalize(r.Value, r.Unit)
	if err != nil || !rule.Exceeds(v) {
		return tapproof.Alert{}, false
	}
	a := measurement{rule: rule, value: v, class: tapproof.IndividualCompliance}.alert(r, now)
	a.Sample = s.Key()
	return a, true
}

// alert returns the new alert m raises for r.
func (m measurement) alert(r tapproof.Reading, now time.Time) tapproof.Alert {
	unit, _ := r.Analyte.CanonicalUnit()
	return tapproof.Alert{
		ID:        tapproof.AlertID(m.class, r.Device, r.Seq),
		Class:     m.class,
		Utility:   r.Utility,
		Site:      r.Site,
		Device:    r.Device,
		Seq:       r.Seq,
		Analyte:   r.Analyte,
		Value:     m.value,
		Unit:      unit,
		Level:     m.rule.Level,
		Rule:      m.rule.Name(),
		SampledAt: r.SampledAt,
		RaisedAt:  now,
	}
}
