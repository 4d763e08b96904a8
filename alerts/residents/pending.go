package residents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The confirmation requests outstanding per address and per domain: what
// the pending limits count. Each is a key of the SubscriptionBucket
// holding the list of requests made within the pending TTL, updated by
// compare-and-set so that replicas subscribing at once cannot both take
// the last place.

// request is one confirmation request outstanding.
type request struct {
	At  int64  `json:"at"` // Unix seconds
	Sub string `json:"sub"`
}

// casTries bounds the compare-and-set retries of one update: each retry
// follows another writer's success.
const casTries = 10

// domainOf is the email domain or the webhook host of a normalized
// address.
func domainOf(ch Channel, address string) string {
	if ch == ChannelEmail {
		_, d, _ := strings.Cut(address, "@")
		return strings.ToLower(d)
	}
	if u, err := url.Parse(address); err == nil {
		return strings.ToLower(u.Hostname())
	}
	return address
}

// inboxOf is the mailbox an email address reaches, as far as the pending
// limit counts it: the local part folded to lower case and without a
// "+tag", which most mail servers ignore. Other addresses are themselves.
func inboxOf(ch Channel, address string) string {
	if ch != ChannelEmail {
		return address
	}
	local, domain, _ := strings.Cut(address, "@")
	local, _, _ = strings.Cut(strings.ToLower(local), "+")
	return local + "@" + strings.ToLower(domain)
}

// pendingKeys are the keys counting the requests outstanding for an
// address (its inbox) and for its domain.
func pendingKeys(ch Channel, address string) (perAddress, perDomain string) {
	return "pa." + hashHex(string(ch)+"\x00"+inboxOf(ch, address)), "pd." + hashHex(string(ch)+"\x00"+domainOf(ch, address))
}

// limitsDomain reports whether requests through ch are also bounded per
// domain: per webhook host, which a stranger controls and can make a black
// hole, not per email domain, where a stranger's made-up addresses would
// otherwise lock every resident of a mail provider out.
func limitsDomain(ch Channel) bool { return ch == ChannelWebhook }

// reservePending counts a new confirmation request for subscription id of
// address, or refuses it if its address or its domain has as many
// outstanding as the limits allow.
func (s *Subscriptions) reservePending(ctx context.Context, ch Channel, address, id string, now time.Time) error {
	pa, pd := pendingKeys(ch, address)
	add := func(limit int, refusal *Refusal) func([]request) ([]request, error) {
		return func(rs []request) ([]request, error) {
			if len(rs) >= limit {
				return nil, refusal
			}
			return append(rs, request{At: now.Unix(), Sub: id}), nil
		}
	}
	if err := s.updatePending(ctx, pa, now, add(s.cfg.MaxPendingPerAddress,
		refuse(RefusePendingAddress, "this address has %d subscriptions waiting for confirmation", s.cfg.MaxPendingPerAddress))); err != nil {
		return err
	}
	if !limitsDomain(ch) {
		return nil
	}
	err := s.updatePending(ctx, pd, now, add(s.cfg.MaxPendingPerDomain,
		refuse(RefusePendingDomain, "too many subscriptions at this address's domain are waiting for confirmation")))
	if err != nil {
		// Give the address's place back; if that fails, it expires.
		_ = s.updatePending(ctx, pa, now, without(id))
	}
	return err
}

// releasePending forgets the requests of sub: it was confirmed or ended.
func (s *Subscriptions) releasePending(ctx context.Context, sub Subscription) error {
	pa, pd := pendingKeys(sub.Channel, sub.Address)
	keys := []string{pa}
	if limitsDomain(sub.Channel) {
		keys = append(keys, pd)
	}
	for _, k := range keys {
		if err := s.updatePending(ctx, k, s.cfg.Now(), without(sub.ID)); err != nil {
			return err
		}
	}
	return nil
}

func without(id string) func([]request) ([]request, error) {
	return func(rs []request) ([]request, error) {
		return slices.DeleteFunc(rs, func(r request) bool { return r.Sub == id }), nil
	}
}

// purgePending drops the expired requests of every address and domain,
// and deletes the lists left empty.
func (s *Subscriptions) purgePending(ctx context.Context) error {
	l, err := s.kv.ListKeysFiltered(ctx, "pa.*", "pd.*")
	if err != nil {
		return fmt.Errorf("pending requests: %w", err)
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	l.Stop()
	now := s.cfg.Now()
	for _, k := range keys {
		if err := s.updatePending(ctx, k, now, func(rs []request) ([]request, error) { return rs, nil }); err != nil {
			return err
		}
	}
	return nil
}

// updatePending applies f to the unexpired requests of key and stores
// the result, by compare-and-set, deleting the key when none is left. An
// error of f is returned as it is, with nothing stored.
func (s *Subscriptions) updatePending(ctx context.Context, key string, now time.Time, f func([]request) ([]request, error)) error {
	for range casTries {
		var rs []request
		var rev uint64
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("pending requests: %w", err)
		default:
			rev = e.Revision()
			// A list tapproof did not write (with broker credentials)
			// counts nothing and is written over: it must not refuse, nor
			// stop the purge of, every request of its address or domain.
			if len(e.Value()) > 0 && json.Unmarshal(e.Value(), &rs) != nil {
				rs = nil
			}
		}
		before := len(rs)
		rs = slices.DeleteFunc(rs, func(r request) bool { return s.expired(time.Unix(r.At, 0), now) })
		expired := before - len(rs)
		if rs, err = f(rs); err != nil {
			return err
		}
		switch {
		case len(rs) == 0 && rev == 0:
			return nil
		case len(rs) == 0:
			err = s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		case len(rs) == before && expired == 0 && rev != 0:
			return nil // unchanged
		case rev == 0:
			b, _ := json.Marshal(rs)
			_, err = s.kv.Create(ctx, key, b)
		default:
			b, _ := json.Marshal(rs)
			_, err = s.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return fmt.Errorf("pending requests: %w", err)
		}
		// Another writer came first: read again.
	}
	return errors.New("pending requests: too much contention")
}

// isWrongSequence reports whether err is JetStream's refusal of a
// compare-and-set whose revision is no longer the last.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
