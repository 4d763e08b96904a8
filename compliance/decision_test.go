package compliance_test

import (
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/compliance"
)

// TestOneIndividualDecision: whether a lab sample is above the action level
// is decided once. The individual compliance alert (and the consumer notice
// it starts) and the period's report must agree on it, for a period that
// spans the rule change of 1 November 2027 and under a configured override
// of the screening level, or a notice goes out that the report says was not
// due, or the report counts a notice as missing that was never raised. The
// rule is the period's, and the override does not apply: a regulator
// recomputing the report from the log knows nothing of it.
func TestOneIndividualDecision(t *testing.T) {
	lcri := time.Date(2027, time.November, 15, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		period   string
		at       time.Time
		value    float64
		override float64
		want     bool
	}{
		{"12 ppb in 2027H2 after the change", "2027H2", lcri, 12, 0, false},
		{"16 ppb in 2027H2 after the change", "2027H2", lcri, 16, 0, true},
		{"12 ppb in 2028H1", "2028H1", time.Date(2028, time.March, 1, 9, 0, 0, 0, time.UTC), 12, 0, true},
		{"8 ppb under a 5 ppb override", "2026H2", collected, 8, 5, false},
		{"17 ppb under a 20 ppb override", "2026H2", collected, 17, 20, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := sample(7, tt.value)
			s.Period, s.CollectedAt, s.AnalyzedAt = tt.period, tt.at, tt.at.Add(48*time.Hour)

			rules := tapproof.RuleBook{LeadOverride: tt.override}
			_, alerted := alerts.NewEvaluator(rules).EvaluateSample(s.LabSample, s.Index, time.Now())

			rep, err := compliance.Compute(compliance.Params{Utility: "flint", Period: tt.period, Rounding: compliance.HalfUp, Rules: rules}, []compliance.Sample{s}, nil)
			if err != nil {
				t.Fatal(err)
			}
			due := len(rep.IndividualExceedances) == 1
			if alerted != due || alerted != tt.want {
				t.Errorf("individual alert raised: %t; report (%s at %g) lists it as an individual exceedance: %t; want both %t",
					alerted, rep.Rule, rep.ActionLevel, due, tt.want)
			}
		})
	}
}
