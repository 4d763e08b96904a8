package compliance_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
)

var collected = time.Date(2026, 8, 3, 6, 30, 0, 0, time.UTC)

// sample returns a normalised first-liter lead sample at its own site,
// leaf index i, value v µg/L.
func sample(i uint64, v float64) compliance.Sample {
	return compliance.Sample{Index: i, LabSample: tapproof.LabSample{
		Lab: "acme-labs", SampleID: fmt.Sprintf("S%d", i), Utility: "flint", Site: fmt.Sprintf("site-%d", i),
		Tier: 1, Liter: tapproof.FirstLiter, Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter,
		DetectionLimit: 1, CollectedAt: collected, AnalyzedAt: collected.Add(48 * time.Hour), Period: "2026H2",
	}}
}

// samples returns one sample per value, at leaf indexes 0, 1, ...
func samples(vs ...float64) []compliance.Sample {
	out := make([]compliance.Sample, len(vs))
	for i, v := range vs {
		out[i] = sample(uint64(i), v)
	}
	return out
}

func bdl(s compliance.Sample, dl float64) compliance.Sample {
	s.BelowDetection, s.DetectionLimit, s.Value = true, dl, dl
	return s
}

// lsl returns s as a sample at lead-service-line site at, of liter l.
func lsl(s compliance.Sample, site string, l tapproof.Liter) compliance.Sample {
	s.Site, s.LeadServiceLine, s.Liter = site, true, l
	return s
}

// TestRank checks the rank 0.9 × n under each rounding: the whole ranks
// where all roundings agree (n = 10, 20, 21, 22, 23) and the fractions
// where they differ (.4 rounds up only under Up; .5 goes to the even rank
// under HalfEven).
func TestRank(t *testing.T) {
	for _, tc := range []struct {
		n                  int
		exact              string
		halfUp, even, upTo int
	}{
		{6, "5.4", 5, 5, 6},
		{9, "8.1", 8, 8, 9},
		{10, "9", 9, 9, 9},
		{15, "13.5", 14, 14, 14}, // 13 is odd: half-even rounds up too
		{16, "14.4", 14, 14, 15},
		{20, "18", 18, 18, 18},
		{21, "18.9", 19, 19, 19},
		{22, "19.8", 20, 20, 20},
		{23, "20.7", 21, 21, 21},
		{25, "22.5", 23, 22, 23}, // 22 is even: half-even rounds down
		{45, "40.5", 41, 40, 41},
		{71, "63.9", 64, 64, 64}, // Flint, first half of 2015
	} {
		for _, r := range []struct {
			rounding compliance.Rounding
			want     int
		}{{compliance.HalfUp, tc.halfUp}, {compliance.HalfEven, tc.even}, {compliance.Up, tc.upTo}} {
			rank, exact, err := r.rounding.Rank(tc.n)
			if err != nil || rank != r.want || exact != tc.exact {
				t.Errorf("%s.Rank(%d) = %d, %q, %v; want %d, %q", r.rounding, tc.n, rank, exact, err, r.want, tc.exact)
			}
		}
	}
	if _, _, err := compliance.Rounding("nearest").Rank(10); err == nil {
		t.Error(`Rank with rounding "nearest" = nil error`)
	}
}

// TestP90 checks 40 CFR 141.80(c)(3) with worked numbers.
func TestP90(t *testing.T) {
	// ramp returns n samples valued 1.5, 3, 4.5, ... in descending order,
	// so that the value at rank k is 1.5k and the input order is not the
	// sorted order.
	ramp := func(n int) []compliance.Sample {
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = 1.5 * float64(n-i)
		}
		return samples(vs...)
	}
	for _, tc := range []struct {
		name     string
		samples  []compliance.Sample
		rounding compliance.Rounding
		method   compliance.P90Method
		ranks    []int
		exact    string
		want     float64
	}{
		{"n=1: the highest", samples(7), compliance.HalfUp, compliance.Highest, []int{1}, "0.9", 7},
		{"n=3: the highest", samples(2, 9, 4), compliance.HalfUp, compliance.Highest, []int{3}, "2.7", 9},
		{"n=4: the highest", samples(1, 20, 2, 3), compliance.HalfUp, compliance.Highest, []int{4}, "3.6", 20},
		// (10 + 17) / 2, not the value at rank 4.5 rounded.
		{"n=5: mean of the two highest", samples(3, 17, 1, 10, 2), compliance.Up, compliance.MeanOfTwoHighest, []int{4, 5}, "4.5", 13.5},
		{"n=6: rank 5.4 half-up", samples(1, 2, 3, 4, 5, 60), compliance.HalfUp, compliance.ByRank, []int{5}, "5.4", 5},
		{"n=6: rank 5.4 up", samples(1, 2, 3, 4, 5, 60), compliance.Up, compliance.ByRank, []int{6}, "5.4", 60},
		// sorted: 0.5 1 2 3 3.5 4 6 8 [14] 22
		{"n=10: rank 9", samples(22, 3, 0.5, 14, 1, 8, 3.5, 2, 6, 4), compliance.HalfEven, compliance.ByRank, []int{9}, "9", 14},
		{"n=20: rank 18", ramp(20), compliance.HalfUp, compliance.ByRank, []int{18}, "18", 27},
		{"n=21 half-up: rank 19", ramp(21), compliance.HalfUp, compliance.ByRank, []int{19}, "18.9", 28.5},
		{"n=21 half-even: rank 19", ramp(21), compliance.HalfEven, compliance.ByRank, []int{19}, "18.9", 28.5},
		{"n=21 up: rank 19", ramp(21), compliance.Up, compliance.ByRank, []int{19}, "18.9", 28.5},
		{"n=22 half-up: rank 20", ramp(22), compliance.HalfUp, compliance.ByRank, []int{20}, "19.8", 30},
		{"n=22 half-even: rank 20", ramp(22), compliance.HalfEven, compliance.ByRank, []int{20}, "19.8", 30},
		{"n=22 up: rank 20", ramp(22), compliance.Up, compliance.ByRank, []int{20}, "19.8", 30},
		{"n=23 half-up: rank 21", ramp(23), compliance.HalfUp, compliance.ByRank, []int{21}, "20.7", 31.5},
		{"n=23 half-even: rank 21", ramp(23), compliance.HalfEven, compliance.ByRank, []int{21}, "20.7", 31.5},
		{"n=23 up: rank 21", ramp(23), compliance.Up, compliance.ByRank, []int{21}, "20.7", 31.5},
		{"n=25 half-up: rank 23", ramp(25), compliance.HalfUp, compliance.ByRank, []int{23}, "22.5", 34.5},
		{"n=25 half-even: rank 22", ramp(25), compliance.HalfEven, compliance.ByRank, []int{22}, "22.5", 33},
		{"n=25 up: rank 23", ramp(25), compliance.Up, compliance.ByRank, []int{23}, "22.5", 34.5},
		{"n=16 half-up: rank 14", ramp(16), compliance.HalfUp, compliance.ByRank, []int{14}, "14.4", 21},
		{"n=16 up: rank 15", ramp(16), compliance.Up, compliance.ByRank, []int{15}, "14.4", 22.5},
		// Four results below a detection limit of 5 count as 0: (0 + 20) / 2
		// = 10, where counting them at the limit would give 12.5.
		{"below detection counts as zero", []compliance.Sample{
			bdl(sample(0, 0), 5), bdl(sample(1, 0), 5), bdl(sample(2, 0), 5), bdl(sample(3, 0), 5), sample(4, 20),
		}, compliance.HalfUp, compliance.MeanOfTwoHighest, []int{4, 5}, "4.5", 10},
		// Seven samples at five sites. Site a: first liter 4, fifth 18, the
		// fifth counts; site b: first 9, fifth 3, the first counts. Counted:
		// 1 2 6 9 18, n = 5: (9 + 18) / 2. Counting all seven would give
		// rank 6 of 1 2 3 4 6 9 18 = 9.
		{"lead service line: higher of first and fifth liter", []compliance.Sample{
			lsl(sample(0, 4), "a", tapproof.FirstLiter), lsl(sample(1, 18), "a", tapproof.FifthLiter),
			lsl(sample(2, 9), "b", tapproof.FirstLiter), lsl(sample(3, 3), "b", tapproof.FifthLiter),
			sample(4, 6), sample(5, 2), sample(6, 1),
		}, compliance.HalfUp, compliance.MeanOfTwoHighest, []int{4, 5}, "4.5", 13.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := compliance.P90(tc.samples, tc.rounding)
			if err != nil {
				t.Fatalf("P90 = %v", err)
			}
			if got.P90 != tc.want || got.Method != tc.method || got.RankExact != tc.exact || got.Rounding != tc.rounding {
				t.Errorf("P90 = %v by %s (exact rank %s, %s), want %v by %s (exact rank %s, %s)",
					got.P90, got.Method, got.RankExact, got.Rounding, tc.want, tc.method, tc.exact, tc.rounding)
			}
			if diff := cmp.Diff(tc.ranks, got.Ranks); diff != "" {
				t.Errorf("Ranks (-want +got):\n%s", diff)
			}
			for i, c := range got.Counted {
				if c.Rank != i+1 || i > 0 && c.Value < got.Counted[i-1].Value {
					t.Errorf("Counted[%d] = rank %d value %v: not ranked ascending", i, c.Rank, c.Value)
				}
			}
		})
	}
}

func TestP90Pairs(t *testing.T) {
	a1 := lsl(sample(0, 4), "a", tapproof.FirstLiter)
	a5 := lsl(sample(1, 18), "a", tapproof.FifthLiter)
	got, err := compliance.P90([]compliance.Sample{a1, a5}, compliance.HalfUp)
	if err != nil {
		t.Fatal(err)
	}
	want := []compliance.Counted{{Rank: 1, Value: 18, Index: 1, Sample: "acme-labs/S1", Site: "a", Liter: tapproof.FifthLiter,
		Other: &compliance.Other{Index: 0, Sample: "acme-labs/S0", Liter: tapproof.FirstLiter, Value: 4}}}
	if diff := cmp.Diff(want, got.Counted); diff != "" {
		t.Errorf("Counted (-want +got):\n%s", diff)
	}

	// Copper counts the first liter of a pair, even when the fifth is higher.
	c1, c5 := a1, a5
	c1.Analyte, c1.Value, c5.Analyte, c5.Value = tapproof.Copper, 0.4, tapproof.Copper, 1.9
	got, err = compliance.P90([]compliance.Sample{c1, c5}, compliance.HalfUp)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 1 || got.P90 != 0.4 {
		t.Errorf("copper P90 = %v (n %d), want the first liter's 0.4 (n 1)", got.P90, got.N)
	}

	// Samples of one site on different days are different collection
	// events: both count.
	later := a5
	later.CollectedAt = collected.AddDate(0, 1, 0)
	if got, err := compliance.P90([]compliance.Sample{a1, later}, compliance.HalfUp); err != nil || got.N != 2 {
		t.Errorf("P90 of two events at one site: n = %d, %v; want 2", got.N, err)
	}
	// ... unless the lab names the event.
	a1.Event, later.Event = "draw-1", "draw-1"
	if got, err := compliance.P90([]compliance.Sample{a1, later}, compliance.HalfUp); err != nil || got.N != 1 {
		t.Errorf("P90 of one named event on two days: n = %d, %v; want 1", got.N, err)
	}
}

func TestP90Errors(t *testing.T) {
	twoFirst := []compliance.Sample{sample(0, 3), sample(1, 30)}
	twoFirst[1].Site = twoFirst[0].Site
	disagree := []compliance.Sample{sample(0, 3), lsl(sample(1, 30), "site-0", tapproof.FifthLiter)}
	copper := sample(1, 1)
	copper.Analyte = tapproof.Copper
	nan := sample(0, 0)
	nan.Value = -1

	var ee *compliance.EventError
	for _, tc := range []struct {
		name     string
		samples  []compliance.Sample
		rounding compliance.Rounding
		check    func(error) bool
	}{
		{"none", nil, compliance.HalfUp, func(err error) bool { return errors.Is(err, compliance.ErrNoSamples) }},
		{"no rounding", samples(1, 2, 3), "", func(err error) bool { return err != nil }},
		{"two first-liter samples of one event", twoFirst, compliance.HalfUp, func(err error) bool { return errors.As(err, &ee) && len(ee.Samples) == 2 }},
		{"pair disagrees on the lead service line", disagree, compliance.HalfUp, func(err error) bool { return errors.As(err, &ee) }},
		{"lead and copper", []compliance.Sample{sample(0, 1), copper}, compliance.HalfUp, func(err error) bool { return err != nil }},
		{"negative value", []compliance.Sample{nan}, compliance.HalfUp, func(err error) bool { return err != nil }},
	} {
		if _, err := compliance.P90(tc.samples, tc.rounding); !tc.check(err) {
			t.Errorf("%s: P90 = %v", tc.name, err)
		}
	}
}
