package compliance

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tapproof/tapproof"
)

// Rounding is how a fractional rank 0.9 × n is rounded to a whole rank. The
// CFR does not say; states differ, so it is configuration and is recorded
// with every result.
type Rounding string

// Roundings.
const (
	HalfUp   Rounding = "half-up"   // 18.5 → 19, 18.4 → 18
	HalfEven Rounding = "half-even" // 18.5 → 18, 19.5 → 20, 18.6 → 19
	Up       Rounding = "up"        // any fraction rounds up: 18.1 → 19
)

// Roundings lists the rounding rules, for flags and documentation.
var Roundings = []Rounding{HalfUp, HalfEven, Up}

// ParseRounding returns the Rounding named s.
func ParseRounding(s string) (Rounding, error) {
	r := Rounding(s)
	if !slices.Contains(Roundings, r) {
		return "", fmt.Errorf("rounding %q: want one of %v", s, Roundings)
	}
	return r, nil
}

// Rank returns the whole 1-based rank of the 90th percentile among n values
// under r, and the exact rank 0.9 × n as a decimal string ("18.9"). It works
// in tenths, with integers, so that 0.9 × 25 is exactly 22.5.
func (r Rounding) Rank(n int) (int, string, error) {
	tenths := 9 * n
	whole, frac := tenths/10, tenths%10
	exact := strconv.Itoa(whole)
	if frac != 0 {
		exact += "." + strconv.Itoa(frac)
	}
	switch r {
	case HalfUp:
		if frac >= 5 {
			whole++
		}
	case HalfEven:
		if frac > 5 || frac == 5 && whole%2 == 1 {
			whole++
		}
	case Up:
		if frac > 0 {
			whole++
		}
	default:
		return 0, exact, fmt.Errorf("rounding %q: want one of %v", r, Roundings)
	}
	return whole, exact, nil
}

// Sample is a verified, normalised lab sample and its leaf index in the
// utility's log.
type Sample struct {
	Index uint64 `json:"index"`
	tapproof.LabSample
}

// P90Method is how the 90th percentile was taken, by the number of values
// (not to be confused with tapproof.Method, how a sample was analysed).
type P90Method string

// The methods of 40 CFR 141.80(c)(3).
const (
	ByRank           P90Method = "rank"                // n > 5: the value at rank 0.9 × n, rounded
	MeanOfTwoHighest P90Method = "mean_of_two_highest" // n == 5
	Highest          P90Method = "highest"             // n < 5
)

// Counted is one value that counts towards the 90th percentile: a sample's
// value (zero below the detection limit), or at a lead-service-line site the
// chosen one of a collection event's first- and fifth-liter samples.
type Counted struct {
	Rank           int            `json:"rank"`  // 1-based, ascending
	Value          float64        `json:"value"` // the value that counts, in the canonical unit
	Index          uint64         `json:"index"` // leaf index of the sample whose value counts
	Sample         string         `json:"sample"`
	Site           string         `json:"site"`
	Liter          tapproof.Liter `json:"liter"`
	BelowDetection bool           `json:"below_detection,omitempty"`
	// Ambiguous says that the value's collection event has more samples
	// than the rule expects: the value is the one this reduction counts
	// (Range), not the only one it could be.
	Ambiguous bool `json:"ambiguous,omitempty"`
	// Other is the other liter of the same lead-service-line collection
	// event, which does not count; nil for a sample without a pair.
	Other *Other `json:"other,omitempty"`
}

// Other is the sample of a first-/fifth-liter pair that does not count.
type Other struct {
	Index  uint64         `json:"index"`
	Sample string         `json:"sample"`
	Liter  tapproof.Liter `json:"liter"`
	Value  float64        `json:"value"` // as counted: zero below the detection limit
}

// Result is a 90th percentile and how it was obtained.
type Result struct {
	N         int       `json:"n"`      // number of counted values
	Method    P90Method `json:"method"` // empty if N is 0
	Ranks     []int     `json:"ranks"`  // the ranks whose values make the percentile
	RankExact string    `json:"rank_exact"`
	Rounding  Rounding  `json:"rounding"`
	P90       float64   `json:"p90"`     // in the analyte's canonical unit
	Counted   []Counted `json:"counted"` // ascending by value, then leaf index
}

// ErrNoSamples is returned by P90 when no sample counts.
var ErrNoSamples = errors.New("no valid samples")

// EventError is returned when the samples of one collection event at a site
// cannot be reduced to one value: more than one sample of a liter, or a pair
// that disagrees on whether the site has a lead service line. Only a state
// reviewer's invalidation of the extra sample resolves it; tapproof never
// picks a sample to drop.
type EventError struct {
	Site, Event string
	Samples     []Sample
}

func (e *EventError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "site %s, collection event %s: cannot reduce", e.Site, e.Event)
	for i, s := range e.Samples {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s (%s liter, lead service line %t, leaf %d)", s.Key(), s.Liter, s.LeadServiceLine, s.Index)
	}
	b.WriteString(" to one value; one collection event has at most one first-liter and one fifth-liter sample at a lead-service-line site, so a state reviewer must invalidate the extra")
	return b.String()
}

// P90 computes the 90th percentile of samples following 40 CFR 141.80(c)(3):
// the counted values are sorted ascending and ranked 1..n; with n > 5 the
// percentile is the value at rank 0.9 × n, a fractional rank rounded by
// rounding; with n == 5 it is the mean of the two highest values (rounded to
// 1e-6 of the unit); with n < 5
// the highest. A result below the detection limit counts as zero. At a
// lead-service-line site the first- and fifth-liter samples of one
// collection event (LabSample.EventKey) count once: for lead the higher of
// the two (LCRI; Michigan's rule), for copper the first liter. A lone sample
// counts whatever its liter.
//
// All samples must be normalised and of one analyte. P90 excludes nothing:
// pass only valid samples. It returns ErrNoSamples if samples is empty and an
// *EventError if a collection event cannot be reduced to one value; P90Range
// decides such samples.
func P90(samples []Sample, rounding Rounding) (Result, error) {
	r, err := P90Range(samples, rounding)
	if err != nil {
		return r.Lowest, err
	}
	if len(r.Ambiguous) > 0 {
		a := r.Ambiguous[0]
		return Result{Rounding: rounding}, &EventError{Site: a.Site, Event: a.Event, Samples: a.samples}
	}
	return r.Lowest, nil
}

// Range is the 90th percentile of samples over every reduction of their
// ambiguous collection events: the lowest and the highest it can be.
type Range struct {
	// Lowest is the reduction that counts each ambiguous event at its
	// lowest possible value, Highest the one that counts it at its
	// highest; without an ambiguous event they are the same.
	Lowest, Highest Result
	// Ambiguous are the collection events that have more samples than the
	// rule expects, in the order of their first sample in the log.
	Ambiguous []AmbiguousEvent
}

// AmbiguousEvent is a site's collection event with more samples than the
// rule expects: more than one sample of a liter, a fifth-liter sample
// without the lead service line both liters agree on, or the like. Only a
// state reviewer's invalidation of the extra sample makes it one value
// again; until then every reduction of it counts (P90Range).
type AmbiguousEvent struct {
	Site  string `json:"site"`
	Event string `json:"event"`
	// Samples are the leaf indexes of the event's samples, ascending.
	Samples []uint64 `json:"samples"`
	// Reductions is the number of ways to keep one sample of each liter
	// present.
	Reductions int `json:"reductions"`
	// Lowest and Highest are the values the event counts at in its lowest
	// and its highest reduction, and LowestIndex and HighestIndex the leaf
	// index of the sample each value is.
	Lowest       float64 `json:"lowest"`
	LowestIndex  uint64  `json:"lowest_index"`
	Highest      float64 `json:"highest"`
	HighestIndex uint64  `json:"highest_index"`

	samples []Sample
}

// P90Range computes the 90th percentile of samples as P90 does, deciding
// the collection events that P90 cannot reduce to one value by every
// possible reduction instead. A reduction keeps one sample of each liter an
// event has (each first-liter sample in turn, each fifth-liter sample in
// turn); the two it keeps count as a pair by P90's rule when both say the
// site has a lead service line, and otherwise, the lead service line being
// in question, either of them may be the one that counts. So an event has
// finitely many possible values, and the period as many possible 90th
// percentiles as there are combinations of them: P90Range returns the
// lowest and the highest of those.
//
// The extremes suffice. Every reduction counts one value per collection
// event, so n, and with it the rank 0.9 × n and the method, is the same in
// all of them. The 90th percentile is then nondecreasing in each counted
// value: the value at rank k of a sorted list, x(k), is at most t exactly
// when at least k values are at most t, and raising one value can only
// lower that count, so x(k) never falls; the mean of the two highest
// values and the highest value are sums and maxima of such order
// statistics, and rounding to 1e-6 is nondecreasing. Hence the reduction
// that takes every ambiguous event at its lowest possible value has the
// lowest 90th percentile of all reductions, the one that takes every event
// at its highest the highest, and both are reductions themselves: every
// reduction exceeds an action level exactly when Lowest does, none does
// exactly when Highest does not, and otherwise Lowest and Highest are two
// reductions that disagree. TestP90RangeExtremes checks this against every
// reduction of random sample sets.
func P90Range(samples []Sample, rounding Rounding) (Range, error) {
	rg := Range{Lowest: Result{Rounding: rounding}, Highest: Result{Rounding: rounding}}
	if _, _, err := rounding.Rank(1); err != nil {
		return rg, err
	}
	if len(samples) == 0 {
		return rg, ErrNoSamples
	}
	analyte := samples[0].Analyte
	type key struct{ site, event string }
	groups := map[key][]Sample{}
	var order []key
	for _, s := range samples {
		if s.Analyte != analyte {
			return rg, fmt.Errorf("samples of %s and %s mixed", analyte, s.Analyte)
		}
		if v := s.Value; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return rg, fmt.Errorf("sample %s at leaf %d: value %g is not a normalised value", s.Key(), s.Index, v)
		}
		k := key{s.Site, s.EventKey()}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	var low, high []Counted
	for _, k := range order {
		g := groups[k]
		if c, ok := reduce(g, analyte); ok {
			low, high = append(low, c), append(high, c)
			continue
		}
		a := reductions(g, analyte)
		rg.Ambiguous = append(rg.Ambiguous, a)
		low = append(low, ambiguous(a.samples, a.LowestIndex))
		high = append(high, ambiguous(a.samples, a.HighestIndex))
	}
	slices.SortFunc(rg.Ambiguous, func(a, b AmbiguousEvent) int { return cmp.Compare(a.Samples[0], b.Samples[0]) })
	rg.Lowest, rg.Highest = rank(low, rounding), rank(high, rounding)
	return rg, nil
}

// rank ranks the counted values and takes their 90th percentile.
func rank(counted []Counted, rounding Rounding) Result {
	res := Result{Rounding: rounding, Counted: counted}
	slices.SortFunc(res.Counted, func(a, b Counted) int {
		return cmp.Or(cmp.Compare(a.Value, b.Value), cmp.Compare(a.Index, b.Index))
	})
	n := len(res.Counted)
	for i := range res.Counted {
		res.Counted[i].Rank = i + 1
	}
	res.N = n
	rank, exact, _ := rounding.Rank(n)
	res.RankExact = exact
	switch {
	case n > 5:
		res.Method, res.Ranks, res.P90 = ByRank, []int{rank}, res.Counted[rank-1].Value
	case n == 5:
		res.Method, res.Ranks = MeanOfTwoHighest, []int{4, 5}
		// Rounded to 1e-6 of the unit, as sample values are, so that the
		// mean of 1.3 and 1.35 mg/L is 1.325, not 1.3250000000000002.
		res.P90 = math.Round((res.Counted[3].Value+res.Counted[4].Value)/2*1e6) / 1e6
	default:
		res.Method, res.Ranks, res.P90 = Highest, []int{n}, res.Counted[n-1].Value
	}
	return res
}

func counted(s Sample) Counted {
	return Counted{Value: s.Counted(), Index: s.Index, Sample: s.Key(), Site: s.Site, Liter: s.Liter, BelowDetection: s.BelowDetection}
}

// ambiguous is the value of an ambiguous event's sample at leaf index.
func ambiguous(g []Sample, index uint64) Counted {
	for _, s := range g {
		if s.Index == index {
			c := counted(s)
			c.Ambiguous = true
			return c
		}
	}
	panic("compliance: ambiguous event without its sample")
}

// reduce returns the one value the samples of one site's collection event
// contribute, and false if the rule expects fewer or other samples than g.
func reduce(g []Sample, analyte tapproof.Analyte) (Counted, bool) {
	if len(g) == 1 {
		return counted(g[0]), true
	}
	slices.SortFunc(g, func(a, b Sample) int { return cmp.Or(cmp.Compare(a.Liter, b.Liter), cmp.Compare(a.Index, b.Index)) })
	first, fifth := g[0], g[len(g)-1]
	if len(g) != 2 || first.Liter != tapproof.FirstLiter || fifth.Liter != tapproof.FifthLiter ||
		!first.LeadServiceLine || !fifth.LeadServiceLine {
		return Counted{}, false
	}
	chosen, other := pair(first, fifth, analyte)
	c := counted(chosen)
	c.Other = &Other{Index: other.Index, Sample: other.Key(), Liter: other.Liter, Value: other.Counted()}
	return c, true
}

// pair returns the sample of a lead-service-line site's first- and
// fifth-liter pair that counts, and the other. Lead: the higher counts; on
// a tie the first liter, the sample every site has. Copper: the first
// liter.
func pair(first, fifth Sample, analyte tapproof.Analyte) (chosen, other Sample) {
	if analyte == tapproof.Lead && fifth.Counted() > first.Counted() {
		return fifth, first
	}
	return first, fifth
}

// reductions returns the ambiguous event g (which reduce refused) with the
// lowest and highest values its reductions count (P90Range). It looks at
// each pair of a first- and a fifth-liter sample once, so its work is the
// product of their numbers.
func reductions(g []Sample, analyte tapproof.Analyte) AmbiguousEvent {
	slices.SortFunc(g, func(a, b Sample) int { return cmp.Compare(a.Index, b.Index) })
	a := AmbiguousEvent{Site: g[0].Site, Event: g[0].EventKey(), samples: g}
	var firsts, fifths []Sample
	for _, s := range g {
		a.Samples = append(a.Samples, s.Index)
		if s.Liter == tapproof.FifthLiter {
			fifths = append(fifths, s)
		} else {
			firsts = append(firsts, s)
		}
	}
	seen := false
	// consider notes s as a value a reduction counts; on equal values the
	// earlier sample in the log stands for it.
	consider := func(s Sample) {
		v := s.Counted()
		if !seen || v < a.Lowest || v == a.Lowest && s.Index < a.LowestIndex {
			a.Lowest, a.LowestIndex = v, s.Index
		}
		if !seen || v > a.Highest || v == a.Highest && s.Index < a.HighestIndex {
			a.Highest, a.HighestIndex = v, s.Index
		}
		seen = true
	}
	switch {
	case len(fifths) == 0 || len(firsts) == 0:
		// One liter only: each of its samples alone is a reduction.
		a.Reductions = len(g)
		for _, s := range g {
			consider(s)
		}
	default:
		a.Reductions = len(firsts) * len(fifths)
		for _, f := range firsts {
			for _, v := range fifths {
				if f.LeadServiceLine && v.LeadServiceLine {
					chosen, _ := pair(f, v, analyte)
					consider(chosen)
					continue
				}
				consider(f)
				consider(v)
			}
		}
	}
	return a
}
