package compliance

import (
	"time"

	"github.com/tapproof/tapproof"
)

// SystemAlert returns the system action level exceedance alert of r, raised
// at raisedAt, and false if r is not, and never was, an exceedance
// (Report.Exceeded). The alert is for the
// whole water system (no site): its value is the 90th percentile, its level
// the action level of the rule that decided, and its sampling time that of
// the latest counted sample. Its ID names the utility, analyte and period,
// so recomputing the report never raises a second alert.
func (r Report) SystemAlert(raisedAt time.Time) (tapproof.Alert, bool) {
	if !r.Exceeded() {
		return tapproof.Alert{}, false
	}
	var sampled time.Time
	for _, s := range r.Samples {
		if s.Status == StatusCounted && s.CollectedAt.After(sampled) {
			sampled = s.CollectedAt
		}
	}
	return r.systemAlert(tapproof.SystemExceedanceID(r.Utility, r.Analyte, r.Period), tapproof.SystemExceedance, sampled, raisedAt), true
}

// systemAlert is an alert of class about r's whole water system, with r's
// percentile, unit, level and rule.
func (r Report) systemAlert(id string, class tapproof.AlertClass, sampled, raisedAt time.Time) tapproof.Alert {
	return tapproof.Alert{
		ID:        id,
		Class:     class,
		Utility:   r.Utility,
		Analyte:   r.Analyte,
		Value:     r.P90,
		Unit:      r.Unit,
		Level:     r.ActionLevel,
		Rule:      r.Rule,
		SampledAt: sampled.UTC(),
		RaisedAt:  raisedAt.UTC(),
	}
}

// UndeterminedAlerts returns the system undetermined alert messages of r's
// UndeterminedSpans, raised at raisedAt: for each span the alert, whose ID
// names the leaf it began at (tapproof.SystemUndeterminedID), and for a
// span that ended its Cancel, which refers to it. While the period is
// undetermined the alert's value is the lowest and Upper the highest 90th
// percentile of the period's reductions (P90Range); a span of the past
// (when r is no longer undetermined) carries r's percentile in both. The
// messages are a function of the log, so recomputing the report never
// raises a second one.
func (r Report) UndeterminedAlerts(raisedAt time.Time) []tapproof.Alert {
	raisedAt = raisedAt.UTC()
	var sampled time.Time
	for _, s := range r.Samples {
		if s.Status != StatusExcluded && s.CollectedAt.After(sampled) {
			sampled = s.CollectedAt
		}
	}
	var out []tapproof.Alert
	for _, sp := range r.UndeterminedSpans() {
		a := r.systemAlert(tapproof.SystemUndeterminedID(r.Utility, r.Analyte, r.Period, sp.From), tapproof.SystemUndetermined, sampled, raisedAt)
		a.Upper = a.Value // a span of the past: r's percentile in both
		if r.Determination == Undetermined && sp.To == nil && r.Ambiguity != nil {
			a.Upper = r.Ambiguity.HighestP90
		}
		out = append(out, a)
		if sp.To != nil {
			c := a
			c.ID = "resolved-" + a.ID
			c.MsgType, c.Status, c.References, c.Upper = tapproof.CancelMsg, tapproof.AlertCleared, []tapproof.AlertRef{a.Ref()}, 0
			out = append(out, c)
		}
	}
	return out
}
