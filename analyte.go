package tapproof

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Analyte is an observed property: what a reading measures.
type Analyte string

// Analytes tapproof understands. Lead and copper are measured directly
// (electrochemical or fluorescent field sensors, or a certified lab). NIRS
// sensors cannot see dissolved lead; they report surrogate channels derived
// from a calibration model: turbidity, total organic carbon and iron.
const (
	Lead      Analyte = "lead"
	Copper    Analyte = "copper"
	Turbidity Analyte = "turbidity"
	TOC       Analyte = "toc"
	Iron      Analyte = "iron"
)

// Unit is a UCUM unit code.
type Unit string

// Units tapproof accepts. Lead is stored in µg/L (= ppb); mg/L is accepted and
// converted. Copper, TOC and iron are stored in mg/L.
const (
	MicrogramsPerLiter Unit = "ug/L"
	MilligramsPerLiter Unit = "mg/L"
	NTU                Unit = "[NTU]"
)

// Method is how a value was obtained.
type Method string

// Methods. ASV (anodic stripping voltammetry) and fluorescence are lead
// screening sensors; NIRS is near-infrared reflectance spectroscopy with a
// calibration model; Lab is a certified laboratory result.
const (
	ASV          Method = "ASV"
	Fluorescence Method = "fluorescence"
	NIRS         Method = "NIRS"
	Lab          Method = "lab"
)

// reports lists, for each method, the analytes a device's reading by that
// method may report; Method.Reports reads it, and ingest refuses every other
// pairing as not_permitted. Lead sensors (ASV, fluorescence) measure lead and
// copper directly. NIRS cannot see dissolved lead, which has no
// near-infrared signature (docs/domain.md): its calibration models estimate
// surrogate channels only, so a NIRS "lead" or "copper" value is not a
// measurement of either and must never reach a screening alert, a resident or
// a dashboard. Lab has no entry: a laboratory's results arrive as LabSamples
// signed with an enrolled lab's key, never as a device's Reading, so that no
// sensor can present its value as a certified result.
var reports = map[Method][]Analyte{
	ASV:          {Lead, Copper},
	Fluorescence: {Lead, Copper},
	NIRS:         {Turbidity, TOC, Iron},
}

// Reports reports whether a device's reading by method m may report analyte
// a. It is false for every analyte of Lab, and of a method tapproof does not
// know.
func (m Method) Reports(a Analyte) bool { return slices.Contains(reports[m], a) }

// analyteSpec says how an analyte is stored and what values are plausible.
type analyteSpec struct {
	unit Unit    // canonical unit values are stored in
	max  float64 // largest plausible value in the canonical unit
}

// The plausibility limits are far above anything seen in drinking water
// (Flint's worst tap sample was about 13,200 µg/L of lead) and exist to reject
// absurd values from broken or hostile devices, not to judge water.
var analytes = map[Analyte]analyteSpec{
	Lead:      {unit: MicrogramsPerLiter, max: 100_000},
	Copper:    {unit: MilligramsPerLiter, max: 1_000},
	Turbidity: {unit: NTU, max: 10_000},
	TOC:       {unit: MilligramsPerLiter, max: 1_000},
	Iron:      {unit: MilligramsPerLiter, max: 1_000},
}

// CanonicalUnit returns the unit values of a are stored in.
func (a Analyte) CanonicalUnit() (Unit, bool) {
	s, ok := analytes[a]
	return s.unit, ok
}

// Normalize converts value in unit u to a's canonical unit.
func (a Analyte) Normalize(value float64, u Unit) (float64, error) {
	spec, ok := analytes[a]
	if !ok {
		return 0, &Rejection{Reason: ReasonInvalid, Detail: fmt.Sprintf("unknown analyte %q", a)}
	}
	u = Unit(strings.TrimSpace(string(u)))
	switch {
	case u == spec.unit:
		return value, nil
	case u == MilligramsPerLiter && spec.unit == MicrogramsPerLiter:
		return value * 1000, nil
	case u == MicrogramsPerLiter && spec.unit == MilligramsPerLiter:
		return value / 1000, nil
	}
	return 0, &Rejection{Reason: ReasonInvalid, Detail: fmt.Sprintf("unit %q not accepted for %s (want %s)", u, a, spec.unit)}
}

// CheckValue reports whether v, in a's canonical unit, is a plausible value:
// finite, non-negative and below the analyte's plausibility limit.
func (a Analyte) CheckValue(v float64) error {
	spec, ok := analytes[a]
	if !ok {
		return &Rejection{Reason: ReasonInvalid, Detail: fmt.Sprintf("unknown analyte %q", a)}
	}
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return &Rejection{Reason: ReasonAbsurd, Detail: "value is not a finite number"}
	case v < 0:
		return &Rejection{Reason: ReasonAbsurd, Detail: fmt.Sprintf("negative %s value %g", a, v)}
	case v > spec.max:
		return &Rejection{Reason: ReasonAbsurd, Detail: fmt.Sprintf("%s value %g %s above plausible maximum %g", a, v, spec.unit, spec.max)}
	}
	return nil
}
