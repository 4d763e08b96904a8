package alerts_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
)

const firmware = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

var (
	june2026 = time.Date(2026, time.June, 1, 8, 0, 0, 0, time.UTC)
	now      = time.Date(2026, time.June, 1, 8, 0, 3, 0, time.UTC)
	lcri     = time.Date(2027, time.November, 1, 0, 0, 0, 0, time.UTC)
)

func lead(value float64) tapproof.Reading {
	return tapproof.Reading{
		Utility: "springfield", Site: "elm-st-12", Device: "asv-1", Seq: 7,
		Analyte: tapproof.Lead, Value: value, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: june2026, Firmware: firmware, DetectionLimit: 0.5,
	}
}

func TestEvaluate(t *testing.T) {
	michigan := map[string]tapproof.Jurisdiction{"flint": "US-MI"}
	with := func(r tapproof.Reading, f func(*tapproof.Reading)) tapproof.Reading { f(&r); return r }
	alert := func(r tapproof.Reading, class tapproof.AlertClass, level float64, rule string) *tapproof.Alert {
		return &tapproof.Alert{
			ID: tapproof.AlertID(class, r.Device, r.Seq), Class: class,
			Utility: r.Utility, Site: r.Site, Device: r.Device, Seq: r.Seq,
			Analyte: r.Analyte, Value: r.Value, Unit: r.Unit, Level: level, Rule: rule,
			SampledAt: r.SampledAt, RaisedAt: now,
		}
	}
	copper := func(v float64) tapproof.Reading {
		return with(lead(v), func(r *tapproof.Reading) {
			r.Analyte, r.Unit, r.DetectionLimit = tapproof.Copper, tapproof.MilligramsPerLiter, 0
		})
	}
	at := func(r tapproof.Reading, t time.Time) tapproof.Reading {
		return with(r, func(r *tapproof.Reading) { r.SampledAt = t })
	}
	inFlint := func(r tapproof.Reading) tapproof.Reading {
		return with(r, func(r *tapproof.Reading) { r.Utility = "flint" })
	}

	tests := []struct {
		name          string
		jurisdictions map[string]tapproof.Jurisdiction
		override      float64
		in            tapproof.Reading
		want          *tapproof.Alert // nil: no alert
	}{
		{name: "exactly 15 ppb is not above", in: lead(15)},
		{name: "below 15 ppb", in: lead(3.2)},
		{name: "16 ppb", in: lead(16), want: alert(lead(16), tapproof.Screening, 15, "us-lead-lcr@v1")},
		{name: "15.0001 ppb", in: lead(15.0001), want: alert(lead(15.0001), tapproof.Screening, 15, "us-lead-lcr@v1")},
		{name: "fluorescence sensor screens", in: with(lead(40), func(r *tapproof.Reading) { r.Method = tapproof.Fluorescence }),
			want: alert(with(lead(40), func(r *tapproof.Reading) { r.Method = tapproof.Fluorescence }), tapproof.Screening, 15, "us-lead-lcr@v1")},
		{name: "a lab result is a lab sample, not a reading", in: with(lead(16), func(r *tapproof.Reading) { r.Method = tapproof.Lab })},
		{name: "lead in mg/L is compared in ppb", in: with(lead(0.016), func(r *tapproof.Reading) { r.Unit, r.DetectionLimit = tapproof.MilligramsPerLiter, 0 }),
			want: alert(lead(16), tapproof.Screening, 15, "us-lead-lcr@v1")},
		{name: "below the detection limit counts as zero", in: with(lead(16), func(r *tapproof.Reading) { r.DetectionLimit = 20 })},
		{name: "copper at 1.3 mg/L", in: copper(1.3)},
		{name: "copper above 1.3 mg/L", in: copper(1.31), want: alert(copper(1.31), tapproof.Screening, 1.3, "us-copper-lcr@v1")},
		{name: "turbidity has no rule", in: with(lead(900), func(r *tapproof.Reading) {
			r.Analyte, r.Unit, r.Method, r.Model, r.DetectionLimit = tapproof.Turbidity, tapproof.NTU, tapproof.NIRS, "pls-1", 0
		})},
		{name: "11 ppb on 31 Oct 2027", in: at(lead(11), lcri.Add(-time.Second))},
		{name: "11 ppb from 1 Nov 2027 (LCRI)", in: at(lead(11), lcri),
			want: alert(at(lead(11), lcri), tapproof.Screening, 10, "us-lead-lcri@v1")},
		{name: "10 ppb under LCRI", in: at(lead(10), lcri.Add(time.Hour))},
		{name: "Michigan 12.5 ppb", jurisdictions: michigan, in: inFlint(lead(12.5)),
			want: alert(inFlint(lead(12.5)), tapproof.Screening, 12, "us-mi-lead@v1")},
		{name: "Michigan exactly 12 ppb", jurisdictions: michigan, in: inFlint(lead(12))},
		{name: "Michigan rule not yet in force in 2024", jurisdictions: michigan, in: at(inFlint(lead(13)), time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC))},
		{name: "Michigan under LCRI takes the stricter 10 ppb", jurisdictions: michigan, in: at(inFlint(lead(11)), lcri),
			want: alert(at(inFlint(lead(11)), lcri), tapproof.Screening, 10, "us-lead-lcri@v1")},
		{name: "other utilities stay federal", jurisdictions: michigan, in: lead(12.5)},
		{name: "override lowers the level", override: 5, in: lead(6),
			want: alert(lead(6), tapproof.Screening, 5, "lead-override@v1")},
		{name: "override at the level", override: 5, in: lead(5)},
		{name: "override replaces Michigan's level", override: 20, jurisdictions: michigan, in: inFlint(lead(16))},
		{name: "override applies under LCRI too", override: 20, in: at(lead(16), lcri)},
		{name: "override leaves copper alone", override: 5, in: copper(1.31), want: alert(copper(1.31), tapproof.Screening, 1.3, "us-copper-lcr@v1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := alerts.NewEvaluator(tapproof.RuleBook{Jurisdictions: tt.jurisdictions, LeadOverride: tt.override})
			got, ok := e.Evaluate(tt.in, now)
			if tt.want == nil {
				if ok {
					t.Errorf("Evaluate(%v %s) = %+v, want no alert", tt.in.Value, tt.in.Unit, got)
				}
				return
			}
			if !ok {
				t.Fatalf("Evaluate(%v %s) = no alert, want %+v", tt.in.Value, tt.in.Unit, *tt.want)
			}
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("Evaluate(%v %s) (-want +got):\n%s", tt.in.Value, tt.in.Unit, diff)
			}
		})
	}
}

func TestEvaluateIsDeterministic(t *testing.T) {
	e := alerts.NewEvaluator(tapproof.RuleBook{})
	a1, _ := e.Evaluate(lead(40), now)
	a2, _ := e.Evaluate(lead(40), now.Add(time.Hour))
	if a1.ID != a2.ID || a1.ID != "screening-asv-1-7" {
		t.Errorf("alert ids %q and %q for one reading, want both screening-asv-1-7", a1.ID, a2.ID)
	}
}

// TestEvaluateSampleNamesItsSample: an individual compliance alert carries
// the sample it is about, "<lab>/<sample id>", and validates; the notifier
// sends it to that sample's subscriptions only.
func TestEvaluateSampleNamesItsSample(t *testing.T) {
	s := tapproof.LabSample{Lab: "acme-labs", SampleID: "L2026-00123", Utility: "springfield", Site: "elm-st-12", Tier: 1,
		Liter: tapproof.FirstLiter, Analyte: tapproof.Lead, Value: 22, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1,
		CollectedAt: june2026, AnalyzedAt: june2026.Add(time.Hour), Period: "2026H1"}
	a, ok := alerts.NewEvaluator(tapproof.RuleBook{}).EvaluateSample(s, 41, now)
	if !ok {
		t.Fatal("EvaluateSample(22 ppb) raised nothing")
	}
	if a.Sample != "acme-labs/L2026-00123" || a.ID != tapproof.IndividualAlertID("springfield", "acme-labs", 41) || !a.Class.Private() {
		t.Errorf("EvaluateSample = sample %q, id %s, class %s; want acme-labs/L2026-00123's private alert", a.Sample, a.ID, a.Class)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("Validate(EvaluateSample's alert) = %v", err)
	}
	if r, ok := alerts.NewEvaluator(tapproof.RuleBook{}).Evaluate(lead(22), now); !ok || r.Sample != "" || r.Class.Private() {
		t.Errorf("Evaluate(screening) = %+v, %t; want a public alert naming no sample", r, ok)
	}
}
