package tapproof

import (
	"fmt"
	"time"
)

// Jurisdiction names whose rules apply: "US" for federal rules, "US-MI" for a
// state (ISO 3166-2).
type Jurisdiction string

// Federal is the United States federal jurisdiction.
const Federal Jurisdiction = "US"

// Rule is a threshold with an analyte, a jurisdiction and an effective date
// range. Every alert records the rule id and version that produced it.
type Rule struct {
	ID           string       `json:"id"`
	Version      int          `json:"version"`
	Analyte      Analyte      `json:"analyte"`
	Jurisdiction Jurisdiction `json:"jurisdiction"`
	// Level is the action level in the analyte's canonical unit. A value
	// strictly greater than Level exceeds it.
	Level float64 `json:"level"`
	Unit  Unit    `json:"unit"`
	// From is the first instant the rule applies; To the first it no longer
	// does (zero for open-ended).
	From   time.Time `json:"effective_from"`
	To     time.Time `json:"effective_to,omitzero"`
	Source string    `json:"source"`
}

// In reports whether r is in force at t.
func (r Rule) In(t time.Time) bool {
	return !t.Before(r.From) && (r.To.IsZero() || t.Before(r.To))
}

// Exceeds reports whether value, in the analyte's canonical unit, is strictly
// above the rule's level. Exactly the level is not an exceedance.
func (r Rule) Exceeds(value float64) bool { return value > r.Level }

// Name is "<id>@v<version>", the form recorded with each decision.
func (r Rule) Name() string { return fmt.Sprintf("%s@v%d", r.ID, r.Version) }

// lcriStart is when the Lead and Copper Rule Improvements lower the federal
// lead action level to 10 ppb.
var lcriStart = time.Date(2027, time.November, 1, 0, 0, 0, 0, time.UTC)

// DefaultRules are the federal and state action levels tapproof ships with
// (see docs/domain.md). A deployment may add stricter rules.
var DefaultRules = []Rule{
	{ID: "us-lead-lcr", Version: 1, Analyte: Lead, Jurisdiction: Federal, Level: 15, Unit: MicrogramsPerLiter,
		To: lcriStart, Source: "40 CFR 141.80(c), LCR/LCRR action level 0.015 mg/L"},
	{ID: "us-lead-lcri", Version: 1, Analyte: Lead, Jurisdiction: Federal, Level: 10, Unit: MicrogramsPerLiter,
		From: lcriStart, Source: "LCRI action level 0.010 mg/L from 1 Nov 2027"},
	{ID: "us-copper-lcr", Version: 1, Analyte: Copper, Jurisdiction: Federal, Level: 1.3, Unit: MilligramsPerLiter,
		Source: "40 CFR 141.80(c), copper action level 1.3 mg/L"},
	{ID: "us-mi-lead", Version: 1, Analyte: Lead, Jurisdiction: "US-MI", Level: 12, Unit: MicrogramsPerLiter,
		From: time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC), Source: "Michigan lead action level 12 ppb from 2025"},
}

// RuleFor returns the strictest rule among rules for analyte a that applies
// at t in jurisdiction j, where federal rules apply everywhere in the US.
func RuleFor(rules []Rule, a Analyte, j Jurisdiction, t time.Time) (Rule, bool) {
	var best Rule
	found := false
	for _, r := range rules {
		if r.Analyte != a || !r.In(t) {
			continue
		}
		if r.Jurisdiction != j && r.Jurisdiction != Federal {
			continue
		}
		if !found || r.Level < best.Level {
			best, found = r, true
		}
	}
	return best, found
}

// LeadOverrideRuleID is the id of the rule that replaces the lead action
// level when a RuleBook has a LeadOverride. Decisions under it record
// "lead-override@v1" as their rule and the override as their level.
const LeadOverrideRuleID = "lead-override"

// RuleBook is what a deployment decides by: the rules, the jurisdiction of
// each utility, and an optional override of the lead action level for
// screening. Every decision against an action level goes through one
// RuleBook, so that an alert, a notice and a report never judge the same
// value by different levels. The zero RuleBook follows DefaultRules under
// federal jurisdiction.
type RuleBook struct {
	// Rules to choose from; DefaultRules if nil.
	Rules []Rule
	// Jurisdictions maps a utility id to the jurisdiction whose rules
	// apply to it; a utility not listed is under Federal.
	Jurisdictions map[string]Jurisdiction
	// LeadOverride, if positive, replaces the lead action level that
	// screening readings are judged by (At), in every jurisdiction and at
	// every date, with a rule named LeadOverrideRuleID. Compliance
	// decisions (ForPeriod) never take it: they follow the rules alone,
	// so that anyone recomputing them from the log, without this
	// deployment's configuration, reaches the same ones.
	LeadOverride float64
}

// Jurisdiction returns the jurisdiction of utility.
func (b RuleBook) Jurisdiction(utility string) Jurisdiction {
	if j, ok := b.Jurisdictions[utility]; ok && j != "" {
		return j
	}
	return Federal
}

// At returns the rule that judges a screening reading of analyte a taken at
// t for utility, and whether there is one: the strictest rule in force at t
// (RuleFor).
func (b RuleBook) At(utility string, a Analyte, t time.Time) (Rule, bool) {
	j := b.Jurisdiction(utility)
	if r, ok := b.override(a, j); ok {
		return r, true
	}
	return b.inForce(a, j, t)
}

func (b RuleBook) inForce(a Analyte, j Jurisdiction, t time.Time) (Rule, bool) {
	rules := b.Rules
	if rules == nil {
		rules = DefaultRules
	}
	return RuleFor(rules, a, j, t)
}

// ForPeriod returns the rule that judges the compliance samples of
// utility's monitoring period p: the strictest rule in force on the
// period's first day, whatever LeadOverride says. A period is judged by one
// rule, the one its samples were collected under from its start, both for
// its 90th percentile and for each of its samples: 2027H2 is judged at
// 15 ppb federally, 2028H1 at 10 ppb.
func (b RuleBook) ForPeriod(utility string, a Analyte, p Period) (Rule, error) {
	r, ok := b.inForce(a, b.Jurisdiction(utility), p.Start)
	if !ok {
		return r, fmt.Errorf("no %s rule in force in %s on %s", a, b.Jurisdiction(utility), p.Start.Format(time.DateOnly))
	}
	return r, nil
}

func (b RuleBook) override(a Analyte, j Jurisdiction) (Rule, bool) {
	if a != Lead || b.LeadOverride <= 0 {
		return Rule{}, false
	}
	return Rule{
		ID: LeadOverrideRuleID, Version: 1, Analyte: Lead, Jurisdiction: j,
		Level: b.LeadOverride, Unit: MicrogramsPerLiter,
		Source: fmt.Sprintf("configured lead action level %g ug/L", b.LeadOverride),
	}, true
}
