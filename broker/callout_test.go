package broker_test

import (
	"crypto/ed25519"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
)

// slowDirectory answers like its Directory, after delay: a directory
// reading a store, or a callout on a busy machine. It counts lookups.
type slowDirectory struct {
	broker.Directory
	delay   time.Duration
	lookups atomic.Int64
}

func (d *slowDirectory) Party(pub ed25519.PublicKey) (broker.Party, error) {
	d.lookups.Add(1)
	time.Sleep(d.delay)
	return d.Directory.Party(pub)
}

// stranger tries to connect once with a fresh key the directory does not
// know, signing the nonce properly.
func stranger(b *natstest.Broker) error {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	pub, err := broker.UserKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(b.URL(), nats.RootCAs(b.TLS.CA), nats.NoReconnect(), nats.Timeout(20*time.Second),
		nats.Nkey(pub, func(n []byte) ([]byte, error) { return ed25519.Sign(key, n), nil }))
	if err == nil {
		nc.Close()
		return errors.New("a stranger connected")
	}
	return nil
}

// TestFloodDoesNotStarveDevices: while 50 clients with keys nobody
// enrolled log in again and again, an enrolled device logs in within 3 s.
// Each lookup takes 100 ms, so a callout answering one request at a time
// has the whole flood's backlog ahead of the device (about 50 × 100 ms,
// the server's authorization timeout); the pool decides eight at a time
// from a bounded queue (about 50 / 8 × 100 ms, plus the flood's TLS
// handshakes: 0.4 to 1.5 s here, with -race on a loaded machine).
func TestFloodDoesNotStarveDevices(t *testing.T) {
	const (
		flooders = 50
		delay    = 100 * time.Millisecond
		bound    = 3 * time.Second
	)
	b := natstest.StartBroker(t, t.TempDir())
	dev := newKey(t)
	b.Directory.Add(dev.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Device, ID: "dev-1", Utility: "u1", Site: "s1"})
	dir := &slowDirectory{Directory: b.Directory, delay: delay}
	b.Authorize(t, broker.AuthorizerConfig{}, dir, nil)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attempts, admitted atomic.Int64
	for range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				attempts.Add(1)
				if stranger(b) != nil {
					admitted.Add(1)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// The flood is on once every flooder has reached the callout.
	poll.Until(t, 30*time.Second, func() error {
		if n := dir.lookups.Load(); n < 2*flooders {
			return errors.New("the flood has not reached the callout yet")
		}
		return nil
	})

	start := time.Now()
	nc, err := b.ConnectParty(broker.Device, "dev-1", dev, nats.NoReconnect(), nats.Timeout(20*time.Second))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("enrolled device under a flood of strangers: %v (after %s)", err, took)
	}
	nc.Close()
	t.Logf("enrolled device logged in after %s, under %d strangers' login attempts so far (%d lookups)", took.Round(time.Millisecond), attempts.Load(), dir.lookups.Load())
	if took > bound {
		t.Errorf("enrolled device logged in after %s under a flood, want within %s", took.Round(time.Millisecond), bound)
	}
	if n := admitted.Load(); n != 0 {
		t.Errorf("%d strangers connected", n)
	}
}

// TestCalloutFullQueueRefusesCheaply: with one worker and a queue of two,
// a burst of ten strangers costs at most three lookups; the other seven
// are refused as busy without being opened, and all ten are refused.
func TestCalloutFullQueueRefusesCheaply(t *testing.T) {
	const burst = 10
	b := natstest.StartBroker(t, t.TempDir())
	dir := &slowDirectory{Directory: b.Directory, delay: 500 * time.Millisecond}
	reg := prometheus.NewPedanticRegistry()
	b.Authorize(t, broker.AuthorizerConfig{Workers: 1, Queue: 2}, dir, reg)

	var wg sync.WaitGroup
	errs := make(chan error, burst)
	for range burst {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- stranger(b) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := dir.lookups.Load(); n > 3 {
		t.Errorf("a burst of %d strangers cost %d lookups with one worker and a queue of two; want at most 3", burst, n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var busy float64
	for _, mf := range mfs {
		if mf.GetName() != "tapproof_broker_connections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "busy" {
					busy = m.GetCounter().GetValue()
				}
			}
		}
	}
	if busy < burst-3 {
		t.Errorf("refused as busy: %v, want at least %d", busy, burst-3)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
}

// TestCalloutEncrypted: the server encrypts every authorization request to
// the callout's xkey, so another subscriber in the account (had it the
// permission) would read nothing, and it accepts only answers encrypted
// with that key and signed by the issuer: an answer from another key is
// refused, whatever it says.
func TestCalloutEncrypted(t *testing.T) {
	b := natstest.StartBroker(t, t.TempDir())
	dev := newKey(t)
	b.Directory.Add(dev.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Device, ID: "dev-1", Utility: "u1", Site: "s1"})

	t.Run("request", func(t *testing.T) {
		nc := b.Connect(t, b.Keys.Callout)
		sub, err := nc.SubscribeSync(broker.AuthSubject)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		tried := make(chan struct{})
		go func() {
			defer close(tried)
			if d, err := b.ConnectParty(broker.Device, "dev-1", dev, nats.NoReconnect(), nats.Timeout(10*time.Second)); err == nil {
				d.Close()
			}
		}()
		defer func() { <-tried }()
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = sub.Unsubscribe()
		if _, err := jwt.DecodeAuthorizationRequestClaims(string(m.Data)); err == nil {
			t.Fatal("the authorization request is readable without the callout's xkey")
		}
		serverKey := m.Header.Get("Nats-Server-Xkey")
		if serverKey == "" {
			t.Fatal("the authorization request names no server xkey")
		}
		clear, err := b.Keys.XKey.Open(m.Data, serverKey)
		if err != nil {
			t.Fatalf("the callout's xkey does not open the request: %v", err)
		}
		req, err := jwt.DecodeAuthorizationRequestClaims(string(clear))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(req.ConnectOptions.Nkey, "U") {
			t.Fatalf("decrypted request names nkey %q", req.ConnectOptions.Nkey)
		}
	})

	otherX, err := nkeys.CreateCurveKeys()
	if err != nil {
		t.Fatal(err)
	}
	otherIssuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		issuer      nkeys.KeyPair // signs the answer
		seal        nkeys.KeyPair // encrypts it
		wantAdmit   bool
		description string
	}{
		{"the callout's keys", b.Keys.Issuer, b.Keys.XKey, true, ""},
		{"encrypted with another xkey", b.Keys.Issuer, otherX, false, "an answer encrypted with another curve key"},
		{"signed by another issuer", otherIssuer, b.Keys.XKey, false, "a user JWT signed by another account key"},
	} {
		t.Run("answer "+tc.name, func(t *testing.T) {
			nc := b.Connect(t, b.Keys.Callout)
			a := broker.NewAuthorizer(broker.AuthorizerConfig{Issuer: tc.issuer}, b.Directory, nil, slog.New(slog.DiscardHandler))
			sub, err := nc.Subscribe(broker.AuthSubject, func(m *nats.Msg) {
				serverKey := m.Header.Get("Nats-Server-Xkey")
				clear, err := b.Keys.XKey.Open(m.Data, serverKey)
				if err != nil {
					return
				}
				req, err := jwt.DecodeAuthorizationRequestClaims(string(clear))
				if err != nil {
					return
				}
				resp, err := a.Decide(req)
				if err != nil {
					return
				}
				sealed, err := tc.seal.Seal([]byte(resp), serverKey)
				if err != nil {
					return
				}
				_ = m.Respond(sealed)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			d, err := b.ConnectParty(broker.Device, "dev-1", dev, nats.NoReconnect(), nats.Timeout(10*time.Second))
			if tc.wantAdmit {
				if err != nil {
					t.Fatalf("device with the callout's own answer: %v", err)
				}
				d.Close()
				return
			}
			if err == nil {
				d.Close()
				t.Fatalf("device admitted by %s", tc.description)
			}
			if !strings.Contains(strings.ToLower(err.Error()), "authoriz") {
				t.Fatalf("connect error = %v, want an authorization violation", err)
			}
		})
	}
}
