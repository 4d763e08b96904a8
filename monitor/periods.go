package monitor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/signed"
)

// period is a monitoring period of one analyte.
type period struct {
	id      string
	analyte tapproof.Analyte
}

// reportCompliance recomputes, with compliance.FromLeaves (what the server's
// report and tapproof compliance compute), every monitoring period the
// batch's lab samples and invalidations touch, from the log's lab sample
// and invalidation leaves up to the batch's end, and reports each stretch
// of the log beginning in the batch during which a period was undetermined
// (KindUndetermined). Without lab keys nothing is recomputed: no sample
// would verify. A period that cannot be computed (a lab sample of it that
// does not verify, already a bad_signature finding) is logged.
func (f *follower) reportCompliance(ctx context.Context, res *LogResult, base Finding, st *State, b *batch) {
	cfg := f.m.cfg
	if len(b.compliance) == 0 || len(cfg.Keys.Labs) == 0 {
		return
	}
	all := slices.Concat(st.Compliance, b.compliance)
	samples := map[uint64]period{}
	leafAt := map[uint64][]byte{}
	var touched []period
	touch := func(p period) {
		if !slices.Contains(touched, p) {
			touched = append(touched, p)
		}
	}
	for _, l := range all {
		leafAt[l.Index] = l.Bytes
		env, err := signed.Parse(l.Bytes, maxLeaf)
		if err != nil {
			continue
		}
		switch env.PayloadType() {
		case tapproof.LabSamplePayloadType:
			s, err := env.LabSample()
			if err != nil {
				continue
			}
			p := period{s.Period, s.Analyte}
			samples[l.Index] = p
			if l.Index >= st.Size {
				touch(p)
			}
		case tapproof.InvalidationPayloadType:
			inv, err := env.Invalidation()
			if err != nil || l.Index < st.Size {
				continue
			}
			if p, ok := samples[inv.SampleIndex]; ok {
				touch(p)
			}
		}
	}
	slices.SortFunc(touched, func(a, b period) int { return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.analyte, b.analyte)) })
	for _, p := range touched {
		if p.analyte != tapproof.Lead && p.analyte != tapproof.Copper {
			continue
		}
		rep, err := compliance.FromLeaves(ctx, all, cfg.Keys, compliance.Params{
			Utility: f.utility, Period: p.id, Analyte: p.analyte, Rounding: cfg.Rounding, Rules: cfg.Rules,
		})
		if err != nil {
			f.log.Warn("monitor: monitoring period not recomputed", slog.String("period", p.id),
				slog.String("analyte", string(p.analyte)), slog.Any("error", err))
			continue
		}
		for _, sp := range rep.UndeterminedSpans() {
			if sp.From < st.Size {
				// Reported with the batch it began in.
				if sp.To != nil && *sp.To >= st.Size {
					f.log.Info("monitor: undetermined monitoring period decided again", slog.String("message", undeterminedMessage(rep, sp)))
				}
				continue
			}
			fd := base
			from := sp.From
			fd.Kind, fd.Leaf, fd.leaf = KindUndetermined, &from, leafAt[from]
			fd.LeafType = typeLabSample.String()
			if _, ok := samples[from]; !ok {
				fd.LeafType = typeInvalidation.String()
			}
			fd.Message = undeterminedMessage(rep, sp)
			f.report(res, &fd, 1, true)
		}
	}
}

// undeterminedMessage says what an undetermined stretch of rep's period
// is, and, while it lasts, what a reviewer must resolve.
func undeterminedMessage(rep compliance.Report, sp compliance.UndeterminedSpan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "monitoring period %s, %s: undetermined from leaf %d", rep.Period, rep.Analyte, sp.From)
	if sp.To != nil {
		then := ""
		for _, c := range rep.History {
			if c.Index == *sp.To {
				then = string(c.Determination)
			}
		}
		fmt.Fprintf(&b, " to leaf %d, which decided it as %s", *sp.To, then)
		return b.String()
	}
	fmt.Fprintf(&b, " on: over every reduction of its ambiguous collection events the 90th percentile is %s to %s %s, against the action level %s %s (%s); a state reviewer must invalidate the extra samples of",
		num(rep.P90), num(rep.Ambiguity.HighestP90), rep.Unit, num(rep.ActionLevel), rep.Unit, rep.Rule)
	for i, e := range rep.Ambiguity.Events {
		if i > 0 {
			b.WriteString(";")
		}
		leaves := make([]string, len(e.Samples))
		for k, l := range e.Samples {
			leaves[k] = strconv.FormatUint(l, 10)
		}
		fmt.Fprintf(&b, " site %s, event %s (leaves %s)", e.Site, e.Event, strings.Join(leaves, ", "))
	}
	return b.String()
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
