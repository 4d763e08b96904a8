package compliance

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/tapproof/tapproof"
)

// WriteText writes r for people: the figures and decision first, then the
// counted values, the exclusions, the invalidations that were not applied,
// the individual samples above the action level and the notices due.
func (r Report) WriteText(w io.Writer) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

	p("Compliance report: utility %s, %s, monitoring period %s (%s to %s)\n", r.Utility, r.Analyte, r.Period, r.PeriodStart, r.PeriodEnd)
	p("rule:\t%s in %s: action level %s %s (%s)\n", r.Rule, r.Jurisdiction, num(r.ActionLevel), r.Unit, r.RuleSource)
	switch r.Method {
	case ByRank:
		p("90th percentile:\t%s %s, the value at rank %d of n=%d (0.9 × %d = %s, rounding %s)\n",
			num(r.P90), r.Unit, r.Ranks[0], r.N, r.N, r.RankExact, r.Rounding)
	case MeanOfTwoHighest:
		p("90th percentile:\t%s %s, the mean of the two highest of n=5 (ranks 4 and 5; rounding %s not needed)\n", num(r.P90), r.Unit, r.Rounding)
	case Highest:
		p("90th percentile:\t%s %s, the highest of n=%d (fewer than 5 samples; rounding %s not needed)\n", num(r.P90), r.Unit, r.N, r.Rounding)
	default:
		p("90th percentile:\tnone: no valid sample in the period\n")
	}
	if a := r.Ambiguity; a != nil {
		p("over every reduction:\t%d collection events have more samples than the rule expects; the 90th percentile is %s to %s %s over their reductions (the figure above is the lowest)\n",
			len(a.Events), num(a.LowestP90), num(a.HighestP90), r.Unit)
	}
	switch {
	case r.Exceedance && r.Ambiguity != nil:
		p("result:\tACTION LEVEL EXCEEDANCE under every reduction: %s > %s %s\n", num(r.P90), num(r.ActionLevel), r.Unit)
	case r.Exceedance:
		p("result:\tACTION LEVEL EXCEEDANCE: %s > %s %s\n", num(r.P90), num(r.ActionLevel), r.Unit)
	case r.Determination == Undetermined:
		p("result:\tUNDETERMINED: some reductions exceed %s %s (up to %s), others do not (down to %s); a state reviewer must invalidate the extra samples\n",
			num(r.ActionLevel), r.Unit, num(r.Ambiguity.HighestP90), num(r.Ambiguity.LowestP90))
	case r.N > 0 && r.Ambiguity != nil:
		p("result:\tno action level exceedance under any reduction: %s is not above %s %s\n", num(r.Ambiguity.HighestP90), num(r.ActionLevel), r.Unit)
	case r.N > 0:
		p("result:\tno action level exceedance: %s is not above %s %s\n", num(r.P90), num(r.ActionLevel), r.Unit)
	default:
		p("result:\tno 90th percentile\n")
	}
	counts := map[Status]int{}
	for _, s := range r.Samples {
		counts[s.Status]++
	}
	p("samples:\t%d in the period: %d counted, %d superseded by the other liter, %d excluded by invalidation",
		len(r.Samples), counts[StatusCounted], counts[StatusSuperseded], counts[StatusExcluded])
	if counts[StatusAmbiguous] > 0 {
		p(", %d in ambiguous collection events", counts[StatusAmbiguous])
	}
	p("\n")
	if spans := r.UndeterminedSpans(); len(spans) > 0 {
		var said []string
		for _, sp := range spans {
			if sp.To == nil {
				said = append(said, fmt.Sprintf("from leaf %d on", sp.From))
			} else {
				said = append(said, fmt.Sprintf("from leaf %d to leaf %d", sp.From, *sp.To))
			}
		}
		p("undetermined:\t%s\n", strings.Join(said, ", "))
	}
	if r.Leaves > 0 {
		p("computed from:\t%d log entries\n", r.Leaves)
	}
	if r.Checkpoint != "" {
		if lines := strings.SplitN(r.Checkpoint, "\n", 3); len(lines) == 3 {
			p("read from:\tthe whole log %s at size %s, every leaf checked against its signed checkpoint\n", oneLine(lines[0]), oneLine(lines[1]))
		}
	}

	if len(r.Counted) > 0 {
		p("\nCounted values, ascending\n")
		p("RANK\tVALUE\tLEAF\tSAMPLE\tSITE\tLITER\tNOTE\n")
		for _, c := range r.Counted {
			var note []string
			if c.BelowDetection {
				note = append(note, "below detection, counts as 0")
			}
			if c.Ambiguous {
				note = append(note, "ambiguous event, its lowest reduction")
			}
			if o := c.Other; o != nil {
				note = append(note, fmt.Sprintf("%s liter %s at leaf %d does not count", o.Liter, num(o.Value), o.Index))
			}
			if slices.Contains(r.Ranks, c.Rank) {
				note = append(note, "90th percentile")
			}
			p("%d\t%s\t%d\t%s\t%s\t%s\t%s\n", c.Rank, num(c.Value), c.Index, c.Sample, c.Site, c.Liter, strings.Join(note, "; "))
		}
	}
	if a := r.Ambiguity; a != nil {
		p("\nCollection events with more samples than the rule expects (a state reviewer resolves them)\n")
		p("SITE\tEVENT\tLEAVES\tREDUCTIONS\tLOWEST\tHIGHEST\n")
		for _, e := range a.Events {
			leaves := make([]string, len(e.Samples))
			for i, l := range e.Samples {
				leaves[i] = strconv.FormatUint(l, 10)
			}
			p("%s\t%s\t%s\t%d\t%s (leaf %d)\t%s (leaf %d)\n", e.Site, oneLine(e.Event), strings.Join(leaves, " "), e.Reductions,
				num(e.Lowest), e.LowestIndex, num(e.Highest), e.HighestIndex)
		}
	}
	if len(r.Replays) > 0 {
		p("\nCopies of a sample already in the log, counted once (someone other than tapproof wrote the journal)\n")
		p("LEAF\tCOPY OF LEAF\tSAMPLE\n")
		for _, c := range r.Replays {
			p("%d\t%d\t%s\n", c.Index, c.Of, c.Sample)
		}
	}
	if len(r.Exclusions) > 0 {
		p("\nExcluded by a state reviewer's invalidation (still in the log)\n")
		p("LEAF\tSAMPLE\tSITE\tVALUE\tINVALIDATION\tREVIEWER\tDECIDED\tREASON\n")
		for _, e := range r.Exclusions {
			p("%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.SampleIndex, e.Sample, e.Site, num(e.Value), e.InvalidationIndex,
				e.Reviewer, e.DecidedAt.UTC().Format(time.DateOnly), oneLine(e.Reason))
		}
	}
	var refused []InvalidationOutcome
	for _, o := range r.Invalidations {
		if !o.Applied {
			refused = append(refused, o)
		}
	}
	if len(refused) > 0 {
		p("\nInvalidations NOT applied: the sample still counts\n")
		p("LEAF\tSAMPLE\tNAMES LEAF\tREVIEWER\tWHY NOT\n")
		for _, o := range refused {
			p("%d\t%s\t%d\t%s\t%s\n", o.Index, oneLine(o.SampleKey()), o.SampleIndex, oneLine(o.Reviewer), oneLine(o.Error))
		}
	}
	if len(r.IndividualExceedances) > 0 {
		status := map[uint64]Status{}
		for _, s := range r.Samples {
			status[s.Index] = s.Status
		}
		p("\nIndividual samples above the action level (consumer notice; never suppressed)\n")
		p("LEAF\tSAMPLE\tSITE\tLITER\tVALUE\tSTATUS\n")
		for _, s := range r.IndividualExceedances {
			p("%d\t%s\t%s\t%s\t%s\t%s\n", s.Index, s.Key(), s.Site, s.Liter, num(s.Value), status[s.Index])
		}
	}
	if len(r.Notices) > 0 {
		p("\nNotices due, as the log records them\n")
		p("ALERT\tNOTICE\tWITHIN\tRAISED\tSENT\tDELAY\tRECIPIENTS\tLEAF\tSTATUS\n")
		for _, c := range r.Notices {
			kind := "consumer notice"
			if c.Class == tapproof.SystemExceedance {
				kind = "Tier 1 public notice"
			}
			if c.Status == NoticeNotFound {
				p("%s\t%s\t%s\t-\t-\t-\t-\t-\tNO RECORD IN THE LOG\n", c.AlertID, kind, c.Within)
				continue
			}
			status := "on time"
			if c.Status == NoticeLate {
				status = "LATE"
			}
			p("%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", c.AlertID, kind, c.Within, c.RaisedAt.Format(time.RFC3339),
				c.SentAt.Format(time.RFC3339), c.Delay, c.Recipients, c.Index, status)
		}
	}
	if len(r.Obligations) > 0 {
		p("\nObligations of the action level exceedance\n")
		p("OBLIGATION\tDUE\tSOURCE\tWHAT\n")
		for _, o := range r.Obligations {
			due := o.Due
			switch {
			case o.Within != "":
				due = "within " + o.Within + " of the alert (notices due, above)"
			case due == "":
				due = "-"
			}
			p("%s\t%s\t%s\t%s\n", o.ID, due, o.Source, o.What)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads an empty last cell; drop the trailing blanks.
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.TrimSuffix(l, "\n"), " ") + l[len(strings.TrimSuffix(l, "\n")):]
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

// oneLine keeps text a signer chose (a reason; anything of an invalidation
// that did not verify) from breaking the table or the terminal: control
// characters become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
