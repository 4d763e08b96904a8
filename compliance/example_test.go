package compliance_test

import (
	"fmt"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
)

// Twelve samples, the highest of them invalidated by a state reviewer: the
// report keeps it, lists the exclusion and computes over the eleven that
// count. Rank 0.9 × 11 = 9.9 rounds to 10 under every rounding rule.
func ExampleCompute() {
	at := time.Date(2026, 8, 3, 6, 30, 0, 0, time.UTC)
	var samples []compliance.Sample
	for i, v := range []float64{1, 2, 2, 3, 4, 5, 6, 8, 13, 16, 30, 45} {
		samples = append(samples, compliance.Sample{Index: uint64(i), LabSample: tapproof.LabSample{
			Lab: "acme-labs", SampleID: fmt.Sprintf("L-%d", i), Utility: "flint", Site: fmt.Sprintf("s-%d", i), Tier: 1,
			Liter: tapproof.FirstLiter, Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter,
			DetectionLimit: 1, CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour), Period: "2026H2",
		}})
	}
	inv := compliance.Invalidation{Index: 12, Invalidation: tapproof.Invalidation{
		Utility: "flint", Lab: "acme-labs", SampleID: "L-11", SampleIndex: 11,
		Reason: "collected from an outdoor hose bib", Reviewer: "mi-egle-rev1",
		DecidedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC),
	}}
	rep, err := compliance.Compute(compliance.Params{
		Utility: "flint", Period: "2026H2", Rounding: compliance.HalfUp,
		Rules: tapproof.RuleBook{Jurisdictions: map[string]tapproof.Jurisdiction{"flint": "US-MI"}},
	}, samples, []compliance.Invalidation{inv})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("n=%d rank %d (0.9 × n = %s, %s): 90th percentile %g %s\n", rep.N, rep.Ranks[0], rep.RankExact, rep.Rounding, rep.P90, rep.Unit)
	fmt.Printf("%s, action level %g: exceedance %t\n", rep.Rule, rep.ActionLevel, rep.Exceedance)
	for _, e := range rep.Exclusions {
		fmt.Printf("excluded %s (%g) by %s: %s\n", e.Sample, e.Value, e.Reviewer, e.Reason)
	}
	// Output:
	// n=11 rank 10 (0.9 × n = 9.9, half-up): 90th percentile 16 ug/L
	// us-mi-lead@v1, action level 12: exceedance true
	// excluded acme-labs/L-11 (45) by mi-egle-rev1: collected from an outdoor hose bib
}
