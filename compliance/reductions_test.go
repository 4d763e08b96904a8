package compliance_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
)

// redraw is issue 20's period: 20 samples at 30 ppb, and a second
// first-liter sample of value v at site-3, collected with its first (one
// collection event), at leaf 20.
func redraw(v float64) []compliance.Sample {
	ss := samples(30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30)
	extra := sample(20, v)
	extra.Site = ss[3].Site
	return append(ss, extra)
}

var leadParams = compliance.Params{Utility: "flint", Period: "2026H2", Rounding: compliance.HalfUp}

// One re-draw at one site used to make the period "not computable", with
// no alert: the exceedance failed open. Every reduction of the re-drawn
// event exceeds, so the period is exceeded and its Tier 1 alert raised.
func TestRedrawEveryReductionExceeds(t *testing.T) {
	rep, err := compliance.Compute(leadParams, redraw(1), nil)
	if err != nil {
		t.Fatalf("Compute of a period with a re-draw = %v, want a report", err)
	}
	if rep.Determination != compliance.Exceeded || !rep.Exceedance || rep.N != 20 || rep.P90 != 30 {
		t.Errorf("Compute = %s (exceedance %t), n %d, p90 %v; want exceeded, n 20, p90 30", rep.Determination, rep.Exceedance, rep.N, rep.P90)
	}
	if rep.Ambiguity == nil || len(rep.Ambiguity.Events) != 1 || rep.Ambiguity.LowestP90 != 30 || rep.Ambiguity.HighestP90 != 30 {
		t.Fatalf("Ambiguity = %+v, want site-3's event, 30 to 30", rep.Ambiguity)
	}
	want := compliance.AmbiguousEvent{Site: "site-3", Event: "2026-08-03", Samples: []uint64{3, 20}, Reductions: 2,
		Lowest: 1, LowestIndex: 20, Highest: 30, HighestIndex: 3}
	if diff := cmp.Diff(want, rep.Ambiguity.Events[0], cmpopts.IgnoreUnexported(compliance.AmbiguousEvent{})); diff != "" {
		t.Errorf("ambiguous event (-want +got):\n%s", diff)
	}
	if a, ok := rep.SystemAlert(collected); !ok || a.Value != 30 || a.Class != tapproof.SystemExceedance {
		t.Errorf("SystemAlert = %+v, %t; want the Tier 1 alert at 30 ppb", a, ok)
	}
	for _, s := range rep.Samples {
		if want := map[bool]compliance.Status{true: compliance.StatusAmbiguous, false: compliance.StatusCounted}[s.Index == 3 || s.Index == 20]; s.Status != want {
			t.Errorf("sample at leaf %d: status %s, want %s", s.Index, s.Status, want)
		}
	}
	if as := rep.UndeterminedAlerts(collected); len(as) != 0 {
		t.Errorf("UndeterminedAlerts of a period never undetermined = %+v", as)
	}
}

// A period never exceeded whose reductions come to disagree raises no
// exceedance alert: it is undetermined.
func TestRedrawUndeterminedNeverExceeded(t *testing.T) {
	// Leaves 0-7: eight sites at 5 ppb; leaf 8: site-9 at 20; leaf 9:
	// site-8 at 5; leaf 10: site-8 again, at 20, in the same event.
	ss := samples(5, 5, 5, 5, 5, 5, 5, 5)
	s8, s9, s10 := sample(8, 20), sample(9, 5), sample(10, 20)
	s8.Site, s9.Site, s10.Site = "site-9", "site-8", "site-8"
	rep, err := compliance.Compute(leadParams, append(ss, s8, s9, s10), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Determination != compliance.Undetermined || rep.Exceeded() {
		t.Fatalf("Compute = %s, exceeded %t, history %+v; want undetermined, never exceeded", rep.Determination, rep.Exceeded(), rep.History)
	}
	if a, ok := rep.SystemAlert(collected); ok {
		t.Errorf("SystemAlert of a period never exceeded = %+v", a)
	}
}

// A period whose reductions disagree is undetermined: a state of the
// report, not an error; an invalidation of the extra sample decides it,
// either way.
func TestRedrawUndetermined(t *testing.T) {
	// Ten sites: eight at 5 ppb, two at 20. n = 10, rank 9: 20 ppb,
	// exceeded. A re-draw of 5 ppb at site-8 (leaf 10) makes the lowest
	// reduction 5 ppb and the highest 20.
	ss := samples(5, 5, 5, 5, 5, 5, 5, 5, 20, 20)
	extra := sample(10, 5)
	extra.Site = ss[8].Site
	ss = append(ss, extra)

	rep, err := compliance.Compute(leadParams, ss, nil)
	if err != nil {
		t.Fatalf("Compute = %v, want an undetermined report", err)
	}
	if rep.Determination != compliance.Undetermined || rep.Exceedance || rep.P90 != 5 || rep.Ambiguity.HighestP90 != 20 {
		t.Fatalf("Compute = %s (exceedance %t), p90 %v; want undetermined between 5 and 20", rep.Determination, rep.Exceedance, rep.P90)
	}
	// It was exceeded at leaf 9: that exceedance stands (Report.Exceeded).
	if a, ok := rep.SystemAlert(collected); !ok || a.Class != tapproof.SystemExceedance {
		t.Errorf("SystemAlert of a period exceeded at leaf 9, then undetermined = %+v, %t; want the exceedance", a, ok)
	}
	if !slices.ContainsFunc(rep.Obligations, func(o compliance.Obligation) bool { return o.ID == compliance.ObligationTier1 }) {
		t.Errorf("obligations of a period exceeded at leaf 9, then undetermined = %+v; want the Tier 1 notice", rep.Obligations)
	}
	wantHistory := []compliance.Change{{Index: 0, Determination: compliance.NotExceeded}, {Index: 9, Determination: compliance.Exceeded}, {Index: 10, Determination: compliance.Undetermined}}
	if diff := cmp.Diff(wantHistory, rep.History); diff != "" {
		t.Errorf("History (-want +got):\n%s", diff)
	}
	as := rep.UndeterminedAlerts(collected)
	if len(as) != 1 {
		t.Fatalf("UndeterminedAlerts = %+v, want one open alert", as)
	}
	a := as[0]
	if a.ID != "system_undetermined-flint-lead-2026h2-10" || a.Class != tapproof.SystemUndetermined || a.Type() != tapproof.AlertMsg ||
		a.Value != 5 || a.Upper != 20 || a.Level != 15 || a.Site != "" {
		t.Errorf("undetermined alert = %+v; want system_undetermined-flint-lead-2026h2-10, 5 to 20 against 15 ppb", a)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("undetermined alert does not validate: %v", err)
	}
	if p, ok := a.ExceedancePeriod(); !ok || p.ID != "2026H2" {
		t.Errorf("ExceedancePeriod of %s = %v, %t; want 2026H2", a.ID, p, ok)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "UNDETERMINED") || !strings.Contains(text.String(), "from leaf 10 on") {
		t.Errorf("WriteText does not say the period is undetermined since leaf 10:\n%s", text.String())
	}

	for _, tc := range []struct {
		name      string
		drop      compliance.Sample
		want      compliance.Determination
		exceedsAt float64
	}{
		{"the re-draw invalidated", extra, compliance.Exceeded, 20},
		{"the first draw invalidated", ss[8], compliance.NotExceeded, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := compliance.Compute(leadParams, ss, []compliance.Invalidation{invalidating(11, tc.drop, "re-drawn")})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Determination != tc.want || rep.Ambiguity != nil || rep.P90 != tc.exceedsAt {
				t.Errorf("after the invalidation: %s, p90 %v, ambiguity %+v; want %s at %v", rep.Determination, rep.P90, rep.Ambiguity, tc.want, tc.exceedsAt)
			}
			as := rep.UndeterminedAlerts(collected)
			if len(as) != 2 {
				t.Fatalf("UndeterminedAlerts = %+v, want the alert and its cancellation", as)
			}
			if !rep.Exceeded() {
				t.Errorf("after the invalidation the period was never exceeded; it was, at leaf 9")
			}
			if a := as[0]; a.Upper != a.Value || a.Value != tc.exceedsAt {
				t.Errorf("the alert of a past stretch says %v to %v, want the period's percentile %v in both", a.Value, a.Upper, tc.exceedsAt)
			}
			c := as[1]
			if c.Type() != tapproof.CancelMsg || c.ID != "resolved-system_undetermined-flint-lead-2026h2-10" ||
				len(c.References) != 1 || c.References[0].ID != as[0].ID || c.Upper != 0 {
				t.Errorf("cancellation = %+v; want a Cancel of %s", c, as[0].ID)
			}
			for _, a := range as {
				if err := a.Validate(); err != nil {
					t.Errorf("%s does not validate: %v", a.ID, err)
				}
			}
		})
	}
}

// TestAmbiguousEvents: every shape of collection event the rule does not
// expect is decided over its reductions, and the values it can count at
// are its reductions'.
func TestAmbiguousEvents(t *testing.T) {
	first := func(i uint64, v float64, lslSite bool) compliance.Sample {
		s := sample(i, v)
		s.Site, s.LeadServiceLine = "a", lslSite
		return s
	}
	fifth := func(i uint64, v float64, lslSite bool) compliance.Sample {
		s := first(i, v, lslSite)
		s.Liter = tapproof.FifthLiter
		return s
	}
	for _, tc := range []struct {
		name          string
		event         []compliance.Sample
		copper        bool
		reductions    int
		lowest, high  float64
		lowAt, highAt uint64
	}{
		{"two first liters", []compliance.Sample{first(0, 3, false), first(1, 30, false)}, false, 2, 3, 30, 0, 1},
		{"pair disagrees on the lead service line", []compliance.Sample{first(0, 3, false), fifth(1, 30, true)}, false, 1, 3, 30, 0, 1},
		// Both say lead service line: each pair counts its higher.
		{"two fifth liters of a pair", []compliance.Sample{first(0, 8, true), fifth(1, 4, true), fifth(2, 12, true)}, false, 2, 8, 12, 0, 2},
		// Copper counts a pair's first liter, whichever fifth.
		{"copper: two fifth liters", []compliance.Sample{first(0, 0.8, true), fifth(1, 0.4, true), fifth(2, 1.9, true)}, true, 2, 0.8, 0.8, 0, 0},
		{"copper: two first liters", []compliance.Sample{first(0, 0.8, true), first(1, 1.4, true), fifth(2, 1.9, true)}, true, 2, 0.8, 1.4, 0, 1},
		{"two fifth liters alone", []compliance.Sample{fifth(0, 2, true), fifth(1, 9, true)}, false, 2, 2, 9, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.copper {
				for i := range tc.event {
					tc.event[i].Analyte, tc.event[i].Unit = tapproof.Copper, tapproof.MilligramsPerLiter
				}
			}
			rg, err := compliance.P90Range(tc.event, compliance.HalfUp)
			if err != nil {
				t.Fatal(err)
			}
			if len(rg.Ambiguous) != 1 {
				t.Fatalf("P90Range: %d ambiguous events, want 1", len(rg.Ambiguous))
			}
			e := rg.Ambiguous[0]
			if e.Reductions != tc.reductions || e.Lowest != tc.lowest || e.Highest != tc.high || e.LowestIndex != tc.lowAt || e.HighestIndex != tc.highAt {
				t.Errorf("event = %d reductions, %v (leaf %d) to %v (leaf %d); want %d, %v (leaf %d) to %v (leaf %d)",
					e.Reductions, e.Lowest, e.LowestIndex, e.Highest, e.HighestIndex, tc.reductions, tc.lowest, tc.lowAt, tc.high, tc.highAt)
			}
			if rg.Lowest.N != 1 || rg.Lowest.P90 != tc.lowest || rg.Highest.P90 != tc.high || !rg.Lowest.Counted[0].Ambiguous {
				t.Errorf("P90Range = %v to %v (n %d), want %v to %v (n 1), counted as ambiguous", rg.Lowest.P90, rg.Highest.P90, rg.Lowest.N, tc.lowest, tc.high)
			}
			if _, err := compliance.P90(tc.event, compliance.HalfUp); err == nil {
				t.Error("P90 of an ambiguous event succeeded; it picks no reduction")
			}
		})
	}
}

// bruteP90 is the 90th percentile of values by 40 CFR 141.80(c)(3),
// written apart from the package's.
func bruteP90(values []float64, r compliance.Rounding) float64 {
	v := slices.Sorted(slices.Values(values))
	n := len(v)
	switch {
	case n > 5:
		k, _, _ := r.Rank(n)
		return v[k-1]
	case n == 5:
		return math.Round((v[3]+v[4])/2*1e6) / 1e6
	}
	return v[n-1]
}

// choices returns every value an event can count at, one per reduction
// and reading of the lead service line, by enumerating them.
func choices(g []compliance.Sample) []float64 {
	var firsts, fifths []compliance.Sample
	for _, s := range g {
		if s.Liter == tapproof.FifthLiter {
			fifths = append(fifths, s)
		} else {
			firsts = append(firsts, s)
		}
	}
	var out []float64
	if len(firsts) == 0 || len(fifths) == 0 {
		for _, s := range g {
			out = append(out, s.Counted())
		}
		return out
	}
	for _, f := range firsts {
		for _, v := range fifths {
			switch {
			case f.LeadServiceLine && v.LeadServiceLine && f.Analyte == tapproof.Lead:
				out = append(out, max(f.Counted(), v.Counted()))
			case f.LeadServiceLine && v.LeadServiceLine:
				out = append(out, f.Counted())
			default:
				out = append(out, f.Counted(), v.Counted())
			}
		}
	}
	return out
}

// TestP90RangeExtremes checks P90Range's proof: over random periods with
// ambiguous events, the lowest and highest 90th percentiles of every
// reduction, enumerated, are Lowest's and Highest's, so an action level is
// exceeded by every reduction exactly when by Lowest and by none exactly
// when not by Highest.
func TestP90RangeExtremes(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 26))
	for round := range 300 {
		sites := 1 + rng.IntN(12)
		var ss []compliance.Sample
		var events [][]compliance.Sample
		idx := uint64(0)
		for site := range sites {
			lslSite := rng.IntN(2) == 0
			var g []compliance.Sample
			for range 1 + rng.IntN(3) {
				s := sample(idx, float64(rng.IntN(40)))
				idx++
				s.Site, s.LeadServiceLine = fmt.Sprintf("s%d", site), lslSite
				if rng.IntN(5) == 0 {
					s.LeadServiceLine = !lslSite
				}
				if rng.IntN(3) == 0 {
					s.Liter = tapproof.FifthLiter
				}
				g = append(g, s)
			}
			ss = append(ss, g...)
			events = append(events, g)
		}
		rounding := compliance.Roundings[round%len(compliance.Roundings)]
		rg, err := compliance.P90Range(ss, rounding)
		if err != nil {
			t.Fatal(err)
		}
		// Every combination of one value per event.
		lo, hi := math.Inf(1), math.Inf(-1)
		var walk func(i int, picked []float64)
		walk = func(i int, picked []float64) {
			if i == len(events) {
				p := bruteP90(picked, rounding)
				lo, hi = min(lo, p), max(hi, p)
				return
			}
			for _, v := range choices(events[i]) {
				walk(i+1, append(picked, v))
			}
		}
		walk(0, nil)
		if rg.Lowest.P90 != lo || rg.Highest.P90 != hi {
			t.Fatalf("round %d: P90Range = %v to %v, every reduction gives %v to %v", round, rg.Lowest.P90, rg.Highest.P90, lo, hi)
		}
	}
}
