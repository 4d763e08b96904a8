package tapproof_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
)

func labSample() tapproof.LabSample {
	return tapproof.LabSample{
		Lab: "acme-labs", SampleID: "L2026-00123", Utility: "flint", Site: "s-101", Tier: 1,
		LeadServiceLine: true, Liter: tapproof.FirstLiter, Analyte: tapproof.Lead,
		Value: 0.0151, Unit: tapproof.MilligramsPerLiter, DetectionLimit: 0.001,
		CollectedAt: time.Date(2026, 8, 3, 6, 30, 0, 0, time.UTC),
		AnalyzedAt:  time.Date(2026, 8, 5, 14, 0, 0, 0, time.UTC),
		Period:      "2026H2", Method: "EPA 200.8",
	}
}

func TestLabSampleNormalize(t *testing.T) {
	got, err := labSample().Normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := labSample()
	want.Value, want.DetectionLimit, want.Unit = 15.1, 1, tapproof.MicrogramsPerLiter
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
	// 0.0151*1000 is 15.100000000000001 in float64; the rounding keeps a
	// lab's 0.015 mg/L from becoming an exceedance of 15 µg/L.
	s := labSample()
	s.Value = 0.015
	got, err = s.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.Value != 15 {
		t.Errorf("Normalize(0.015 mg/L).Value = %v, want exactly 15", got.Value)
	}
}

func TestLabSampleNormalizeRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*tapproof.LabSample)
		reason tapproof.Reason
		detail string
	}{
		{"bad lab id", func(s *tapproof.LabSample) { s.Lab = "Acme Labs" }, tapproof.ReasonInvalid, "lab id"},
		{"sample id with a dot", func(s *tapproof.LabSample) { s.SampleID = "a.b" }, tapproof.ReasonInvalid, "sample_id"},
		{"tier 0", func(s *tapproof.LabSample) { s.Tier = 0 }, tapproof.ReasonInvalid, "tier 0"},
		{"tier 6", func(s *tapproof.LabSample) { s.Tier = 6 }, tapproof.ReasonInvalid, "tier 6"},
		{"liter 2", func(s *tapproof.LabSample) { s.Liter = 2 }, tapproof.ReasonInvalid, "liter 2"},
		{"fifth liter without a lead service line", func(s *tapproof.LabSample) {
			s.Liter, s.LeadServiceLine = tapproof.FifthLiter, false
		}, tapproof.ReasonInvalid, "fifth-liter"},
		{"iron", func(s *tapproof.LabSample) { s.Analyte = tapproof.Iron }, tapproof.ReasonInvalid, "lead or copper"},
		{"bad period", func(s *tapproof.LabSample) { s.Period = "2026Q3" }, tapproof.ReasonInvalid, "monitoring period"},
		{"collected outside the period", func(s *tapproof.LabSample) {
			s.CollectedAt = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
		}, tapproof.ReasonInvalid, "outside monitoring period"},
		{"analysed before collected", func(s *tapproof.LabSample) {
			s.AnalyzedAt = s.CollectedAt.Add(-time.Hour)
		}, tapproof.ReasonInvalid, "before collected_at"},
		{"no collected_at", func(s *tapproof.LabSample) { s.CollectedAt = time.Time{} }, tapproof.ReasonMalformed, "collected_at"},
		{"negative", func(s *tapproof.LabSample) { s.Value = -1 }, tapproof.ReasonAbsurd, "negative"},
		{"bad unit", func(s *tapproof.LabSample) { s.Unit = "ppm" }, tapproof.ReasonInvalid, "unit"},
		{"below detection without a limit", func(s *tapproof.LabSample) {
			s.BelowDetection, s.DetectionLimit, s.Value = true, 0, 0
		}, tapproof.ReasonInvalid, "must state the detection limit"},
		{"below detection but above the limit", func(s *tapproof.LabSample) { s.BelowDetection = true }, tapproof.ReasonInvalid, "exceeds it"},
		{"under the limit but not flagged", func(s *tapproof.LabSample) { s.Value = 0.0005 }, tapproof.ReasonInvalid, "below_detection is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := labSample()
			tc.edit(&s)
			_, err := s.Normalize()
			var rej *tapproof.Rejection
			if !errors.As(err, &rej) || rej.Reason != tc.reason || !strings.Contains(rej.Detail, tc.detail) {
				t.Errorf("Normalize() = %v, want a %s rejection mentioning %q", err, tc.reason, tc.detail)
			}
		})
	}
}

func TestLabSampleBelowDetectionCountsZero(t *testing.T) {
	s := labSample()
	s.Value, s.BelowDetection = 0.001, true
	n, err := s.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if n.Counted() != 0 {
		t.Errorf("Counted() of a result below the detection limit = %v, want 0", n.Counted())
	}
}

func TestLabSampleEventKey(t *testing.T) {
	s := labSample()
	s.CollectedAt = time.Date(2026, 8, 3, 23, 30, 0, 0, time.FixedZone("EDT", -4*3600))
	if got, want := s.EventKey(), "2026-08-03"; got != want {
		t.Errorf("EventKey() = %q, want %q (the local date)", got, want)
	}
	s.Event = "draw-7"
	if got, want := s.EventKey(), "draw-7"; got != want {
		t.Errorf("EventKey() = %q, want %q", got, want)
	}
}

func TestLabSampleCheckClock(t *testing.T) {
	s := labSample()
	if err := s.CheckClock(s.AnalyzedAt, 0); err != nil {
		t.Errorf("CheckClock(at analysis) = %v", err)
	}
	var rej *tapproof.Rejection
	if err := s.CheckClock(s.AnalyzedAt.Add(-time.Hour), 0); !errors.As(err, &rej) || rej.Reason != tapproof.ReasonFuture {
		t.Errorf("CheckClock(an hour before analysis) = %v, want future_timestamp", err)
	}
}

func TestParsePeriod(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		id   string
		want tapproof.Period
	}{
		{"2026H1", tapproof.Period{ID: "2026H1", Start: d(2026, 1, 1), End: d(2026, 7, 1)}},
		{"2026H2", tapproof.Period{ID: "2026H2", Start: d(2026, 7, 1), End: d(2027, 1, 1)}},
		{"2026", tapproof.Period{ID: "2026", Start: d(2026, 1, 1), End: d(2027, 1, 1)}},
		{"2026-2028", tapproof.Period{ID: "2026-2028", Start: d(2026, 1, 1), End: d(2029, 1, 1)}},
	} {
		got, err := tapproof.ParsePeriod(tc.id)
		if err != nil {
			t.Errorf("ParsePeriod(%q) = %v", tc.id, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParsePeriod(%q) (-want +got):\n%s", tc.id, diff)
		}
	}
	for _, id := range []string{"", "2026H3", "2026h2", "26H2", "2026-2026", "2028-2026", "1990", "2026Q1", " 2026H2"} {
		if _, err := tapproof.ParsePeriod(id); err == nil {
			t.Errorf("ParsePeriod(%q) = nil error, want a rejection", id)
		}
	}
}

func TestPeriodContainsUsesLocalDate(t *testing.T) {
	p, err := tapproof.ParsePeriod("2026H2")
	if err != nil {
		t.Fatal(err)
	}
	est := time.FixedZone("EST", -5*3600)
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{time.Date(2026, 12, 31, 23, 30, 0, 0, est), true}, // 04:30 UTC on 1 January
		{time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 6, 30, 23, 59, 0, 0, time.UTC), false},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := p.Contains(tc.t); got != tc.want {
			t.Errorf("2026H2.Contains(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func invalidation() tapproof.Invalidation {
	return tapproof.Invalidation{Utility: "flint", Lab: "acme-labs", SampleID: "L2026-00123", SampleIndex: 4,
		Reason: "sample taken from a tap not on the site plan", Reviewer: "mi-egle-rev1",
		DecidedAt: time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)}
}

func TestInvalidationValidate(t *testing.T) {
	if err := invalidation().Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*tapproof.Invalidation)
	}{
		{"no reason", func(i *tapproof.Invalidation) { i.Reason = "  " }},
		{"long reason", func(i *tapproof.Invalidation) { i.Reason = strings.Repeat("x", tapproof.MaxReasonLength+1) }},
		{"no reviewer", func(i *tapproof.Invalidation) { i.Reviewer = "" }},
		{"bad sample id", func(i *tapproof.Invalidation) { i.SampleID = "" }},
		{"no decided_at", func(i *tapproof.Invalidation) { i.DecidedAt = time.Time{} }},
	} {
		inv := invalidation()
		tc.edit(&inv)
		var rej *tapproof.Rejection
		if err := inv.Validate(); !errors.As(err, &rej) {
			t.Errorf("%s: Validate() = %v, want a *Rejection", tc.name, err)
		}
	}
}

func TestInvalidationTargets(t *testing.T) {
	s := labSample()
	inv := invalidation()
	if err := inv.Targets(9, s, 4); err != nil {
		t.Errorf("Targets(9, sample, 4) = %v", err)
	}
	other := s
	other.SampleID = "L2026-00999"
	for _, tc := range []struct {
		name     string
		at       uint64
		s        tapproof.LabSample
		sampleAt uint64
		detail   string
	}{
		{"other index", 9, s, 5, "names leaf 4"},
		{"not after", 4, s, 4, "not after"},
		{"other sample", 9, other, 4, "the invalidation names acme-labs/L2026-00123"},
	} {
		if err := inv.Targets(tc.at, tc.s, tc.sampleAt); err == nil || !strings.Contains(err.Error(), tc.detail) {
			t.Errorf("%s: Targets = %v, want an error mentioning %q", tc.name, err, tc.detail)
		}
	}
}

// FuzzNormalizeLabSample: whatever decodes, Normalize never lets through a
// negative value or a fifth-liter sample away from a lead service line.
// (Strict decoding is signed's: TestPayloadsDecodeStrictly.)
func FuzzNormalizeLabSample(f *testing.F) {
	f.Add([]byte(`{"lab":"acme-labs","sample_id":"S1","utility":"flint","site":"s1","tier":1,"liter":1,"analyte":"lead","value":3,"unit":"ug/L","detection_limit":1,"collected_at":"2026-08-01T06:00:00Z","analyzed_at":"2026-08-02T06:00:00Z","period":"2026H2"}`))
	f.Add([]byte(`{"liter":5,"lead_service_line":false}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s tapproof.LabSample
		if json.Unmarshal(b, &s) != nil {
			return
		}
		n, err := s.Normalize()
		if err != nil {
			return
		}
		if n.Value < 0 || n.Counted() < 0 || (n.Liter == tapproof.FifthLiter && !n.LeadServiceLine) {
			t.Errorf("Normalize accepted %+v", n)
		}
	})
}
