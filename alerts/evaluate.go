package alerts

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tapproof/tapproof"
)

// OverrideRuleID is the id of the rule that replaces the lead action level
// when an Evaluator is given an override. Alerts it decides record
// "lead-override@v1" as their rule and the override as their level.
const OverrideRuleID = "lead-override"

// Evaluator decides whether a single reading raises an alert. It is safe for
// concurrent use.
type Evaluator struct {
	rules         []tapproof.Rule
	jurisdictions map[string]tapproof.Jurisdiction
	override      float64
}

// NewEvaluator returns an Evaluator over rules (typically
// tapproof.DefaultRules). jurisdictions maps a utility id to the
// jurisdiction whose rules apply to it; utilities not listed are under
// tapproof.Federal. If override is positive it replaces the lead action
// level of every rule, in every jurisdiction and at every date, with a rule
// named OverrideRuleID; pass 0 to follow the rules (federal 15 ppb until
// 31 October 2027, 10 ppb from 1 November 2027, 12 ppb in Michigan).
func NewEvaluator(rules []tapproof.Rule, jurisdictions map[string]tapproof.Jurisdiction, override float64) *Evaluator {
	return &Evaluator{
		rules:         slices.Clone(rules),
		jurisdictions: maps.Clone(jurisdictions),
		override:      override,
	}
}

// Rule returns the rule that decides readings of analyte a sampled at t for
// utility, and whether there is one.
func (e *Evaluator) Rule(utility string, a tapproof.Analyte, t time.Time) (tapproof.Rule, bool) {
	j, ok := e.jurisdictions[utility]
	if !ok {
		j = tapproof.Federal
	}
	if a == tapproof.Lead && e.override > 0 {
		return tapproof.Rule{
			ID: OverrideRuleID, Version: 1, Analyte: tapproof.Lead, Jurisdiction: j,
			Level: e.override, Unit: tapproof.MicrogramsPerLiter,
			Source: fmt.Sprintf("configured lead action level %g ug/L", e.override),
		}, true
	}
	return tapproof.RuleFor(e.rules, a, j, t)
}

// Evaluate returns the alert r raises, if any: when r's value is strictly
// above the level of the rule in force at r.SampledAt (exactly the level
// raises nothing). r should be normalised (tapproof.Reading.Normalize); a
// value below r's detection limit counts as zero. A lab result raises an
// IndividualCompliance alert, a sensor reading a Screening alert. The
// alert's ID is tapproof.AlertID, so evaluating a redelivered reading yields
// the same alert; now becomes its RaisedAt.
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
	rule, ok := e.Rule(r.Utility, r.Analyte, r.SampledAt)
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
	class := tapproof.Screening
	if r.Method == tapproof.Lab {
		class = tapproof.IndividualCompliance
	}
	return measurement{rule: rule, value: v, class: class}, true
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
