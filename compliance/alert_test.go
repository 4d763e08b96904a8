package compliance_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
)

func TestSystemAlert(t *testing.T) {
	raised := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("EST", -5*3600))
	ss := flint()
	latest := time.Date(2026, 9, 30, 8, 0, 0, 0, time.UTC)
	ss[3].CollectedAt = latest // a counted sample, not the one that exceeds
	rep, err := compliance.Compute(compliance.Params{Utility: "flint", Period: "2026H2", Rounding: compliance.HalfUp}, ss, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := rep.SystemAlert(raised)
	want := tapproof.Alert{
		ID: "system_exceedance-flint-lead-2026h2", Class: tapproof.SystemExceedance, Utility: "flint",
		Analyte: tapproof.Lead, Value: 20, Unit: tapproof.MicrogramsPerLiter, Level: 15, Rule: "us-lead-lcr@v1",
		SampledAt: latest, RaisedAt: raised.UTC(),
	}
	if diff := cmp.Diff(want, a); !ok || diff != "" {
		t.Errorf("SystemAlert = %t (-want +got):\n%s", ok, diff)
	}

	// Without the two highest samples the period is not exceeded: no alert.
	rep, err = compliance.Compute(compliance.Params{Utility: "flint", Period: "2026H2", Rounding: compliance.HalfUp}, ss[:8], nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := rep.SystemAlert(raised); ok {
		t.Errorf("SystemAlert of a period at %v against %v = %+v, want none", rep.P90, rep.ActionLevel, a)
	}
}
