package journal

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const leasesBucket = "tapproof_leases"

// DefaultLeaseTTL is how long a lease outlives its holder's last renewal.
const DefaultLeaseTTL = 10 * time.Second

// Lease is leadership among tapproof replicas sharing NATS: a key
// in a key-value bucket whose entries expire ttl after their last write.
// The holder renews it every ttl/3 with a compare-and-set on the revision
// it wrote last, so at most one replica holds it at a time, and a replica
// that dies loses it within ttl.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	holder string
	ttl    time.Duration
	// Handicap, if set, delays each attempt to take the lease by what it
	// returns: a replica that leads more already waits longer, so that a
	// free lease goes to one that leads less.
	Handicap func() time.Duration
}

// Lease returns the lease name, to be held as holder.
func (j *Journal) Lease(ctx context.Context, name, holder string, ttl time.Duration) (*Lease, error) {
	kv, ttl, err := j.leases(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return &Lease{kv: kv, key: name, holder: holder, ttl: ttl}, nil
}

func (j *Journal) leases(ctx context.Context, ttl time.Duration) (jetstream.KeyValue, time.Duration, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	kv, err := j.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: leasesBucket, Description: "Leadership leases of tapproof replicas", TTL: ttl, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bucket %s: %w", leasesBucket, err)
	}
	return kv, ttl, nil
}

// presencePrefix starts the key each running replica keeps in the leases
// bucket.
const presencePrefix = "replica."

// Announce keeps holder's presence in the leases bucket, renewed every
// ttl/3, until ctx is done, then removes it; Replicas counts the replicas
// present. It returns only when ctx is done.
func (j *Journal) Announce(ctx context.Context, holder string, ttl time.Duration) error {
	key := presencePrefix + presenceKey(holder)
	var kv jetstream.KeyValue
	for ctx.Err() == nil {
		var err error
		if kv == nil {
			kv, ttl, err = j.leases(ctx, ttl)
		}
		if err == nil {
			_, err = kv.Put(ctx, key, []byte(holder))
		}
		if err != nil {
			ttl = max(ttl, time.Second) // and try again
		}
		sleep(ctx, ttl/3)
	}
	if kv != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = kv.Delete(rctx, key)
		cancel()
	}
	return nil
}

// Replicas returns how many replicas are present (Announce).
func (j *Journal) Replicas(ctx context.Context) (int, error) {
	kv, _, err := j.leases(ctx, 0)
	if err != nil {
		return 0, err
	}
	keys, err := kv.ListKeysFiltered(ctx, presencePrefix+">")
	if err != nil {
		return 0, fmt.Errorf("replicas: %w", err)
	}
	n := 0
	for range keys.Keys() { // closed once every key is listed
		n++
	}
	return n, nil
}

// presenceKey makes holder a key token: key-value keys allow letters,
// digits and -_=/ only.
func presenceKey(holder string) string {
	b := []byte(holder)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Lead runs fn whenever this replica holds the lease, until ctx is done.
// fn's context is cancelled as soon as the lease cannot be renewed, and
// Lead waits for fn to return before trying to take the lease again. When
// ctx ends, a held lease is released so another replica takes over at once.
// elected, if not nil, is told each time the lease is won or lost.
func (l *Lease) Lead(ctx context.Context, fn func(context.Context) error, elected func(bool)) error {
	for ctx.Err() == nil {
		if l.Handicap != nil {
			sleep(ctx, l.Handicap())
		}
		rev, err := l.kv.Create(ctx, l.key, []byte(l.holder))
		if err != nil {
			// Held by another replica (ErrKeyExists), or NATS is
			// unavailable: try again.
			sleep(ctx, l.ttl/3)
			continue
		}
		if err := l.hold(ctx, rev, fn, elected); err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// Once runs fn if the lease is free now, holding it as Lead does while fn
// runs and releasing it after. It reports whether fn ran.
func (l *Lease) Once(ctx context.Context, fn func(context.Context) error) (bool, error) {
	rev, err := l.kv.Create(ctx, l.key, []byte(l.holder))
	if err != nil {
		return false, nil
	}
	return true, l.hold(ctx, rev, fn, nil)
}

// hold runs fn while renewing the lease won at revision rev, then
// releases it.
func (l *Lease) hold(ctx context.Context, rev uint64, fn func(context.Context) error, elected func(bool)) error {
	if elected != nil {
		elected(true)
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fn(lctx) }()
	var fnErr error
renew:
	for {
		select {
		case fnErr = <-done:
			break renew
		case <-time.After(l.ttl / 3):
			var err error
			if rev, err = l.kv.Update(ctx, l.key, []byte(l.holder), rev); err != nil {
				cancel()
				fnErr = <-done
				break renew
			}
		}
	}
	cancel()
	if elected != nil {
		elected(false)
	}
	// Hand over: release the lease if it is still ours.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	_ = l.kv.Delete(rctx, l.key, jetstream.LastRevision(rev))
	rcancel()
	return fnErr
}
