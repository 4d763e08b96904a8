package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// Stream and subjects.
const (
	// StreamName is the JetStream stream that holds alerts.
	StreamName = "TAPPROOF_ALERTS"
	// SubjectPrefix prefixes alert subjects: SubjectPrefix.<utility>.<site>.
	SubjectPrefix = "tapproof.alerts"
	// SystemSite is the site token of alerts about a whole water system.
	SystemSite = "_"
)

// DuplicateWindow is how long the stream remembers alert ids. Alerts are
// rare, so a long window costs little, and it must outlast any plausible
// redelivery of the reading that raised an alert (a consumer restarted after
// an outage), not only a network retry.
const DuplicateWindow = 24 * time.Hour

// MaxRecent is the most alerts Recent returns.
const MaxRecent = 1000

// Subject returns the subject alert a is stored under.
func Subject(a tapproof.Alert) string {
	site := a.Site
	if site == "" {
		site = SystemSite
	}
	return SubjectPrefix + "." + a.Utility + "." + site
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithMetrics makes the Store count alerts stored for the first time in
// tapproof_alerts_raised_total.
func WithMetrics(m *Metrics) StoreOption { return func(s *Store) { s.metrics = m } }

// Store keeps alerts in JetStream. It is safe for concurrent use.
type Store struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	metrics *Metrics
}

// NewStore creates or updates the alert stream and returns a Store on it.
func NewStore(ctx context.Context, js jetstream.JetStream, opts ...StoreOption) (*Store, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "tapproof alerts, one message per alert",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  DuplicateWindow,
		MaxMsgSize:  64 << 10,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("alert stream: %w", err)
	}
	s := &Store{js: js, stream: st}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Publish stores a, once: publishing an alert with the same ID again within
// DuplicateWindow is absorbed by JetStream and returns nil.
func (s *Store) Publish(ctx context.Context, a tapproof.Alert) error {
	if a.ID == "" {
		return errors.New("publish alert: empty id")
	}
	if !tapproof.ValidID(a.Utility) || (a.Site != "" && !tapproof.ValidID(a.Site)) {
		return fmt.Errorf("publish alert %s: invalid utility or site id", a.ID)
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	ack, err := s.js.Publish(ctx, Subject(a), body,
		jetstream.WithMsgID(a.ID), jetstream.WithExpectStream(StreamName))
	if err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	if !ack.Duplicate {
		s.metrics.alertRaised(a.Class)
	}
	return nil
}

// Recent returns up to limit of the newest stored alerts, newest first.
// limit is capped at MaxRecent.
func (s *Store) Recent(ctx context.Context, limit int) ([]tapproof.Alert, error) {
	limit = min(limit, MaxRecent)
	if limit <= 0 {
		return nil, nil
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("recent alerts: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	out := make([]tapproof.Alert, 0, min(uint64(limit), info.State.Msgs))
	for seq := last; seq >= first && seq > 0 && len(out) < limit; seq-- {
		m, err := s.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			return nil, fmt.Errorf("recent alerts: message %d: %w", seq, err)
		}
		var a tapproof.Alert
		if err := json.Unmarshal(m.Data, &a); err != nil {
			return nil, fmt.Errorf("recent alerts: message %d: %w", seq, err)
		}
		out = append(out, a)
	}
	return out, nil
}
