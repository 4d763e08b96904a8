package tapproof

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Payload types of the compliance entries of a utility's log.
const (
	// LabSamplePayloadType is the DSSE payload type of a compliance tap
	// sample result, signed by the certified laboratory that analysed it.
	LabSamplePayloadType = "application/vnd.tapproof.lab-sample.v1+json"
	// InvalidationPayloadType is the DSSE payload type of a state reviewer's
	// invalidation of one lab sample, signed by the reviewer.
	InvalidationPayloadType = "application/vnd.tapproof.invalidation.v1+json"
)

// Liter says which liter of a first-draw tap sample was analysed.
type Liter int

// Liters. Every compliance site is sampled at the first liter; under LCRI
// (and Michigan's rule) lead-service-line sites are also sampled at the
// fifth liter, and the higher of the two counts.
const (
	FirstLiter Liter = 1
	FifthLiter Liter = 5
)

// MaxReasonLength bounds an invalidation's reason text, in bytes.
const MaxReasonLength = 4096

// sampleIDPattern admits laboratory sample ids such as "L2026-00123": letters,
// digits, hyphens and underscores, but no dots, so that an id is one NATS
// subject token.
var sampleIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// LabSample is a compliance tap sample result: the payload a certified
// laboratory signs. Value, Unit and DetectionLimit are as the lab reported
// them; Normalize converts them to the analyte's canonical unit (lead in
// µg/L, copper in mg/L).
type LabSample struct {
	Lab      string `json:"lab"`       // certified laboratory id
	SampleID string `json:"sample_id"` // the lab's sample id, unique per lab
	Utility  string `json:"utility"`   // water system
	Site     string `json:"site"`      // sample site id
	Tier     int    `json:"tier"`      // site tier, 1 (highest risk) to 5
	// LeadServiceLine says the site is served by a lead service line.
	LeadServiceLine bool  `json:"lead_service_line"`
	Liter           Liter `json:"liter"` // 1 or 5; 5 only at a lead-service-line site
	// Event identifies the collection event (one draw) that a site's
	// first- and fifth-liter samples share. If empty, the samples of one
	// site collected on the same day (in collected_at's own offset) are one
	// event.
	Event          string    `json:"event,omitempty"`
	Analyte        Analyte   `json:"analyte"` // lead or copper
	Value          float64   `json:"value"`
	Unit           Unit      `json:"unit"`
	DetectionLimit float64   `json:"detection_limit"` // in Unit; required if BelowDetection
	BelowDetection bool      `json:"below_detection"` // the result is below the detection limit
	CollectedAt    time.Time `json:"collected_at"`
	AnalyzedAt     time.Time `json:"analyzed_at"`
	Period         string    `json:"period"` // monitoring period id, e.g. "2026H2"
	// Method is the analytical method, e.g. "EPA 200.8"; optional.
	Method string `json:"method,omitempty"`
}

// LabDevice is the Device of the reading a lab sample is checked for alerts
// as: "<lab>.<utility>". The dot, which no device id contains, keeps its
// alert ids apart from any device's, and the utility keeps apart the
// samples one lab analyses for several utilities.
func LabDevice(utility, lab string) string { return lab + "." + utility }

// IndividualAlertID is the id of the individual compliance alert that the
// sample of lab at leaf index of utility's log raises if it is above the
// action level: anyone holding the log can tell which notices were due.
func IndividualAlertID(utility, lab string, index uint64) string {
	return AlertID(IndividualCompliance, LabDevice(utility, lab), index)
}

// Reading returns lab sample s, accepted at leaf index, as a reading, the
// shape the dashboards and the alert store share: method Lab; device
// LabDevice; sequence number the leaf index, so that its alert's id is
// deterministic and names the sample's entry in the log; sampled at the
// collection time; value the one the sample counts with (zero below the
// detection limit).
func (s LabSample) Reading(index uint64) Reading {
	return Reading{
		Utility: s.Utility, Site: s.Site, Device: LabDevice(s.Utility, s.Lab), Seq: index,
		Analyte: s.Analyte, Value: s.Counted(), Unit: s.Unit, Method: Lab,
		SampledAt: s.CollectedAt, DetectionLimit: s.DetectionLimit,
	}
}

// Key identifies a lab sample: "<lab>/<sample id>".
func (s LabSample) Key() string { return LabSampleKey(s.Lab, s.SampleID) }

// LabSampleKey formats the identity of sample id of lab.
func LabSampleKey(lab, sampleID string) string { return lab + "/" + sampleID }

// EventKey identifies the collection event of s at its site: Event if set,
// else the collection date in collected_at's own offset.
func (s LabSample) EventKey() string {
	if s.Event != "" {
		return s.Event
	}
	return s.CollectedAt.Format(time.DateOnly)
}

// Counted is the value s contributes to a 90th percentile, in the canonical
// unit: zero if the result is below the detection limit (docs/domain.md), else
// its value. s must be normalised.
func (s LabSample) Counted() float64 {
	if s.BelowDetection {
		return 0
	}
	return s.Value
}

// Normalize validates s and returns a copy whose Value, DetectionLimit and
// Unit are in the analyte's canonical unit, rounded to 1e-6 of that unit so
// that a lab's 0.0151 mg/L compares as exactly 15.1 µg/L. It does not look at
// the clock (see CheckClock). The error is always a *Rejection.
func (s LabSample) Normalize() (LabSample, error) {
	for _, f := range []struct{ name, v string }{{"lab", s.Lab}, {"utility", s.Utility}, {"site", s.Site}} {
		if !ValidID(f.v) {
			return s, Reject(ReasonInvalid, "%s id %q must match %s", f.name, f.v, idPattern)
		}
	}
	if !sampleIDPattern.MatchString(s.SampleID) {
		return s, Reject(ReasonInvalid, "sample_id %q must match %s", s.SampleID, sampleIDPattern)
	}
	if s.Event != "" && !sampleIDPattern.MatchString(s.Event) {
		return s, Reject(ReasonInvalid, "event %q must match %s", s.Event, sampleIDPattern)
	}
	if s.Tier < 1 || s.Tier > 5 {
		return s, Reject(ReasonInvalid, "tier %d is not a site tier 1 to 5", s.Tier)
	}
	switch s.Liter {
	case FirstLiter:
	case FifthLiter:
		if !s.LeadServiceLine {
			return s, Reject(ReasonInvalid, "a fifth-liter sample is taken only at a lead-service-line site; site %s is not one", s.Site)
		}
	default:
		return s, Reject(ReasonInvalid, "liter %d: want 1 (first) or 5 (fifth)", s.Liter)
	}
	if s.Analyte != Lead && s.Analyte != Copper {
		return s, Reject(ReasonInvalid, "analyte %q: a compliance sample is lead or copper", s.Analyte)
	}
	p, err := ParsePeriod(s.Period)
	if err != nil {
		return s, err
	}
	switch {
	case s.CollectedAt.IsZero():
		return s, Reject(ReasonMalformed, "collected_at missing")
	case s.AnalyzedAt.IsZero():
		return s, Reject(ReasonMalformed, "analyzed_at missing")
	case s.AnalyzedAt.Before(s.CollectedAt):
		return s, Reject(ReasonInvalid, "analyzed_at %s is before collected_at %s",
			s.AnalyzedAt.Format(time.RFC3339), s.CollectedAt.Format(time.RFC3339))
	case !p.Contains(s.CollectedAt):
		return s, Reject(ReasonInvalid, "collected_at %s is outside monitoring period %s", s.CollectedAt.Format(time.RFC3339), p)
	}
	v, err := s.Analyte.Normalize(s.Value, s.Unit)
	if err != nil {
		return s, err
	}
	if err := s.Analyte.CheckValue(v); err != nil {
		return s, err
	}
	dl, err := s.Analyte.Normalize(s.DetectionLimit, s.Unit)
	if err != nil {
		return s, err
	}
	if err := s.Analyte.CheckValue(dl); err != nil {
		return s, Reject(ReasonAbsurd, "detection limit: %v", err)
	}
	v, dl = roundCanonical(v), roundCanonical(dl)
	switch {
	case s.BelowDetection && dl == 0:
		return s, Reject(ReasonInvalid, "a result below the detection limit must state the detection limit")
	case s.BelowDetection && v > dl:
		return s, Reject(ReasonInvalid, "value %g is flagged below the detection limit %g but exceeds it", s.Value, s.DetectionLimit)
	case !s.BelowDetection && v < dl:
		return s, Reject(ReasonInvalid, "value %g is below the detection limit %g but below_detection is false", s.Value, s.DetectionLimit)
	}
	out := s
	out.Value, out.DetectionLimit = v, dl
	out.Unit, _ = s.Analyte.CanonicalUnit()
	out.Period = p.ID
	return out, nil
}

// CheckClock rejects a sample analysed more than skew after now
// (DefaultClockSkew if skew is zero). Ingest calls it at receipt; a
// recomputation from the log does not.
func (s LabSample) CheckClock(now time.Time, skew time.Duration) error {
	return checkClock("analyzed_at", s.AnalyzedAt, now, skew)
}

func checkClock(field string, t, now time.Time, skew time.Duration) error {
	if skew == 0 {
		skew = DefaultClockSkew
	}
	if t.After(now.Add(skew)) {
		return Reject(ReasonFuture, "%s %s is more than %s after receipt at %s",
			field, t.Format(time.RFC3339), skew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// roundCanonical rounds v to 1e-6 of the canonical unit, far below any
// laboratory's precision, removing the binary noise of a unit conversion.
func roundCanonical(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// Invalidation is a state reviewer's decision that one lab sample is not a
// valid compliance sample. It is a signed entry appended to the utility's
// log after the sample, never a deletion: the sample stays in the log and the
// compliance report lists it as excluded, with the reason.
type Invalidation struct {
	Utility  string `json:"utility"`   // the log the sample is in
	Lab      string `json:"lab"`       // the sample's laboratory
	SampleID string `json:"sample_id"` // the lab's sample id
	// SampleIndex is the leaf index of the sample's entry in the log.
	SampleIndex uint64    `json:"sample_index"`
	Reason      string    `json:"reason"`
	Reviewer    string    `json:"reviewer"` // the state reviewer's id
	DecidedAt   time.Time `json:"decided_at"`
}

// SampleKey is the key of the invalidated sample, as LabSample.Key.
func (inv Invalidation) SampleKey() string { return LabSampleKey(inv.Lab, inv.SampleID) }

// Validate checks that inv is complete and well formed. The error is always a
// *Rejection.
func (inv Invalidation) Validate() error {
	for _, f := range []struct{ name, v string }{{"utility", inv.Utility}, {"lab", inv.Lab}, {"reviewer", inv.Reviewer}} {
		if !ValidID(f.v) {
			return Reject(ReasonInvalid, "%s id %q must match %s", f.name, f.v, idPattern)
		}
	}
	if !sampleIDPattern.MatchString(inv.SampleID) {
		return Reject(ReasonInvalid, "sample_id %q must match %s", inv.SampleID, sampleIDPattern)
	}
	if strings.TrimSpace(inv.Reason) == "" {
		return Reject(ReasonInvalid, "an invalidation must give its reason")
	}
	if len(inv.Reason) > MaxReasonLength {
		return Reject(ReasonInvalid, "reason of %d bytes exceeds %d", len(inv.Reason), MaxReasonLength)
	}
	if inv.DecidedAt.IsZero() {
		return Reject(ReasonMalformed, "decided_at missing")
	}
	return nil
}

// CheckClock rejects an invalidation decided more than skew after now
// (DefaultClockSkew if skew is zero).
func (inv Invalidation) CheckClock(now time.Time, skew time.Duration) error {
	return checkClock("decided_at", inv.DecidedAt, now, skew)
}

// Targets checks that inv, at leaf index at, invalidates sample s found at
// leaf index sampleAt of the same log: the sample must be earlier in the log
// and be the one inv names. The error is always a *Rejection.
func (inv Invalidation) Targets(at uint64, s LabSample, sampleAt uint64) error {
	switch {
	case inv.SampleIndex != sampleAt:
		return Reject(ReasonInvalid, "invalidation names leaf %d, not %d", inv.SampleIndex, sampleAt)
	case sampleAt >= at:
		return Reject(ReasonInvalid, "invalidation at leaf %d is not after the sample at leaf %d", at, sampleAt)
	case s.Utility != inv.Utility || s.Key() != inv.SampleKey():
		return Reject(ReasonInvalid, "leaf %d is sample %s of %s, the invalidation names %s of %s",
			sampleAt, s.Key(), s.Utility, inv.SampleKey(), inv.Utility)
	}
	return nil
}

// Period is a compliance monitoring period: a half year ("2026H1" is January
// to June, "2026H2" July to December), a calendar year ("2026", annual
// monitoring) or a span of whole years ("2026-2028", triennial monitoring).
type Period struct {
	ID    string
	Start time.Time // first day, 00:00 UTC
	End   time.Time // the day after the last day, 00:00 UTC
}

// String returns the period's id.
func (p Period) String() string { return p.ID }

// Contains reports whether t falls in p, by t's calendar date in its own
// offset: a sample taken at 23:30 on 31 December local time belongs to that
// year whatever the hour in UTC.
func (p Period) Contains(t time.Time) bool {
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return !day.Before(p.Start) && day.Before(p.End)
}

// LastDay returns the last day of p.
func (p Period) LastDay() time.Time { return p.End.AddDate(0, 0, -1) }

var periodPattern = regexp.MustCompile(`^(\d{4})(?:(H[12])|-(\d{4}))?$`)

// ParsePeriod parses a monitoring period id. The error is a *Rejection.
func ParsePeriod(id string) (Period, error) {
	m := periodPattern.FindStringSubmatch(id)
	if m == nil {
		return Period{}, Reject(ReasonInvalid, "monitoring period %q: want YYYYH1, YYYYH2, YYYY or YYYY-YYYY", id)
	}
	y, _ := strconv.Atoi(m[1])
	if y < 1991 { // the Lead and Copper Rule
		return Period{}, Reject(ReasonInvalid, "monitoring period %q is before the Lead and Copper Rule", id)
	}
	p := Period{ID: id, Start: time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC)}
	switch {
	case m[2] == "H1":
		p.End = p.Start.AddDate(0, 6, 0)
	case m[2] == "H2":
		p.Start = p.Start.AddDate(0, 6, 0)
		p.End = p.Start.AddDate(0, 6, 0)
	case m[3] != "":
		last, _ := strconv.Atoi(m[3])
		if last <= y || last-y > 8 {
			return Period{}, Reject(ReasonInvalid, "monitoring period %q: the last year must follow the first, within 9 years", id)
		}
		p.End = time.Date(last+1, time.January, 1, 0, 0, 0, 0, time.UTC)
	default:
		p.End = p.Start.AddDate(1, 0, 0)
	}
	return p, nil
}

// String returns "first" or "fifth".
func (l Liter) String() string {
	switch l {
	case FirstLiter:
		return "first"
	case FifthLiter:
		return "fifth"
	}
	return fmt.Sprintf("liter(%d)", int(l))
}
