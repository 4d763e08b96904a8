package residents_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/alertstest"
)

// clock is a settable clock for Subscriptions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func subscriptionsAt(t *testing.T, c *clock, cfg residents.SubscriptionsConfig) *residents.Subscriptions {
	t.Helper()
	cfg.Now = c.Now
	subs, err := residents.NewSubscriptions(context.Background(), alertstest.JetStream(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

func wantRefusal(t *testing.T, what string, err error, code residents.RefusalCode) {
	t.Helper()
	var r *residents.Refusal
	if !errors.As(err, &r) || r.Code != code {
		t.Errorf("%s = %v, want refusal %s", what, err, code)
	}
}

var elm = residents.Target{Utility: "springfield", Site: "elm-st-12"}

func site(i int) residents.Target {
	return residents.Target{Utility: "springfield", Site: fmt.Sprintf("site-%d", i)}
}

// TestPendingPerAddress: an address gets at most MaxPendingPerAddress
// confirmation requests while none is confirmed or expired, asking again
// for the same subscription counts, and confirming one frees its place.
func TestPendingPerAddress(t *testing.T) {
	c := newClock()
	subs := subscriptionsAt(t, c, residents.SubscriptionsConfig{})
	ctx := context.Background()
	const victim = "victim@example.org"
	req := func(target residents.Target) residents.SubscribeRequest {
		return residents.SubscribeRequest{Target: target, Channel: residents.ChannelEmail, Address: victim}
	}
	var tokens []string
	for i := range residents.DefaultMaxPendingPerAddress {
		_, tok, err := subs.Subscribe(ctx, req(site(i)))
		if err != nil || tok == "" {
			t.Fatalf("Subscribe #%d = %q, %v; want a token", i+1, tok, err)
		}
		tokens = append(tokens, tok)
	}
	_, _, err := subs.Subscribe(ctx, req(site(99)))
	wantRefusal(t, "Subscribe beyond the limit", err, residents.RefusePendingAddress)
	// The same inbox spelt otherwise counts as the same address.
	for _, alias := range []string{"Victim@example.org", "vIctim+1@EXAMPLE.org"} {
		_, _, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: site(98), Channel: residents.ChannelEmail, Address: alias})
		wantRefusal(t, "Subscribe "+alias+" beyond the limit", err, residents.RefusePendingAddress)
	}
	// Asking again for one already pending is a new request, refused too:
	// the form cannot mail-bomb an address one target at a time.
	_, _, err = subs.Subscribe(ctx, req(site(0)))
	wantRefusal(t, "Subscribe again beyond the limit", err, residents.RefusePendingAddress)
	// Another address of the same domain, and the same address by webhook
	// channel, are not limited by it.
	if _, _, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelEmail, Address: "neighbour@example.org"}); err != nil {
		t.Errorf("Subscribe(another address) = %v", err)
	}
	// Confirming one frees its place.
	if _, err := subs.Confirm(ctx, tokens[0]); err != nil {
		t.Fatal(err)
	}
	if _, tok, err := subs.Subscribe(ctx, req(site(99))); err != nil || tok == "" {
		t.Errorf("Subscribe after a confirmation = %q, %v; want a token", tok, err)
	}
	_, _, err = subs.Subscribe(ctx, req(site(100)))
	wantRefusal(t, "Subscribe at the limit again", err, residents.RefusePendingAddress)
	// A confirmed subscription asked for again sends nothing, and is not
	// refused.
	if _, tok, err := subs.Subscribe(ctx, req(site(0))); err != nil || tok != "" {
		t.Errorf("Subscribe(confirmed) = %q, %v; want no token and no refusal", tok, err)
	}
	// Once the requests expire, the address may ask again.
	c.Add(residents.DefaultPendingTTL)
	if _, tok, err := subs.Subscribe(ctx, req(site(100))); err != nil || tok == "" {
		t.Errorf("Subscribe after %v = %q, %v; want a token", residents.DefaultPendingTTL, tok, err)
	}
}

// TestPendingPerDomain: an email domain, and a webhook host, get at most
// MaxPendingPerDomain confirmation requests outstanding.
func TestPendingPerDomain(t *testing.T) {
	c := newClock()
	const limit = 4
	subs := subscriptionsAt(t, c, residents.SubscriptionsConfig{MaxPendingPerDomain: limit})
	ctx := context.Background()
	for _, tt := range []struct {
		channel      residents.Channel
		addr, others string
	}{
		{residents.ChannelWebhook, "https://hooks.example.net/r/%d", "https://hooks.example.com/r/1"},
	} {
		for i := range limit {
			if _, _, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: tt.channel, Address: fmt.Sprintf(tt.addr, i)}); err != nil {
				t.Fatalf("Subscribe #%d by %s = %v", i+1, tt.channel, err)
			}
		}
		_, _, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: tt.channel, Address: fmt.Sprintf(tt.addr, limit)})
		wantRefusal(t, "Subscribe beyond the domain's limit by "+string(tt.channel), err, residents.RefusePendingDomain)
		if _, _, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: tt.channel, Address: tt.others}); err != nil {
			t.Errorf("Subscribe(%s) = %v; another domain is not limited", tt.others, err)
		}
	}
	// A stranger's made-up addresses at a mail provider do not lock its
	// residents out: email domains are not bounded.
	for i := range 3 * limit {
		if _, _, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelEmail, Address: fmt.Sprintf("user%d@Mail.Example.org", i)}); err != nil {
			t.Fatalf("Subscribe of address #%d at one mail domain = %v", i+1, err)
		}
	}
	c.Add(residents.DefaultPendingTTL)
	if _, _, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelWebhook, Address: "https://hooks.example.net/r/late"}); err != nil {
		t.Errorf("Subscribe once the host's requests expired = %v", err)
	}
}

// TestPendingExpires: a confirmation token stops working after the
// pending TTL, PurgeExpired deletes the expired subscription and its keys
// but nothing confirmed or still pending.
func TestPendingExpires(t *testing.T) {
	c := newClock()
	const ttl = 2 * time.Hour
	subs := subscriptionsAt(t, c, residents.SubscriptionsConfig{PendingTTL: ttl})
	ctx := context.Background()
	subscribe := func(addr string) (residents.Subscription, string) {
		t.Helper()
		sub, tok, err := subs.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelEmail, Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		return sub, tok
	}
	late, lateTok := subscribe("late@example.org")
	kept, keptTok := subscribe("kept@example.org")
	if _, err := subs.Confirm(ctx, keptTok); err != nil {
		t.Fatal(err)
	}
	c.Add(ttl - time.Second)
	fresh, freshTok := subscribe("fresh@example.org")
	if n, err := subs.PurgeExpired(ctx); err != nil || n != 0 {
		t.Errorf("PurgeExpired before the TTL = %d, %v; want 0", n, err)
	}
	c.Add(time.Second)
	if _, err := subs.Confirm(ctx, lateTok); !errors.Is(err, residents.ErrUnknownToken) {
		t.Errorf("Confirm after %v = %v, want ErrUnknownToken", ttl, err)
	}
	if !subs.Expired(late) || subs.Expired(fresh) {
		t.Errorf("Expired(late, fresh) = %v, %v; want true, false", subs.Expired(late), subs.Expired(fresh))
	}
	if n, err := subs.PurgeExpired(ctx); err != nil || n != 1 {
		t.Errorf("PurgeExpired = %d, %v; want 1", n, err)
	}
	if _, err := subs.Get(ctx, late.ID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("Get(expired) = %v, want not found", err)
	}
	if _, err := subs.Unsubscribe(ctx, late.UnsubscribeToken); !errors.Is(err, residents.ErrUnknownToken) {
		t.Errorf("Unsubscribe(expired) = %v, want ErrUnknownToken (its keys purged)", err)
	}
	if _, err := subs.Get(ctx, kept.ID); err != nil {
		t.Errorf("Get(confirmed) after purge = %v", err)
	}
	if _, err := subs.Confirm(ctx, freshTok); err != nil {
		t.Errorf("Confirm(fresh) after purge = %v", err)
	}
	// The expired address subscribes anew.
	again, tok := subscribe("late@example.org")
	if tok == "" || again.ID == late.ID || again.Confirmed {
		t.Errorf("Subscribe after purge = %v, %q; want a new pending subscription", again, tok)
	}
	all, err := subs.All(ctx)
	if err != nil || len(all) != 3 {
		t.Errorf("All = %v, %v; want kept, fresh and the new one", all, err)
	}
}

// TestPendingLimitAcrossReplicas: two replicas' Subscriptions taking
// requests for one domain at once never exceed its limit together.
func TestPendingLimitAcrossReplicas(t *testing.T) {
	const limit, tries = 5, 24
	js := alertstest.JetStream(t)
	ctx := context.Background()
	var replicas []*residents.Subscriptions
	for range 2 {
		s, err := residents.NewSubscriptions(ctx, js, residents.SubscriptionsConfig{MaxPendingPerDomain: limit})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, s)
	}
	var mu sync.Mutex
	accepted, refused := 0, 0
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			_, _, err := replicas[i%2].Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelWebhook, Address: fmt.Sprintf("https://crowded.example.org/r/%d", i)})
			var r *residents.Refusal
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.As(err, &r) && r.Code == residents.RefusePendingDomain:
				refused++
			default:
				t.Errorf("Subscribe #%d = %v", i, err)
			}
		})
	}
	wg.Wait()
	if accepted != limit || refused != tries-limit {
		t.Errorf("%d accepted and %d refused, want %d and %d", accepted, refused, limit, tries-limit)
	}
}

// TestPendingListsNotTapproofs: pending lists written over with what
// tapproof did not write (broker credentials) neither refuse the next
// request of their address and host nor stop the purge.
func TestPendingListsNotTapproofs(t *testing.T) {
	c := newClock()
	ctx := context.Background()
	js := alertstest.JetStream(t)
	subs, err := residents.NewSubscriptions(ctx, js, residents.SubscriptionsConfig{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	req := residents.SubscribeRequest{Target: elm, Channel: residents.ChannelWebhook, Address: "https://hooks.example.net/r/1"}
	if _, _, err := subs.Subscribe(ctx, req); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, residents.SubscriptionBucket)
	if err != nil {
		t.Fatal(err)
	}
	l, err := kv.ListKeysFiltered(ctx, "pa.*", "pd.*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range l.Keys() {
		if _, err := kv.Put(ctx, k, []byte("not a list")); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d pending lists, want the address's and the host's", n)
	}
	if _, _, err := subs.Subscribe(ctx, req); err != nil {
		t.Errorf("Subscribe with its pending lists written over = %v", err)
	}
	if _, err := subs.PurgeExpired(ctx); err != nil {
		t.Errorf("PurgeExpired with a pending list written over = %v", err)
	}
}
