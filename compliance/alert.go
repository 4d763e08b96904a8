package compliance

import (
	"time"

	"github.com/tapproof/tapproof"
)

// SystemAlert returns the system action level exceedance alert of r, raised
// at raisedAt, and false if r is not an exceedance. The alert is for the
// whole water system (no site): its value is the 90th percentile, its level
// the action level of the rule that decided, and its sampling time that of
// the latest counted sample. Its ID names the utility, analyte and period,
// so recomputing the report never raises a second alert.
func (r Report) SystemAlert(raisedAt time.Time) (tapproof.Alert, bool) {
	if !r.Exceedance {
		return tapproof.Alert{}, false
	}
	var sampled time.Time
	for _, s := range r.Samples {
		if s.Status == StatusCounted && s.CollectedAt.After(sampled) {
			sampled = s.CollectedAt
		}
	}
	return tapproof.Alert{
		ID:        tapproof.SystemExceedanceID(r.Utility, r.Analyte, r.Period),
		Class:     tapproof.SystemExceedance,
		Utility:   r.Utility,
		Analyte:   r.Analyte,
		Value:     r.P90,
		Unit:      r.Unit,
		Level:     r.ActionLevel,
		Rule:      r.Rule,
		SampledAt: sampled.UTC(),
		RaisedAt:  raisedAt.UTC(),
	}, true
}
