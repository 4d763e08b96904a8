package residents_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/alertstest"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
)

// blackHole is a loopback TCP listener that accepts every connection and
// never answers.
type blackHole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newBlackHole(t *testing.T) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close()
		}
	})
	return b
}

func (b *blackHole) accepted() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// TestBlackHoleSubscriptionsDoNotDelayNotices is issue 20's acceptance
// test: 500 anonymous webhook subscriptions to an address that never
// answers do not delay an alert notice by more than 10 s. The notifier
// runs with its production defaults (workers, a 10 s webhook timeout,
// retries); the pending limits are raised so that all 500 confirmation
// requests are queued, as they would be from 500 hosts.
func TestBlackHoleSubscriptionsDoNotDelayNotices(t *testing.T) {
	const strangers, maxDelay = 500, 10 * time.Second
	e := startNotifierWith(t, residents.NotifierConfig{Links: notice.Links{Base: "https://water.example.org/"}},
		residents.SubscriptionsConfig{AllowPrivateWebhooks: true, MaxPendingPerDomain: 2 * strangers})
	hole := newBlackHole(t)
	rcv := alertstest.NewReceiver(t, func(int) int { return http.StatusOK })
	e.subscribed(t, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelWebhook, Address: rcv.URL + "/resident"})

	ctx := context.Background()
	start := time.Now()
	for i := range strangers {
		if _, err := e.n.Subscribe(ctx, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelWebhook,
			Address: fmt.Sprintf("http://%s/hook/%d", hole.ln.Addr(), i)}); err != nil {
			t.Fatalf("Subscribe #%d: %v", i+1, err)
		}
	}
	t.Logf("%d subscriptions to a black hole in %v", strangers, time.Since(start).Round(time.Millisecond))
	// The confirmations have reached the black hole and hold workers.
	poll.Until(t, 10*time.Second, func() error {
		if n := hole.accepted(); n < 2 {
			return errorf("black hole accepted %d connections, want the confirmation workers' 2 or more", n)
		}
		return nil
	})

	a := alertstest.Alert(11)
	published := time.Now()
	alertstest.Publish(t, e.store, a)
	var delay time.Duration
	deadline := published.Add(maxDelay)
	for len(rcv.Requests()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no notice after %v with %d confirmations to a black hole queued (black hole holds %d connections)", maxDelay, strangers, hole.accepted())
		}
		time.Sleep(20 * time.Millisecond) // polling, not timing: the deadline is measured
	}
	delay = time.Since(published)
	t.Logf("notice delivered %v after the alert, the black hole holding %d connections", delay.Round(time.Millisecond), hole.accepted())
	if r := rcv.Requests()[0]; r.Header.Get("X-Tapproof-Alert-Id") != a.ID {
		t.Errorf("first delivery to the resident is %s, want the notice of %s", r.Header.Get("X-Tapproof-Alert-Id"), a.ID)
	}
}

// TestConfirmedBlackHolesDoNotDelayEmail: a stranger's webhooks that
// answered their confirmation and then never answer again hold back the
// webhook deliveries only: an email notice of the same alert goes out at
// once, whatever the webhook queue holds. Before notices were queued per
// channel, 20 such webhooks held the workers for 10 s each.
func TestConfirmedBlackHolesDoNotDelayEmail(t *testing.T) {
	const strangers, maxDelay = 20, 10 * time.Second
	mp := localstack.MailpitForTest(t, nil)
	cfg := residents.NotifierConfig{Links: notice.Links{Base: "https://water.example.org/"}, Mailer: mailpitMailer(t, mp.SMTPHost, mp.SMTPPort)}
	e := startNotifierWith(t, cfg, residents.SubscriptionsConfig{AllowPrivateWebhooks: true})
	hole := newBlackHole(t)
	for i := range strangers {
		e.subscribed(t, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelWebhook,
			Address: fmt.Sprintf("http://%s/hook/%d", hole.ln.Addr(), i)})
	}
	const resident = "resident@example.org"
	e.subscribed(t, residents.SubscribeRequest{Target: elm, Channel: residents.ChannelEmail, Address: resident})

	published := time.Now()
	alertstest.Publish(t, e.store, alertstest.Alert(12))
	for {
		list, err := mp.Search(context.Background(), "to:"+resident)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			break
		}
		if time.Since(published) > maxDelay {
			t.Fatalf("no email notice %v after the alert, with %d confirmed webhooks to a black hole (it holds %d connections)", maxDelay, strangers, hole.accepted())
		}
		time.Sleep(50 * time.Millisecond) // polling, not timing: the deadline is measured
	}
	t.Logf("email notice %v after the alert, the black hole holding %d connections", time.Since(published).Round(time.Millisecond), hole.accepted())
}
