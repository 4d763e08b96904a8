package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// OpenBucket is the JetStream key-value bucket that holds the alerts that
// are open: one key per alert, <utility>.<site>.<alert id> (site SystemSite
// for a whole water system), whose value is the alert's newest message (its
// Alert or latest Update). An all-clear deletes the key.
//
// What is open is state, not a window over the alert stream: no number of
// other alerts, of any utility, can push an open one out of view. Pages,
// feeds and the API read it with Store.OpenAlerts.
const OpenBucket = "tapproof_open_alerts"

// keyToken admits the alert ids tapproof writes (class, device or lab and
// utility, sequence number or period) as a key-value key's last tokens.
var keyToken = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Root returns the id of the alert that message a belongs to: a's own id
// for an Alert, the first reference of an Update or Cancel.
func Root(a tapproof.Alert) string {
	if a.Type() != tapproof.AlertMsg && len(a.References) > 0 {
		return a.References[0].ID
	}
	return a.ID
}

// openKey is the OpenBucket key of the alert whose root message is id.
func openKey(utility, site, id string) (string, error) {
	if site == "" {
		site = SystemSite
	}
	if !keyToken.MatchString(id) {
		return "", fmt.Errorf("open alert %q: id cannot be a key", id)
	}
	return utility + "." + site + "." + id, nil
}

// openState creates or opens OpenBucket. created says it did not exist.
func openState(ctx context.Context, js jetstream.JetStream) (kv jetstream.KeyValue, created bool, err error) {
	kv, err = js.KeyValue(ctx, OpenBucket)
	if err == nil {
		return kv, false, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, false, fmt.Errorf("open alerts bucket: %w", err)
	}
	// Create, not create-or-update: of replicas starting together, the
	// one that creates the bucket fills it.
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       OpenBucket,
		Description:  "tapproof open alerts, one key per alert: its newest message",
		History:      1,
		Storage:      jetstream.FileStorage,
		MaxValueSize: 64 << 10,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, OpenBucket)
		if err != nil {
			return nil, false, fmt.Errorf("open alerts bucket: %w", err)
		}
		return kv, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open alerts bucket: %w", err)
	}
	return kv, true, nil
}

// track records what message a, just stored, does to the open alerts: an
// open Alert or Update becomes its alert's newest message, unless a newer
// one is already there; a Cancel closes its alert (Root). Suppressions
// change nothing. It is idempotent, so a message published again after a
// crash tracks again to the same state.
func (s *Store) track(ctx context.Context, a tapproof.Alert) error {
	if a.State() == tapproof.AlertSuppressed {
		return nil
	}
	key, err := openKey(a.Utility, a.Site, Root(a))
	if err != nil {
		return err
	}
	if a.Type() == tapproof.CancelMsg {
		if err := s.open.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("close alert %s: %w", key, err)
		}
		return nil
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("open alert %s: %w", key, err)
	}
	for range 3 { // lost races with another writer of the same alert
		e, err := s.open.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.open.Create(ctx, key, body)
		case err != nil:
			return fmt.Errorf("open alert %s: %w", key, err)
		default:
			cur, derr := s.metrics.DecodeAlert(e.Value())
			if derr == nil && newer(cur, a) {
				return nil // a replay of an older message
			}
			_, err = s.open.Update(ctx, key, body, e.Revision())
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("open alert %s: %w", key, err)
		}
	}
	return fmt.Errorf("open alert %s: concurrent writers", key)
}

// newer reports whether message cur of an alert supersedes message a of
// the same alert: raised later, or raised at the same time and an Update
// where a is the Alert.
func newer(cur, a tapproof.Alert) bool {
	if c := cur.RaisedAt.Compare(a.RaisedAt); c != 0 {
		return c > 0
	}
	return cur.Type() == tapproof.UpdateMsg && a.Type() == tapproof.AlertMsg
}

// OpenAlerts returns the open alerts of utility (all utilities if empty),
// at site if site is set (with the alerts about the whole water system,
// which concern every site), each as its newest message, newest first.
func (s *Store) OpenAlerts(ctx context.Context, utility, site string) ([]tapproof.Alert, error) {
	if (utility != "" && !tapproof.ValidID(utility)) || (site != "" && !tapproof.ValidID(site)) {
		return nil, errors.New("open alerts: invalid utility or site")
	}
	var filters []string
	switch {
	case utility == "":
		filters = []string{">"}
	case site == "":
		filters = []string{utility + ".>"}
	default:
		filters = []string{utility + "." + site + ".>", utility + "." + SystemSite + ".>"}
	}
	w, err := s.open.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("open alerts: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []tapproof.Alert
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open alerts: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("open alerts: watch ended")
			}
			if e == nil { // every current value has been delivered
				sortNewestFirst(out)
				return out, nil
			}
			a, err := s.metrics.DecodeAlert(e.Value())
			if err != nil {
				continue // set aside: counted, never served
			}
			out = append(out, a)
		}
	}
}

// rebuildOpen fills a new OpenBucket from the whole alert stream, for a
// deployment that kept its alerts before the bucket existed. Messages
// other replicas store meanwhile are tracked by them, and tracked here
// again, in order, once the rebuild is done, so that an all-clear stored
// during the rebuild is not undone by it.
func (s *Store) rebuildOpen(ctx context.Context) error {
	all, last, err := s.messages(ctx, 1)
	if err != nil {
		return err
	}
	for _, a := range Open(all) {
		if err := s.track(ctx, a); err != nil {
			return err
		}
	}
	since, _, err := s.messages(ctx, last+1)
	if err != nil {
		return err
	}
	for _, a := range since {
		if err := s.track(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// messages returns the alert messages of the stream from sequence from on,
// oldest first, and the last sequence read.
func (s *Store) messages(ctx context.Context, from uint64) ([]tapproof.Alert, uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("open alerts: %w", err)
	}
	var out []tapproof.Alert
	for seq := max(from, info.State.FirstSeq); info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("open alerts: message %d: %w", seq, err)
		}
		if a, err := s.metrics.DecodeAlert(m.Data); err == nil {
			out = append(out, a)
		}
	}
	return out, info.State.LastSeq, nil
}

func sortNewestFirst(as []tapproof.Alert) {
	slices.SortFunc(as, func(a, b tapproof.Alert) int {
		if c := b.RaisedAt.Compare(a.RaisedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
