package compliance

import (
	"strconv"
	"time"

	"github.com/tapproof/tapproof"
)

// NoticeDeadlines are how long after an alert is raised its notice must
// have gone out, by kind of notice. docs/domain.md: a Tier 1 public notice
// within 24 hours of learning of a lead action level exceedance (since
// 16 October 2024); a consumer notice of an individual result, 30 days
// under the 2007 rule, shortened by LCRR and LCRI to 3 calendar days.
type NoticeDeadlines struct {
	Tier1      time.Duration // a lead system action level exceedance
	Individual time.Duration // an individual sample above the action level
}

// Obligation is something an action level exceedance obliges the water
// system to do, with its clock and the rule text it comes from.
type Obligation struct {
	ID     string `json:"id"`
	What   string `json:"what"`
	Source string `json:"source"`
	// Within is the clock of a notice tapproof sends and the log records
	// (a Go duration from the alert being raised; Report.Notices checks
	// it); empty otherwise.
	Within string `json:"within,omitempty"`
	// Due is the last day, for an obligation counted from the end of the
	// monitoring period; empty otherwise.
	Due string `json:"due,omitempty"`
	// Tracked says that tapproof sends it and the log records it; the
	// others are the utility's to do and to show the State.
	Tracked bool `json:"tracked"`
}

// Obligation ids.
const (
	ObligationTier1           = "tier1-public-notice"
	ObligationPublicEducation = "public-education"
	ObligationCorrosion       = "corrosion-control-treatment"
	ObligationWQP             = "water-quality-parameter-monitoring"
	ObligationSourceWater     = "source-water-monitoring"
	ObligationStateReport     = "report-to-state"
)

// Obligations returns what an action level exceedance of analyte in period,
// decided by rule (a Rule.Name), obliges the water system to do. Only a lead
// exceedance calls for the Tier 1 public notice (within
// DefaultNoticeDeadlines.Tier1, which tapproof sends and the log records)
// and lead public education; a copper exceedance (90th percentile above
// 1.3 mg/L) calls for neither, but, like lead's, for corrosion control
// treatment steps, water quality parameter and source water monitoring and
// reporting to the State (40 CFR 141.81, 141.87, 141.88, 141.90). Days are
// counted from the day after the period's last day. The clocks are those of
// the federal rule text as tapproof reads it (docs/compliance.md lists what
// to confirm).
func Obligations(analyte tapproof.Analyte, period tapproof.Period, rule string) []Obligation {
	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	end := period.End
	var out []Obligation
	if analyte == tapproof.Lead {
		out = append(out,
			Obligation{ID: ObligationTier1, Tracked: true, Within: DefaultNoticeDeadlines.Tier1.String(),
				What:   "Tier 1 public notice of the lead action level exceedance to every person served (" + rule + ")",
				Source: "40 CFR 141.202(a)(10), 141.85"},
			Obligation{ID: ObligationPublicEducation, Due: day(end.AddDate(0, 0, 60-1)),
				What:   "lead public education to every customer, within 60 days after the end of the monitoring period",
				Source: "40 CFR 141.85"},
		)
	}
	name := string(analyte)
	out = append(out,
		Obligation{ID: ObligationCorrosion, Due: day(end.AddDate(0, 6, -1)),
			What:   "corrosion control treatment steps; a small or medium-size system recommends optimal corrosion control treatment to the State within 6 months after the end of the monitoring period",
			Source: "40 CFR 141.81(e), 141.82(a)"},
		Obligation{ID: ObligationWQP,
			What:   "water quality parameter monitoring, in each monitoring period in which the " + name + " action level is exceeded",
			Source: "40 CFR 141.87"},
		Obligation{ID: ObligationSourceWater, Due: day(end.AddDate(0, 6, -1)),
			What:   "source water samples for lead and copper, within 6 months after the end of the monitoring period",
			Source: "40 CFR 141.88"},
		Obligation{ID: ObligationStateReport, Due: day(end.AddDate(0, 0, 10-1)),
			What:   "report the period's tap sample results and 90th percentile to the State, within 10 days after the end of the monitoring period",
			Source: "40 CFR 141.90"},
	)
	return out
}

// DefaultNoticeDeadlines are the clocks of the rule in force today.
var DefaultNoticeDeadlines = NoticeDeadlines{Tier1: 24 * time.Hour, Individual: 72 * time.Hour}

// NoticeStatus is what the log shows of a notice that was due.
type NoticeStatus string

// Notice statuses.
const (
	NoticeOnTime   NoticeStatus = "on_time"   // recorded as sent within the deadline
	NoticeLate     NoticeStatus = "late"      // recorded as sent after the deadline
	NoticeNotFound NoticeStatus = "not_found" // no record of it in the entries given
)

// NoticeCheck is a notice the period's results call for, and what the log
// records of it: when the alert was raised and the notice sent, to how
// many recipients, and whether it met its deadline.
type NoticeCheck struct {
	AlertID string              `json:"alert_id"`
	Class   tapproof.AlertClass `json:"class"`
	// Within is the deadline, counted from RaisedAt, as a Go duration.
	Within string       `json:"within"`
	Status NoticeStatus `json:"status"`
	// The rest comes from the notice's record; empty when NotFound.
	Index      uint64    `json:"index,omitempty"` // leaf of the record
	Template   string    `json:"template,omitempty"`
	TextSHA256 string    `json:"text_sha256,omitempty"`
	Recipients int       `json:"recipients"`
	RaisedAt   time.Time `json:"raised_at,omitzero"`
	SentAt     time.Time `json:"sent_at,omitzero"`
	Delay      string    `json:"delay,omitempty"` // SentAt − RaisedAt
}

// recordAt is a notice record and its leaf index.
type recordAt struct {
	index uint64
	tapproof.NoticeRecord
}

// checkNotices lists the notices r calls for, the Tier 1 notice of a lead
// exceedance first (a copper exceedance calls for none: Obligations), then the consumer notice of each individual sample
// above the action level, with what records (first record of each alert)
// say of them.
func checkNotices(r Report, records map[string]recordAt, d NoticeDeadlines) []NoticeCheck {
	var out []NoticeCheck
	check := func(id string, class tapproof.AlertClass, within time.Duration) {
		c := NoticeCheck{AlertID: id, Class: class, Within: within.String(), Status: NoticeNotFound}
		if rec, ok := records[id]; ok {
			delay := rec.SentAt.Sub(rec.AlertRaisedAt)
			c.Index, c.TextSHA256, c.Recipients = rec.index, rec.TextSHA256, rec.Recipients
			c.Template = rec.Template
			if rec.TemplateVersion > 0 {
				c.Template = rec.Template + "@v" + strconv.Itoa(rec.TemplateVersion)
			}
			c.RaisedAt, c.SentAt, c.Delay = rec.AlertRaisedAt.UTC(), rec.SentAt.UTC(), delay.String()
			c.Status = NoticeOnTime
			if delay > within {
				c.Status = NoticeLate
			}
		}
		out = append(out, c)
	}
	if r.Exceeded() && r.Analyte == tapproof.Lead {
		check(tapproof.SystemExceedanceID(r.Utility, r.Analyte, r.Period), tapproof.SystemExceedance, d.Tier1)
	}
	for _, s := range r.IndividualExceedances {
		check(tapproof.IndividualAlertID(r.Utility, s.Lab, s.Index), tapproof.IndividualCompliance, d.Individual)
	}
	return out
}
