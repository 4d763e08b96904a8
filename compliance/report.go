package compliance

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tapproof/tapproof"
)

// Params says which report to compute and under which rules.
type Params struct {
	Utility string // water system id; required
	Period  string // monitoring period id, e.g. "2026H2"; required
	// Analyte is tapproof.Lead if empty; tapproof.Copper is the other choice.
	Analyte  tapproof.Analyte
	Rounding Rounding // required: the state's rule for a fractional rank
	// Rules decide the action level (RuleBook.ForPeriod) and name the
	// utility's jurisdiction; the zero RuleBook is federal DefaultRules.
	// Give the same RuleBook as the alert evaluator's, so that the
	// report and the individual alerts agree.
	Rules tapproof.RuleBook
	// Deadlines are the notice clocks FromLeaves checks the log's notice
	// records against; DefaultNoticeDeadlines where zero.
	Deadlines NoticeDeadlines
}

// withDefaults validates p and fills in its defaults.
func (p Params) withDefaults() (Params, tapproof.Period, error) {
	if !tapproof.ValidID(p.Utility) {
		return p, tapproof.Period{}, fmt.Errorf("utility %q is not a valid id", p.Utility)
	}
	period, err := tapproof.ParsePeriod(p.Period)
	if err != nil {
		return p, period, err
	}
	if _, _, err := p.Rounding.Rank(1); err != nil {
		return p, period, err
	}
	if p.Analyte == "" {
		p.Analyte = tapproof.Lead
	}
	if p.Analyte != tapproof.Lead && p.Analyte != tapproof.Copper {
		return p, period, fmt.Errorf("analyte %q: compliance is computed for lead or copper", p.Analyte)
	}
	if p.Deadlines.Tier1 <= 0 {
		p.Deadlines.Tier1 = DefaultNoticeDeadlines.Tier1
	}
	if p.Deadlines.Individual <= 0 {
		p.Deadlines.Individual = DefaultNoticeDeadlines.Individual
	}
	return p, period, nil
}

// Status is what became of a sample in a report.
type Status string

// Sample statuses.
const (
	StatusCounted    Status = "counted"    // its value counts towards the 90th percentile
	StatusExcluded   Status = "excluded"   // invalidated by a state reviewer
	StatusSuperseded Status = "superseded" // the other liter of its collection event counts instead
	// StatusAmbiguous: its collection event has more samples than the
	// rule expects, and which of them counts is for a state reviewer to
	// resolve; every reduction counts (Report.Ambiguity).
	StatusAmbiguous Status = "ambiguous"
)

// Determination is what a report decides of its period.
type Determination string

// Determinations. A period whose samples reduce to one value per
// collection event is exceeded or not. A period with ambiguous collection
// events is decided over every reduction of them (P90Range): exceeded if
// every reduction exceeds the action level, not exceeded if none does, and
// undetermined otherwise, until a state reviewer's invalidation of the
// extra samples decides it. A period without a counted sample is not
// exceeded.
const (
	Exceeded     Determination = "exceeded"
	NotExceeded  Determination = "not_exceeded"
	Undetermined Determination = "undetermined"
)

// Ambiguity is how a period with ambiguous collection events was decided:
// the events, and the range of the 90th percentile over their reductions.
type Ambiguity struct {
	Events []AmbiguousEvent `json:"events"`
	// LowestP90 and HighestP90 are the lowest and highest 90th percentile
	// any reduction gives; Report.Result is the lowest reduction, Highest
	// the highest.
	LowestP90  float64 `json:"lowest_p90"`
	HighestP90 float64 `json:"highest_p90"`
	Highest    Result  `json:"highest"`
}

// Change is a point of the log at which a period's determination changed:
// the leaf index of the entry (a lab sample of the period, or an
// invalidation naming one) after which the period was decided as
// Determination.
type Change struct {
	Index         uint64        `json:"index"`
	Determination Determination `json:"determination"`
}

// UndeterminedSpan is a stretch of the log during which a period was
// undetermined: from the entry at From to the one at To, which decided it
// again (nil while it still is undetermined).
type UndeterminedSpan struct {
	From uint64  `json:"from"`
	To   *uint64 `json:"to,omitempty"`
}

// ReportSample is a sample of the report's period and what became of it.
type ReportSample struct {
	Sample
	Status Status `json:"status"`
}

// Exclusion is a sample that an invalidation removed from the computation.
type Exclusion struct {
	SampleIndex       uint64    `json:"sample_index"`
	Sample            string    `json:"sample"` // lab/sample id
	Site              string    `json:"site"`
	Value             float64   `json:"value"` // in the canonical unit
	InvalidationIndex uint64    `json:"invalidation_index"`
	Reviewer          string    `json:"reviewer"`
	Reason            string    `json:"reason"`
	DecidedAt         time.Time `json:"decided_at"`
}

// Invalidation is an invalidation entry of the log, as input to Compute.
type Invalidation struct {
	Index uint64 // leaf index of the invalidation entry
	tapproof.Invalidation
	// Err is why the entry cannot apply, whatever it names: a signature by
	// an unknown or wrong key, say. Nil if its signature was verified.
	Err error
}

// InvalidationOutcome is an invalidation that names a sample of the report's
// period, and whether it excluded it.
type InvalidationOutcome struct {
	Index uint64 `json:"index"`
	tapproof.Invalidation
	Applied bool `json:"applied"`
	// Error is why an invalidation was not applied.
	Error string `json:"error,omitempty"`
}

// Exceeded reports whether the period is, or at any point of the log was,
// an action level exceedance (Exceedance, History). An exceedance once
// decided stands: a later sample that makes the period undetermined, or a
// reviewer's invalidation, does not withdraw its alert nor its
// obligations, which were due from the moment it was learnt of.
func (r Report) Exceeded() bool {
	if r.Exceedance {
		return true
	}
	for _, c := range r.History {
		if c.Determination == Exceeded {
			return true
		}
	}
	return false
}

// Replay is a leaf that repeats a sample already at an earlier leaf.
type Replay struct {
	Index  uint64 `json:"index"`  // the copy's leaf
	Of     uint64 `json:"of"`     // the leaf of the sample it repeats
	Sample string `json:"sample"` // <lab>/<sample id>
}

// sameSample reports whether a and b are the same result.
func sameSample(a, b tapproof.LabSample) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// Report is a monitoring period's compliance, recomputable from the log.
type Report struct {
	Utility      string                `json:"utility"`
	Period       string                `json:"period"`
	PeriodStart  string                `json:"period_start"`    // first day
	PeriodEnd    string                `json:"period_last_day"` // last day
	Jurisdiction tapproof.Jurisdiction `json:"jurisdiction"`
	Analyte      tapproof.Analyte      `json:"analyte"`
	Unit         tapproof.Unit         `json:"unit"`
	Rule         string                `json:"rule"` // Rule.Name() of the rule that decided
	RuleSource   string                `json:"rule_source"`
	ActionLevel  float64               `json:"action_level"`
	// Result is the 90th percentile; with ambiguous collection events,
	// that of their lowest reduction (Ambiguity).
	Result
	// Determination is what the report decides of the period.
	Determination Determination `json:"determination"`
	// Exceedance is an action level exceedance: the 90th percentile strictly
	// above the action level, under every reduction of ambiguous
	// collection events. Never true when no sample counts.
	Exceedance bool `json:"exceedance"`
	// Ambiguity is set when a collection event has more samples than the
	// rule expects: the events and the range they leave.
	Ambiguity *Ambiguity `json:"ambiguity,omitempty"`
	// History is every change of the period's determination, in log
	// order, as the entries given decided it after each of them. The
	// first change is the determination after the period's first entry.
	History []Change `json:"history"`
	// Obligations are what an action level exceedance of the period's
	// analyte obliges the water system to do (Obligations); nil unless
	// Exceedance.
	Obligations []Obligation `json:"obligations,omitempty"`
	// Replays are later copies of a sample already in the log, counted
	// once: the sign of a journal written by someone other than tapproof.
	Replays []Replay `json:"replays,omitempty"`
	// Samples are all the period's samples in log order, with their status.
	Samples    []ReportSample `json:"samples"`
	Exclusions []Exclusion    `json:"exclusions"`
	// Invalidations are the invalidations naming a sample of the period,
	// applied or not, in log order.
	Invalidations []InvalidationOutcome `json:"invalidations"`
	// IndividualExceedances are the period's samples whose own value is
	// above the action level, whatever their status: each needs a consumer
	// notice, which is never suppressed.
	IndividualExceedances []Sample `json:"individual_exceedances"`
	// Notices are the notices the exceedance and the individual results
	// call for, and what the log's notice records say of each, when the
	// report was computed by FromLeaves.
	Notices []NoticeCheck `json:"notices,omitempty"`
	// Leaves is the number of log entries the report was computed from,
	// when it was computed by FromLeaves.
	Leaves int `json:"leaves,omitempty"`
	// Checkpoint is the signed checkpoint whose whole log the entries were
	// read from and checked against, when they were (tapproof compliance
	// --log): then no entry of the log at that size can be missing.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Compute builds the report of p from the samples and invalidations of one
// utility's log. samples must be verified and normalised; samples of other
// utilities, periods or analytes are ignored. An invalidation applies if its
// Err is nil, it is valid, it names (by leaf index, lab and sample id) a
// sample of the period earlier in the log, and no earlier invalidation
// already excluded that sample; every invalidation naming a sample of the
// period is listed with its outcome. A collection event with more samples
// than the rule expects is decided by every reduction (P90Range,
// Determination). A later copy of a sample already given, the same
// result, counts once and is listed in Replays. Compute returns an error
// only for bad parameters or a sample given twice with different results;
// a period without a counted sample gives a report with
// N 0 and no exceedance.
func Compute(p Params, samples []Sample, invalidations []Invalidation) (Report, error) {
	p, period, err := p.withDefaults()
	if err != nil {
		return Report{}, err
	}
	rule, err := p.Rules.ForPeriod(p.Utility, p.Analyte, period)
	if err != nil {
		return Report{}, err
	}
	var (
		inScope []Sample
		replays []Replay
	)
	samples = slices.Clone(samples)
	slices.SortStableFunc(samples, func(a, b Sample) int { return cmp.Compare(a.Index, b.Index) })
	byIndex := map[uint64]Sample{}
	byKey := map[string]Sample{}
	for _, s := range samples {
		if s.Utility != p.Utility || s.Period != period.ID || s.Analyte != p.Analyte {
			continue
		}
		if prev, ok := byKey[s.Key()]; ok {
			if prev.Index < s.Index && sameSample(prev.LabSample, s.LabSample) {
				// tapproof appends a sample once (journal.AppendLabSample),
				// so a later copy of the same signed result is a replay by
				// someone who could write the journal: it counts once.
				replays = append(replays, Replay{Index: s.Index, Of: prev.Index, Sample: s.Key()})
				continue
			}
			return Report{}, fmt.Errorf("sample %s is in the log twice, at leaves %d and %d", s.Key(), prev.Index, s.Index)
		}
		if prev, ok := byIndex[s.Index]; ok {
			return Report{}, fmt.Errorf("leaf %d given twice, as samples %s and %s", s.Index, prev.Key(), s.Key())
		}
		byIndex[s.Index], byKey[s.Key()] = s, s
		inScope = append(inScope, s)
	}
	slices.SortFunc(inScope, func(a, b Sample) int { return cmp.Compare(a.Index, b.Index) })

	invs := slices.Clone(invalidations)
	slices.SortStableFunc(invs, func(a, b Invalidation) int { return cmp.Compare(a.Index, b.Index) })
	var mine []Invalidation // those naming a sample of the period
	for _, inv := range invs {
		_, named := byKey[inv.SampleKey()]
		_, pointed := byIndex[inv.SampleIndex]
		if named || pointed {
			mine = append(mine, inv)
		}
	}

	rep, err := compute(p, period, rule, inScope, mine)
	if err != nil {
		return Report{}, err
	}
	rep.Replays = replays
	rep.History = history(p, period, rule, inScope, mine)
	if rep.Exceeded() {
		rep.Obligations = Obligations(rep.Analyte, period, rep.Rule)
		for i, o := range rep.Obligations {
			if o.ID == ObligationTier1 {
				rep.Obligations[i].Within = p.Deadlines.Tier1.String()
			}
		}
	}
	return rep, nil
}

// compute is Compute of the period's samples, in log order, and the
// invalidations naming them, without the history.
func compute(p Params, period tapproof.Period, rule tapproof.Rule, inScope []Sample, invs []Invalidation) (Report, error) {
	unit, _ := p.Analyte.CanonicalUnit()
	rep := Report{
		Utility: p.Utility, Period: period.ID, Jurisdiction: p.Rules.Jurisdiction(p.Utility), Analyte: p.Analyte, Unit: unit,
		PeriodStart: period.Start.Format(time.DateOnly), PeriodEnd: period.LastDay().Format(time.DateOnly),
		Rule: rule.Name(), RuleSource: rule.Source, ActionLevel: rule.Level,
		Samples: []ReportSample{}, Exclusions: []Exclusion{}, Invalidations: []InvalidationOutcome{},
		IndividualExceedances: []Sample{}, History: []Change{},
	}
	byIndex := map[uint64]Sample{}
	for _, s := range inScope {
		byIndex[s.Index] = s
	}
	excluded := map[uint64]uint64{} // sample leaf -> invalidation leaf
	for _, inv := range invs {
		out := InvalidationOutcome{Index: inv.Index, Invalidation: inv.Invalidation}
		if err := applicable(inv, byIndex, excluded); err != nil {
			out.Error = err.Error()
		} else {
			s := byIndex[inv.SampleIndex]
			out.Applied = true
			excluded[s.Index] = inv.Index
			rep.Exclusions = append(rep.Exclusions, Exclusion{
				SampleIndex: s.Index, Sample: s.Key(), Site: s.Site, Value: s.Value,
				InvalidationIndex: inv.Index, Reviewer: inv.Reviewer, Reason: inv.Reason, DecidedAt: inv.DecidedAt,
			})
		}
		rep.Invalidations = append(rep.Invalidations, out)
	}

	var valid []Sample
	for _, s := range inScope {
		if _, ok := excluded[s.Index]; !ok {
			valid = append(valid, s)
		}
	}
	rg, err := P90Range(valid, p.Rounding)
	if err != nil && !errors.Is(err, ErrNoSamples) {
		return Report{}, err
	}
	rep.Result = rg.Lowest
	rep.Determination = NotExceeded
	switch {
	case rep.N > 0 && rule.Exceeds(rg.Lowest.P90):
		rep.Determination = Exceeded
	case rep.N > 0 && rule.Exceeds(rg.Highest.P90):
		rep.Determination = Undetermined
	}
	rep.Exceedance = rep.Determination == Exceeded
	ambiguous := map[uint64]bool{}
	if len(rg.Ambiguous) > 0 {
		rep.Ambiguity = &Ambiguity{Events: rg.Ambiguous, LowestP90: rg.Lowest.P90, HighestP90: rg.Highest.P90, Highest: rg.Highest}
		for _, a := range rg.Ambiguous {
			for _, i := range a.Samples {
				ambiguous[i] = true
			}
		}
	}

	superseded := map[uint64]bool{}
	for _, c := range rep.Counted {
		if c.Other != nil {
			superseded[c.Other.Index] = true
		}
	}
	for _, s := range inScope {
		st := StatusCounted
		if _, ok := excluded[s.Index]; ok {
			st = StatusExcluded
		} else if ambiguous[s.Index] {
			st = StatusAmbiguous
		} else if superseded[s.Index] {
			st = StatusSuperseded
		}
		rep.Samples = append(rep.Samples, ReportSample{Sample: s, Status: st})
	}
	rep.IndividualExceedances = append(rep.IndividualExceedances, IndividualExceedances(inScope, rule)...)
	return rep, nil
}

// history returns the changes of the period's determination after each of
// its entries in log order: what the report of the log up to and including
// that entry decides. It computes a report per entry, from the samples and
// invalidations already verified.
func history(p Params, period tapproof.Period, rule tapproof.Rule, inScope []Sample, invs []Invalidation) []Change {
	var points []uint64
	for _, s := range inScope {
		points = append(points, s.Index)
	}
	for _, inv := range invs {
		points = append(points, inv.Index)
	}
	slices.Sort(points)
	points = slices.Compact(points)
	out := []Change{}
	for _, at := range points {
		ss := slices.DeleteFunc(slices.Clone(inScope), func(s Sample) bool { return s.Index > at })
		is := slices.DeleteFunc(slices.Clone(invs), func(inv Invalidation) bool { return inv.Index > at })
		r, err := compute(p, period, rule, ss, is)
		if err != nil {
			continue // as the whole report would have failed
		}
		if len(out) == 0 || out[len(out)-1].Determination != r.Determination {
			out = append(out, Change{Index: at, Determination: r.Determination})
		}
	}
	return out
}

// UndeterminedSpans returns the stretches of the log during which the
// period was undetermined, from History, oldest first.
func (r Report) UndeterminedSpans() []UndeterminedSpan {
	var out []UndeterminedSpan
	for _, c := range r.History {
		switch {
		case c.Determination == Undetermined:
			out = append(out, UndeterminedSpan{From: c.Index})
		case len(out) > 0 && out[len(out)-1].To == nil:
			to := c.Index
			out[len(out)-1].To = &to
		}
	}
	return out
}

// applicable says why inv cannot exclude the sample it names, or nil.
func applicable(inv Invalidation, byIndex map[uint64]Sample, excluded map[uint64]uint64) error {
	if inv.Err != nil {
		return inv.Err
	}
	if err := inv.Validate(); err != nil {
		return err
	}
	s, ok := byIndex[inv.SampleIndex]
	if !ok {
		return fmt.Errorf("leaf %d, which it names, is not a %s sample of this period", inv.SampleIndex, inv.SampleKey())
	}
	if err := inv.Targets(inv.Index, s.LabSample, s.Index); err != nil {
		return err
	}
	if at, ok := excluded[s.Index]; ok {
		return fmt.Errorf("sample %s was already invalidated at leaf %d", s.Key(), at)
	}
	return nil
}

// IndividualExceedances returns the samples whose own value is strictly
// above rule's action level, in the order given. It ignores invalidations
// and first-/fifth-liter pairing: every such result needs a consumer notice
// (docs/domain.md), which is never suppressed. A result below the detection limit
// never exceeds.
func IndividualExceedances(samples []Sample, rule tapproof.Rule) []Sample {
	var out []Sample
	for _, s := range samples {
		if s.Analyte == rule.Analyte && rule.Exceeds(s.Counted()) {
			out = append(out, s)
		}
	}
	return out
}
