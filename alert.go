package tapproof

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// AlertClass is one of the three kinds of lead alert (docs/domain.md), or
// the public notice that a monitoring period cannot be decided.
type AlertClass string

// Alert classes. Screening alerts come from continuous sensors; individual
// compliance and system action-level exceedance alerts from lab samples.
// A system undetermined alert says that a monitoring period's samples do
// not decide whether the action level is exceeded until a state reviewer
// resolves them (compliance.Undetermined); its Cancel says they were.
const (
	Screening            AlertClass = "screening"
	IndividualCompliance AlertClass = "individual_compliance"
	SystemExceedance     AlertClass = "system_exceedance"
	SystemUndetermined   AlertClass = "system_undetermined"
)

// System reports whether alerts of class c are about a whole water system
// (a monitoring period) rather than a site.
func (c AlertClass) System() bool { return c == SystemExceedance || c == SystemUndetermined }

// Private reports whether alerts of class c are about one home's own tap
// sample: sent to that home only (the subscriptions bound to the sample),
// never shown on public pages, feeds or CAP documents (docs/domain.md).
func (c AlertClass) Private() bool { return c == IndividualCompliance }

// Suppressible reports whether alerts of class c may be held back, deduplicated
// or suppressed. Only screening alerts may; compliance alerts never are.
func (c AlertClass) Suppressible() bool { return c == Screening }

// MsgType is the kind of an alert message, with the values and meaning of
// OASIS CAP 1.2's msgType: a new alert, an update of earlier ones, or their
// cancellation (for a screening alert, the all-clear).
type MsgType string

// Message types. An Alert whose MsgType is empty is an AlertMsg.
const (
	AlertMsg  MsgType = "Alert"
	UpdateMsg MsgType = "Update"
	CancelMsg MsgType = "Cancel"
)

// AlertStatus says what an alert message does to the alert it belongs to.
type AlertStatus string

// Alert statuses. An Alert whose Status is empty is AlertOpen.
const (
	// AlertOpen raises an alert, or updates one that is still open.
	AlertOpen AlertStatus = "open"
	// AlertCleared is the all-clear: the alerts in References are over.
	AlertCleared AlertStatus = "cleared"
	// AlertSuppressed records a further exceedance that raised no new alert
	// because one was already open (References names it).
	AlertSuppressed AlertStatus = "suppressed"
)

// AlertRef names an earlier alert message: its id and when it was raised,
// the pair CAP's references element needs (with the sender).
type AlertRef struct {
	ID       string    `json:"id"`
	RaisedAt time.Time `json:"raised_at"`
}

// Alert is raised when a reading exceeds the rule in force. The same type
// carries its updates, its all-clear and the record of each suppressed
// exceedance, told apart by MsgType and Status; the zero values of both
// mean a new, open alert, which is all earlier versions of tapproof wrote.
type Alert struct {
	ID      string     `json:"id"`
	Class   AlertClass `json:"class"`
	Utility string     `json:"utility"`
	Site    string     `json:"site"`
	Device  string     `json:"device"`
	Seq     uint64     `json:"seq"`
	Analyte Analyte    `json:"analyte"`
	Value   float64    `json:"value"`
	Unit    Unit       `json:"unit"`
	Level   float64    `json:"level"`
	Rule    string     `json:"rule"` // Rule.Name() of the rule that decided
	// SampledAt is when the water was sampled; RaisedAt when tapproof decided.
	SampledAt time.Time `json:"sampled_at"`
	RaisedAt  time.Time `json:"raised_at"`

	// MsgType is Alert (or empty), Update or Cancel.
	MsgType MsgType `json:"msg_type,omitempty"`
	// Status is open (or empty), cleared or suppressed.
	Status AlertStatus `json:"status,omitempty"`
	// References are the earlier messages an Update, Cancel or suppression
	// refers to, oldest first.
	References []AlertRef `json:"references,omitempty"`
	// Recovery is the level a screening value must fall to (at or below)
	// before the alert clears; zero when not applicable.
	Recovery float64 `json:"recovery_level,omitempty"`
	// Since is when the exceedance began (the first exceeding sample of a
	// screening alert that waited out a pending duration).
	Since time.Time `json:"since,omitzero"`
	// Upper is, for a system undetermined alert, the highest 90th
	// percentile the period's samples allow (Value is the lowest); zero
	// otherwise.
	Upper float64 `json:"upper,omitempty"`
	// Sample is, for an individual compliance alert, the lab sample it is
	// about: "<lab>/<sample id>" (LabSample.Key); empty otherwise.
	Sample string `json:"sample,omitempty"`
}

// Validate checks that a is an alert message tapproof could have written:
// an id, a known class, message type and status, a valid utility (and site,
// unless the alert is about the whole water system), a known analyte, and
// finite, non-negative value and level, and, for an individual compliance
// alert only, the sample it is about. Nothing on the alert stream is
// shown to the public or sent to residents unless it validates.
func (a Alert) Validate() error {
	switch {
	case a.ID == "" || len(a.ID) > 256:
		return fmt.Errorf("alert: id must be 1 to 256 bytes")
	case a.Class != Screening && a.Class != IndividualCompliance && !a.Class.System():
		return fmt.Errorf("alert %s: unknown class %q", a.ID, a.Class)
	case a.Type() != AlertMsg && a.Type() != UpdateMsg && a.Type() != CancelMsg:
		return fmt.Errorf("alert %s: unknown message type %q", a.ID, a.MsgType)
	case a.State() != AlertOpen && a.State() != AlertCleared && a.State() != AlertSuppressed:
		return fmt.Errorf("alert %s: unknown status %q", a.ID, a.Status)
	case !ValidID(a.Utility):
		return fmt.Errorf("alert %s: invalid utility %q", a.ID, a.Utility)
	case a.Site != "" && !ValidID(a.Site):
		return fmt.Errorf("alert %s: invalid site %q", a.ID, a.Site)
	case a.Site == "" && !a.Class.System():
		return fmt.Errorf("alert %s: a %s alert needs a site", a.ID, a.Class)
	case math.IsNaN(a.Value) || math.IsInf(a.Value, 0) || a.Value < 0:
		return fmt.Errorf("alert %s: value %v", a.ID, a.Value)
	case math.IsNaN(a.Level) || math.IsInf(a.Level, 0) || a.Level <= 0:
		return fmt.Errorf("alert %s: level %v", a.ID, a.Level)
	case math.IsNaN(a.Upper) || math.IsInf(a.Upper, 0) || a.Upper < 0 || a.Upper > 0 && a.Class != SystemUndetermined:
		return fmt.Errorf("alert %s: upper %v", a.ID, a.Upper)
	case a.RaisedAt.IsZero():
		return fmt.Errorf("alert %s: no raised_at", a.ID)
	case a.Class == IndividualCompliance && a.Sample != "" && !ValidSampleKey(a.Sample):
		// An individual alert stored before alerts named their sample has
		// none: it validates, is private all the same, and, bound to no
		// sample, reaches no household.
		return fmt.Errorf("alert %s: an individual compliance alert names its sample as <lab>/<sample id>, not %q", a.ID, a.Sample)
	case a.Class != IndividualCompliance && a.Sample != "":
		return fmt.Errorf("alert %s: a %s alert names no sample", a.ID, a.Class)
	}
	if _, ok := a.Analyte.CanonicalUnit(); !ok {
		return fmt.Errorf("alert %s: unknown analyte %q", a.ID, a.Analyte)
	}
	return nil
}

// ValidSampleKey reports whether k is a LabSampleKey of a valid lab id and
// sample id.
func ValidSampleKey(k string) bool {
	lab, id, ok := strings.Cut(k, "/")
	return ok && ValidID(lab) && sampleIDPattern.MatchString(id)
}

// Type returns a's message type, AlertMsg when unset.
func (a Alert) Type() MsgType {
	if a.MsgType == "" {
		return AlertMsg
	}
	return a.MsgType
}

// State returns a's status, AlertOpen when unset.
func (a Alert) State() AlertStatus {
	if a.Status == "" {
		return AlertOpen
	}
	return a.Status
}

// Ref returns the reference to a that later messages carry.
func (a Alert) Ref() AlertRef { return AlertRef{ID: a.ID, RaisedAt: a.RaisedAt} }

// AlertID is the deterministic id of the alert raised by a reading, so that a
// redelivered reading cannot raise a second alert.
func AlertID(class AlertClass, device string, seq uint64) string {
	return string(class) + "-" + ReadingKey(device, seq)
}

// NoticeRecordType is the "type" of the record of a notice sent to the
// public, which tapproof appends to the utility's log.
const NoticeRecordType = "tapproof.notice.v1"

// NoticeRecord is what the verifiable log records of every notice sent to
// the public: when, about which alert, from which template version, a hash
// of the exact text and how many recipients, never who. The notifier
// appends it; a compliance report reads it to check the notice clock.
type NoticeRecord struct {
	Type            string         `json:"type"` // NoticeRecordType
	AlertID         string         `json:"alert_id"`
	Class           AlertClass     `json:"class"`
	MsgType         MsgType        `json:"msg_type"`
	Utility         string         `json:"utility"`
	Site            string         `json:"site,omitempty"`
	Template        string         `json:"template"`
	TemplateVersion int            `json:"template_version"`
	TextSHA256      string         `json:"text_sha256"`
	Recipients      int            `json:"recipients"`
	Channels        map[string]int `json:"channels,omitempty"` // recipients by channel: email, webhook
	AlertRaisedAt   time.Time      `json:"alert_raised_at"`
	SentAt          time.Time      `json:"sent_at"`
	References      []AlertRef     `json:"references,omitempty"`
	Public          []string       `json:"public,omitempty"` // public channels that carry it: cap, atom
	// Texts are the language versions of the notice, English first, each
	// with its template, its hash and how many recipients it went to.
	// Template, TemplateVersion and TextSHA256 above are the English
	// version's. Records written before notices had languages have none.
	Texts []NoticeText `json:"texts,omitempty"`
}

// NoticeText is one language version of a notice.
type NoticeText struct {
	Language        string `json:"language"` // a BCP 47 tag: en, es
	Template        string `json:"template"`
	TemplateVersion int    `json:"template_version"`
	TextSHA256      string `json:"text_sha256"`
	Recipients      int    `json:"recipients"`
}

// ParseNoticeRecord returns the notice record that leaf holds, and false if
// it holds none.
func ParseNoticeRecord(leaf []byte) (NoticeRecord, bool) {
	var r NoticeRecord
	if json.Unmarshal(leaf, &r) != nil || r.Type != NoticeRecordType || r.AlertID == "" {
		return NoticeRecord{}, false
	}
	return r, true
}

// SystemExceedanceID is the deterministic id of the system action level
// exceedance alert of utility's monitoring period for analyte: one alert per
// period, however often the period's 90th percentile is recomputed.
func SystemExceedanceID(utility string, analyte Analyte, period string) string {
	return string(SystemExceedance) + "-" + utility + "-" + string(analyte) + "-" + strings.ToLower(period)
}

// SystemUndeterminedID is the deterministic id of the system undetermined
// alert of utility's monitoring period for analyte that began with the log
// entry at leaf index from: one alert per stretch of the log during which
// the period cannot be decided.
func SystemUndeterminedID(utility string, analyte Analyte, period string, from uint64) string {
	return string(SystemUndetermined) + "-" + utility + "-" + string(analyte) + "-" + strings.ToLower(period) + "-" + strconv.FormatUint(from, 10)
}

// ExceedancePeriod returns the monitoring period of system exceedance or
// system undetermined alert a, the one its ID names (SystemExceedanceID,
// SystemUndeterminedID), and false if a is of another class or its ID
// names no period of its utility and analyte.
func (a Alert) ExceedancePeriod() (Period, bool) {
	if !a.Class.System() {
		return Period{}, false
	}
	id, ok := strings.CutPrefix(a.ID, string(a.Class)+"-"+a.Utility+"-"+string(a.Analyte)+"-")
	if !ok {
		return Period{}, false
	}
	var from uint64
	if a.Class == SystemUndetermined {
		i := strings.LastIndexByte(id, '-')
		if i < 0 {
			return Period{}, false
		}
		n, err := strconv.ParseUint(id[i+1:], 10, 64)
		if err != nil {
			return Period{}, false
		}
		id, from = id[:i], n
	}
	p, err := ParsePeriod(strings.ToUpper(id))
	if err != nil {
		return Period{}, false
	}
	want := SystemExceedanceID(a.Utility, a.Analyte, p.ID)
	if a.Class == SystemUndetermined {
		want = SystemUndeterminedID(a.Utility, a.Analyte, p.ID, from)
	}
	if want != a.ID {
		return Period{}, false
	}
	return p, true
}

// AlertEventID is the deterministic id of an alert message other than a new
// alert (kind "update", "clear" or "suppressed") decided by reading seq of
// device.
func AlertEventID(kind string, class AlertClass, device string, seq uint64) string {
	return kind + "-" + AlertID(class, device, seq)
}
