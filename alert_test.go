package tapproof_test

import (
	"math"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
)

func TestAlertValidate(t *testing.T) {
	good := tapproof.Alert{ID: "screening-d1-1", Class: tapproof.Screening, Utility: "u1", Site: "s1", Device: "d1", Seq: 1,
		Analyte: tapproof.Lead, Value: 16, Unit: tapproof.MicrogramsPerLiter, Level: 15, RaisedAt: time.Now()}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	system := good
	system.Class, system.Site = tapproof.SystemExceedance, ""
	if err := system.Validate(); err != nil {
		t.Errorf("Validate(system alert without a site) = %v", err)
	}
	individual := good
	individual.Class, individual.Sample = tapproof.IndividualCompliance, "acme-labs/L2026-00123"
	if err := individual.Validate(); err != nil {
		t.Errorf("Validate(individual alert with its sample) = %v", err)
	}
	legacy := individual
	legacy.Sample = ""
	if err := legacy.Validate(); err != nil {
		t.Errorf("Validate(individual alert stored before alerts named their sample) = %v", err)
	}
	for _, bad := range []string{"acme-labs", "acme-labs/", "/L1", "Acme Labs/L1", "acme-labs/L1.2", "acme-labs/L1/2"} {
		a := individual
		a.Sample = bad
		if err := a.Validate(); err == nil {
			t.Errorf("Validate(individual alert with sample %q) = nil, want an error", bad)
		}
	}
	for name, mut := range map[string]func(*tapproof.Alert){
		"no id":             func(a *tapproof.Alert) { a.ID = "" },
		"unknown class":     func(a *tapproof.Alert) { a.Class = "panic" },
		"bad utility":       func(a *tapproof.Alert) { a.Utility = "Flint MI" },
		"screening no site": func(a *tapproof.Alert) { a.Site = "" },
		"bad site":          func(a *tapproof.Alert) { a.Site = "../x" },
		"level 0":           func(a *tapproof.Alert) { a.Level = 0 },
		"NaN value":         func(a *tapproof.Alert) { a.Value = math.NaN() },
		"negative value":    func(a *tapproof.Alert) { a.Value = -1 },
		"unknown analyte":   func(a *tapproof.Alert) { a.Analyte = "arsenic" },
		"unknown msg type":  func(a *tapproof.Alert) { a.MsgType = "Panic" },
		"unknown status":    func(a *tapproof.Alert) { a.Status = "gone" },
		"never raised":      func(a *tapproof.Alert) { a.RaisedAt = time.Time{} },
		"screening sample":  func(a *tapproof.Alert) { a.Sample = "acme-labs/L1" },
	} {
		a := good
		mut(&a)
		if err := a.Validate(); err == nil {
			t.Errorf("Validate(%s) = nil, want an error", name)
		}
	}
}

func TestExceedancePeriod(t *testing.T) {
	alert := func(class tapproof.AlertClass, id string) tapproof.Alert {
		return tapproof.Alert{ID: id, Class: class, Utility: "flint-city", Analyte: tapproof.Lead}
	}
	tests := []struct {
		name string
		a    tapproof.Alert
		want string // "" when none
	}{
		{"half year", alert(tapproof.SystemExceedance, tapproof.SystemExceedanceID("flint-city", tapproof.Lead, "2026H1")), "2026H1"},
		{"years", alert(tapproof.SystemExceedance, tapproof.SystemExceedanceID("flint-city", tapproof.Lead, "2026-2028")), "2026-2028"},
		{"copper", tapproof.Alert{ID: tapproof.SystemExceedanceID("flint-city", tapproof.Copper, "2026"), Class: tapproof.SystemExceedance,
			Utility: "flint-city", Analyte: tapproof.Copper}, "2026"},
		{"another utility's id", alert(tapproof.SystemExceedance, tapproof.SystemExceedanceID("flint", tapproof.Lead, "2026H1")), ""},
		{"another analyte's id", alert(tapproof.SystemExceedance, tapproof.SystemExceedanceID("flint-city", tapproof.Copper, "2026H1")), ""},
		{"no period", alert(tapproof.SystemExceedance, "system_exceedance-flint-city-lead-"), ""},
		{"not a period", alert(tapproof.SystemExceedance, "system_exceedance-flint-city-lead-2026h3"), ""},
		{"upper case id", alert(tapproof.SystemExceedance, "system_exceedance-flint-city-lead-2026H1"), ""},
		{"another class", alert(tapproof.IndividualCompliance, tapproof.SystemExceedanceID("flint-city", tapproof.Lead, "2026H1")), ""},
	}
	for _, tt := range tests {
		p, ok := tt.a.ExceedancePeriod()
		if ok != (tt.want != "") || p.ID != tt.want {
			t.Errorf("%s: ExceedancePeriod(%s) = %q, %t; want %q", tt.name, tt.a.ID, p.ID, ok, tt.want)
		}
	}
}
