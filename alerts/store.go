package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// Stream and subjects.
const (
	// StreamName is the JetStream stream that holds alerts, their updates
	// and their all-clears.
	StreamName = "TAPPROOF_ALERTS"
	// SuppressionStreamName is the JetStream stream that records each
	// screening exceedance suppressed because an alert was already open.
	// It is kept apart from StreamName so that notifiers never see them.
	SuppressionStreamName = "TAPPROOF_SUPPRESSIONS"
	// SuppressionPrefix prefixes suppression subjects:
	// SuppressionPrefix.<utility>.<site>.
	SuppressionPrefix = "tapproof.suppressed"
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

// MaxScan is how many of the newest messages Get and Suppressions look at.
const MaxScan = 10_000

// Subject returns the subject alert a is stored under.
func Subject(a tapproof.Alert) string {
	site := a.Site
	if site == "" {
		site = SystemSite
	}
	return SubjectPrefix + "." + a.Utility + "." + site
}

// Store keeps alerts in JetStream. It is safe for concurrent use.
type Store struct {
	js           jetstream.JetStream
	stream       jetstream.Stream
	suppressions jetstream.Stream
	open         jetstream.KeyValue // OpenBucket
	metrics      *Metrics
}

// NewStore creates or updates the alert and suppression streams and the
// bucket of open alerts (OpenBucket, filled from the alert stream when it
// is created) and returns a Store on them. metrics, which may be nil,
// counts alerts stored for the first time (tapproof_alerts_raised_total)
// and messages set aside.
func NewStore(ctx context.Context, js jetstream.JetStream, metrics *Metrics) (*Store, error) {
	// Alerts and suppressed exceedances are kept alike: one message each,
	// deduplicated on the alert id.
	stream := func(name, desc, prefix string) (jetstream.Stream, error) {
		st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{prefix + ".>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			Duplicates:  DuplicateWindow,
			MaxMsgSize:  64 << 10,
			AllowDirect: true,
		})
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		return st, nil
	}
	st, err := stream(StreamName, "tapproof alerts, one message per alert", SubjectPrefix)
	if err != nil {
		return nil, err
	}
	sup, err := stream(SuppressionStreamName, "tapproof suppressed screening exceedances, one message each", SuppressionPrefix)
	if err != nil {
		return nil, err
	}
	open, created, err := openState(ctx, js)
	if err != nil {
		return nil, err
	}
	s := &Store{js: js, stream: st, suppressions: sup, open: open, metrics: metrics}
	if created {
		if err := s.rebuildOpen(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Publish stores a, once: publishing an alert with the same ID again within
// DuplicateWindow is absorbed by JetStream and returns nil. It then records
// what a does to the open alerts (OpenAlerts); a duplicate records it
// again, which is how a publish interrupted between the two completes.
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
	if err := s.track(ctx, a); err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	if !ack.Duplicate && a.Type() == tapproof.AlertMsg {
		s.metrics.alertRaised(a.Class)
	}
	return nil
}

// RecordSuppression stores a, a message with Status AlertSuppressed, in the
// suppression stream, once per ID like Publish.
func (s *Store) RecordSuppression(ctx context.Context, a tapproof.Alert) error {
	if a.ID == "" || a.Status != tapproof.AlertSuppressed {
		return fmt.Errorf("record suppression %q: not a suppression", a.ID)
	}
	if !tapproof.ValidID(a.Utility) || (a.Site != "" && !tapproof.ValidID(a.Site)) {
		return fmt.Errorf("record suppression %s: invalid utility or site id", a.ID)
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("record suppression %s: %w", a.ID, err)
	}
	site := a.Site
	if site == "" {
		site = SystemSite
	}
	_, err = s.js.Publish(ctx, SuppressionPrefix+"."+a.Utility+"."+site, body,
		jetstream.WithMsgID(a.ID), jetstream.WithExpectStream(SuppressionStreamName))
	if err != nil {
		return fmt.Errorf("record suppression %s: %w", a.ID, err)
	}
	return nil
}

// Get returns the alert message with id among the newest MaxScan messages
// of the alert stream, and whether there is one.
func (s *Store) Get(ctx context.Context, id string) (tapproof.Alert, bool, error) {
	var found tapproof.Alert
	ok := false
	err := s.scan(ctx, s.stream, SubjectPrefix+".>", func(a tapproof.Alert) bool {
		if a.ID == id {
			found, ok = a, true
			return false
		}
		return true
	})
	if err != nil {
		return tapproof.Alert{}, false, fmt.Errorf("get alert: %w", err)
	}
	return found, ok, nil
}

// Suppressions returns the suppressions recorded for utility (and site,
// unless empty) among the newest MaxScan, oldest first.
func (s *Store) Suppressions(ctx context.Context, utility, site string) ([]tapproof.Alert, error) {
	if site == "" {
		site = "*"
	}
	var out []tapproof.Alert
	err := s.scan(ctx, s.suppressions, SuppressionPrefix+"."+utility+"."+site, func(a tapproof.Alert) bool {
		out = append(out, a)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	return out, nil
}

// scan calls fn with the messages among the newest MaxScan of st that match
// filter, oldest first, until fn returns false.
func (s *Store) scan(ctx context.Context, st jetstream.Stream, filter string, fn func(tapproof.Alert) bool) error {
	js := s.js
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	start := max(info.State.FirstSeq, last-min(last, MaxScan-1))
	c, err := js.OrderedConsumer(ctx, info.Config.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return err
	}
	for {
		done, err := s.scanBatch(ctx, c, last, fn)
		if done || err != nil {
			return err
		}
	}
}

// scanBatch hands fn the alerts of one batch of c, up to stream sequence
// last. done is true when the scan is over: fn asked to stop, last was
// reached, or nothing more matches.
func (s *Store) scanBatch(ctx context.Context, c jetstream.Consumer, last uint64, fn func(tapproof.Alert) bool) (done bool, err error) {
	// A batch left unread when fn stops the scan ends with fetchCtx, not
	// a second later: its goroutine must not outlive the scan.
	fetchCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	batch, err := c.Fetch(500, jetstream.FetchContext(fetchCtx))
	if err != nil {
		return true, err
	}
	n := 0
	for m := range batch.Messages() {
		n++
		md, err := m.Metadata()
		if err != nil {
			return true, err
		}
		if a, err := s.metrics.DecodeAlert(m.Data()); err == nil && !fn(a) {
			return true, nil
		}
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			return true, nil
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return true, err
	}
	return n == 0, nil // none: nothing more matches the filter
}

// Watch returns a channel that receives every alert message stored after
// Watch returns. The channel is closed when ctx is done or the subscription
// fails; a slow reader holds back only itself.
func (s *Store) Watch(ctx context.Context) (<-chan tapproof.Alert, error) {
	c, err := s.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectPrefix + ".>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("watch alerts: %w", err)
	}
	it, err := c.Messages()
	if err != nil {
		return nil, fmt.Errorf("watch alerts: %w", err)
	}
	out := make(chan tapproof.Alert)
	stop := context.AfterFunc(ctx, it.Stop)
	go func() {
		defer close(out)
		defer stop()
		defer it.Stop()
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			a, err := s.metrics.DecodeAlert(m.Data())
			if err != nil {
				continue
			}
			select {
			case out <- a:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
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
		a, err := s.metrics.DecodeAlert(m.Data)
		if err != nil {
			continue // set aside: counted, never served
		}
		out = append(out, a)
	}
	return out, nil
}

// Open returns the alerts among msgs that are still open, newest first: for
// every alert no Cancel among msgs references, its newest message (the
// Alert or its latest Update). Suppression records are ignored. msgs may be
// in any order, e.g. as Recent returns them.
func Open(msgs []tapproof.Alert) []tapproof.Alert {
	closed := map[string]bool{}
	for _, a := range msgs {
		if a.Type() == tapproof.CancelMsg {
			for _, r := range a.References {
				closed[r.ID] = true
			}
		}
	}
	latest := map[string]tapproof.Alert{}
	for _, a := range msgs {
		if a.Type() == tapproof.CancelMsg || a.State() == tapproof.AlertSuppressed || closed[Root(a)] {
			continue
		}
		r := Root(a)
		if cur, ok := latest[r]; !ok || newer(a, cur) {
			latest[r] = a
		}
	}
	out := make([]tapproof.Alert, 0, len(latest))
	for _, a := range latest {
		out = append(out, a)
	}
	sortNewestFirst(out)
	return out
}
