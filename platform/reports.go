package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/journal"
)

// newComplianceParts returns what the server needs for lab samples and
// invalidations: the lab and reviewer keys for ingest, and the backend of
// /v1/compliance. keys are the certified labs' and state reviewers' public
// keys (from the state, never from a utility's enrollments); rounding is the
// state's rule for a fractional rank; rules are the ones the alert
// evaluator decides by.
func newComplianceParts(keys compliance.KeySet, rounding compliance.Rounding, rules tapproof.RuleBook, j *journal.Journal) (ingest.Labs, ingest.Reviewers, *complianceBackend, error) {
	if err := keys.Validate(); err != nil {
		return nil, nil, nil, err
	}
	ks := keys.Clone()
	return ks, ks, &complianceBackend{journal: j, keys: ks, rounding: rounding, rules: rules}, nil
}

// complianceBackend implements httpapi.Compliance: reports computed from
// the journal's lab sample and invalidation entries by compliance.FromLeaves,
// the computation anyone can repeat with `tapproof compliance --leaves` on
// the entries Leaves serves.
type complianceBackend struct {
	journal   *journal.Journal
	keys      compliance.KeySet
	rounding  compliance.Rounding
	rules     tapproof.RuleBook
	deadlines compliance.NoticeDeadlines // zero: the defaults
}

// Report computes the compliance report of utility's monitoring period for
// analyte (lead if empty). The lead action level override of serve, which
// is for screening alerts, does not apply (tapproof.RuleBook.ForPeriod): a
// report follows the rules, as a recomputation from the log does.
func (b *complianceBackend) Report(ctx context.Context, utility, period, analyte string) (any, error) {
	if _, err := tapproof.ParsePeriod(period); err != nil {
		return nil, err
	}
	a := tapproof.Analyte(analyte)
	switch a {
	case "":
		a = tapproof.Lead
	case tapproof.Lead, tapproof.Copper:
	default:
		return nil, tapproof.Reject(tapproof.ReasonInvalid, "analyte %q: compliance is computed for lead or copper", analyte)
	}
	leaves, err := b.leaves(ctx, utility)
	if err != nil {
		return nil, err
	}
	rep, err := compliance.FromLeaves(ctx, leaves, b.keys, b.params(utility, period, a))
	if err != nil {
		return nil, fmt.Errorf("compliance report of %s %s: %w", utility, period, err)
	}
	return rep, nil
}

// params are the parameters of utility's report for period and analyte:
// its jurisdiction's rules and the state's rounding.
func (b *complianceBackend) params(utility, period string, a tapproof.Analyte) compliance.Params {
	return compliance.Params{Utility: utility, Period: period, Analyte: a, Rounding: b.rounding, Rules: b.rules, Deadlines: b.deadlines}
}

// Leaves writes utility's lab sample, invalidation and compliance notice
// entries as JSON lines, {"index":N,"leaf":"<base64>"}, which
// compliance.ReadLeaves reads. Nothing is written if reading the journal
// fails.
func (b *complianceBackend) Leaves(ctx context.Context, utility string, w io.Writer) error {
	leaves, err := b.leaves(ctx, utility)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	for _, l := range leaves {
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("compliance leaves: %w", err)
		}
	}
	return nil
}

func (b *complianceBackend) leaves(ctx context.Context, utility string) ([]tapproof.Leaf, error) {
	es, err := b.journal.ComplianceEntries(ctx, utility)
	if err != nil {
		return nil, err
	}
	out := make([]tapproof.Leaf, len(es))
	for i, e := range es {
		out[i] = e.Leaf
	}
	return out, nil
}
