package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// noticeSubject carries the records of notices sent to the public: one
// subject per log, a kind of its own ("n") next to readings and enrollments.
func noticeSubject(utility string) string {
	return fmt.Sprintf("%s.%s.%s.notice", logSubject, utility, KindNotice)
}

// AppendNotice appends the record of a notice sent to the public to
// utility's journal, and so to its verifiable log: a regulator can then
// check when each notice went out. The record is JSON with an "alert_id";
// appending the record of the same alert again within the stream's
// duplicate window (after a crash, say) is absorbed and returns the first
// record's index.
func (j *Journal) AppendNotice(ctx context.Context, utility string, record []byte) (uint64, error) {
	var r struct {
		AlertID  string `json:"alert_id"`
		MsgType  string `json:"msg_type"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(record, &r); err != nil || r.AlertID == "" {
		return 0, errors.New("append notice: record without an alert_id")
	}
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return 0, err
	}
	id := "notice-" + r.AlertID + "-" + r.MsgType + "-" + r.Template
	ack, err := j.js.Publish(ctx, noticeSubject(utility), record,
		jetstream.WithExpectStream(s.CachedInfo().Config.Name), jetstream.WithMsgID(id))
	if err != nil {
		return 0, fmt.Errorf("append notice: %w", err)
	}
	return ack.Sequence - 1, nil
}
