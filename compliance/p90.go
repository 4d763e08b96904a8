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
// *EventError if a collection event cannot be reduced to one value.
func P90(samples []Sample, rounding Rounding) (Result, error) {
	res := Result{Rounding: rounding}
	if _, _, err := rounding.Rank(1); err != nil {
		return res, err
	}
	if len(samples) == 0 {
		return res, ErrNoSamples
	}
	analyte := samples[0].Analyte
	type key struct{ site, event string }
	groups := map[key][]Sample{}
	var order []key
	for _, s := range samples {
		if s.Analyte != analyte {
			return res, fmt.Errorf("samples of %s and %s mixed", analyte, s.Analyte)
		}
		if v := s.Value; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return res, fmt.Errorf("sample %s at leaf %d: value %g is not a normalised value", s.Key(), s.Index, v)
		}
		k := key{s.Site, s.EventKey()}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	for _, k := range order {
		g := groups[k]
		c, err := reduce(g, analyte)
		if err != nil {
			return res, err
		}
		res.Counted = append(res.Counted, c)
	}
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
	return res, nil
}

// reduce returns the one value the samples of one site's collection event
// contribute.
func reduce(g []Sample, analyte tapproof.Analyte) (Counted, error) {
	counted := func(s Sample) Counted {
		return Counted{Value: s.Counted(), Index: s.Index, Sample: s.Key(), Site: s.Site, Liter: s.Liter, BelowDetection: s.BelowDetection}
	}
	if len(g) == 1 {
		return counted(g[0]), nil
	}
	slices.SortFunc(g, func(a, b Sample) int { return cmp.Compare(a.Liter, b.Liter) })
	first, fifth := g[0], g[len(g)-1]
	if len(g) != 2 || first.Liter != tapproof.FirstLiter || fifth.Liter != tapproof.FifthLiter ||
		!first.LeadServiceLine || !fifth.LeadServiceLine {
		return Counted{}, &EventError{Site: g[0].Site, Event: g[0].EventKey(), Samples: g}
	}
	// Lead: the higher counts; on a tie the first liter, the sample every
	// site has. Copper: the first liter.
	chosen, other := first, fifth
	if analyte == tapproof.Lead && fifth.Counted() > first.Counted() {
		chosen, other = fifth, first
	}
	c := counted(chosen)
	c.Other = &Other{Index: other.Index, Sample: other.Key(), Liter: other.Liter, Value: other.Counted()}
	return c, nil
}
