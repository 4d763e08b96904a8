package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// noticeSubject carries the records of notices of alerts of class sent to
// the public: a kind of its own ("n") next to readings and enrollments, one
// subject per alert class, so that the compliance notices can be read
// without the far more numerous screening ones. Records appended before
// notices had classes in their subject are on "n.notice".
func noticeSubject(utility, class string) string {
	return fmt.Sprintf("%s.%s.%s.%s", logSubject, utility, KindNotice, class)
}

// classPattern is what an alert class in a notice subject must match.
var classPattern = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// noticeClasses are the alert classes whose notices the compliance entries
// include: those the law sets a clock for.
var noticeClasses = []string{string(tapproof.IndividualCompliance), string(tapproof.SystemExceedance)}

// AppendNotice appends the record of a notice sent to the public to
// utility's journal, and so to its verifiable log: a regulator can then
// check when each notice went out. The record is the JSON of a
// tapproof.NoticeRecord, with an alert id and the alert's class; appending the record of the same alert again within the stream's
// duplicate window (after a crash, say) is absorbed and returns the first
// record's index.
func (j *Journal) AppendNotice(ctx context.Context, utility string, record []byte) (uint64, error) {
	var r tapproof.NoticeRecord
	if err := json.Unmarshal(record, &r); err != nil || r.AlertID == "" {
		return 0, errors.New("append notice: record without an alert_id")
	}
	if !classPattern.MatchString(string(r.Class)) {
		return 0, fmt.Errorf("append notice: record of alert %s: class %q is not one subject token", r.AlertID, r.Class)
	}
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return 0, err
	}
	id := "notice-" + r.AlertID + "-" + string(r.MsgType) + "-" + r.Template
	m := j.seal(&nats.Msg{Subject: noticeSubject(utility, string(r.Class)), Data: record})
	ack, err := j.js.PublishMsg(ctx, m,
		jetstream.WithExpectStream(s.CachedInfo().Config.Name), jetstream.WithMsgID(id))
	if err != nil {
		return 0, fmt.Errorf("append notice: %w", err)
	}
	return ack.Sequence - 1, nil
}
