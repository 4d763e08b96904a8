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
	Tier1      time.Duration // system action level exceedance
	Individual time.Duration // an individual sample above the action level
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

// checkNotices lists the notices r calls for, the Tier 1 notice of an
// exceedance first, then the consumer notice of each individual sample
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
	if r.Exceedance {
		check(tapproof.SystemExceedanceID(r.Utility, r.Analyte, r.Period), tapproof.SystemExceedance, d.Tier1)
	}
	for _, s := range r.IndividualExceedances {
		check(tapproof.IndividualAlertID(r.Utility, s.Lab, s.Index), tapproof.IndividualCompliance, d.Individual)
	}
	return out
}
