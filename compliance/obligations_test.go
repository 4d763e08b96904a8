package compliance_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
)

// A copper action level exceedance is no Tier 1 notice and brings no lead
// public education: its obligations are corrosion control treatment, water
// quality parameter and source water monitoring and the report to the
// State. The lead exceedance of the same log keeps its Tier 1 notice, on
// its 24-hour clock.
func TestCopperObligations(t *testing.T) {
	at := time.Date(2026, 8, 3, 6, 30, 0, 0, time.UTC)
	var leaves []tapproof.Leaf
	add := func(a tapproof.Analyte, u tapproof.Unit, id, site string, v float64) {
		s := tapproof.LabSample{
			Lab: "acme-labs", SampleID: id, Utility: "flint", Site: site, Tier: 1, Liter: tapproof.FirstLiter,
			Analyte: a, Value: v, Unit: u, DetectionLimit: 0.001, CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour),
			Period: "2026H2", Method: "EPA 200.8",
		}
		leaves = append(leaves, tapproof.Leaf{Index: uint64(len(leaves)), Bytes: sign(t, labKey, tapproof.LabSamplePayloadType, s)})
	}
	// Five copper samples: (1.3 + 1.9) / 2 = 1.6 > 1.3 mg/L. Five lead: (20 + 30) / 2 = 25 > 12 (Michigan).
	for i, v := range []float64{0.2, 0.4, 1.1, 1.3, 1.9} {
		add(tapproof.Copper, tapproof.MilligramsPerLiter, "C"+string(rune('1'+i)), "s-"+string(rune('1'+i)), v)
	}
	for i, v := range []float64{1, 2, 3, 20, 30} {
		add(tapproof.Lead, tapproof.MicrogramsPerLiter, "P"+string(rune('1'+i)), "s-"+string(rune('1'+i)), v)
	}
	ids := func(os []compliance.Obligation) []string {
		var out []string
		for _, o := range os {
			out = append(out, o.ID)
		}
		return out
	}
	for _, tc := range []struct {
		analyte tapproof.Analyte
		want    []string
		tier1   bool
	}{
		{tapproof.Copper, []string{compliance.ObligationCorrosion, compliance.ObligationWQP, compliance.ObligationSourceWater, compliance.ObligationStateReport}, false},
		{tapproof.Lead, []string{compliance.ObligationTier1, compliance.ObligationPublicEducation, compliance.ObligationCorrosion, compliance.ObligationWQP, compliance.ObligationSourceWater, compliance.ObligationStateReport}, true},
	} {
		t.Run(string(tc.analyte), func(t *testing.T) {
			rep, err := compliance.FromLeaves(t.Context(), leaves, fixtureKeys,
				compliance.Params{Utility: "flint", Period: "2026H2", Analyte: tc.analyte, Rounding: compliance.HalfUp})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Exceedance {
				t.Fatalf("%s: p90 %v against %v: no exceedance", tc.analyte, rep.P90, rep.ActionLevel)
			}
			if diff := cmp.Diff(tc.want, ids(rep.Obligations)); diff != "" {
				t.Errorf("obligations (-want +got):\n%s", diff)
			}
			tier1 := false
			for _, n := range rep.Notices {
				if n.Class == tapproof.SystemExceedance {
					tier1 = n.Within == "24h0m0s"
				}
			}
			if tier1 != tc.tier1 {
				t.Errorf("notices due = %+v; want a Tier 1 notice on the 24-hour clock: %t", rep.Notices, tc.tier1)
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(b.String(), "Tier 1"); got != tc.tier1 {
				t.Errorf("the %s report mentions a Tier 1 notice: %t, want %t:\n%s", tc.analyte, got, tc.tier1, b.String())
			}
			for _, o := range rep.Obligations {
				if o.ID == compliance.ObligationStateReport && o.Due != "2027-01-10" {
					t.Errorf("report to the State due %s, want 2027-01-10 (10 days after 31 December)", o.Due)
				}
			}
		})
	}
}
