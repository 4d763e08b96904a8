package broker_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/natstest"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// errs collects a connection's asynchronous errors: permission violations
// arrive that way.
type errs struct {
	mu   sync.Mutex
	list []error
}

func (e *errs) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, err)
}

func (e *errs) wait(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		for _, err := range e.list {
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(substr)) {
				e.mu.Unlock()
				return
			}
		}
		e.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no asynchronous error containing %q; got %v", substr, e.list)
}

// fixture is a broker with two enrolled devices and a lab, and a service
// connection that records what reaches the intake.
type fixture struct {
	b        *natstest.Broker
	dev1     ed25519.PrivateKey
	dev2     ed25519.PrivateKey
	lab      ed25519.PrivateKey
	received chan *nats.Msg
	service  *nats.Conn
}

// brokers runs test on the embedded broker and on an external nats-server.
func brokers(t *testing.T, test func(t *testing.T, start func(testing.TB) *natstest.Broker)) {
	natstest.EachBroker(t, test)
}

func newFixture(t *testing.T, start func(testing.TB) *natstest.Broker) *fixture {
	t.Helper()
	b := start(t)
	f := &fixture{b: b, dev1: newKey(t), dev2: newKey(t), lab: newKey(t), received: make(chan *nats.Msg, 16)}
	b.Directory.Add(f.dev1.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Device, ID: "dev-1", Utility: "u1", Site: "s1"})
	b.Directory.Add(f.dev2.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Device, ID: "dev-2", Utility: "u1", Site: "s2"})
	b.Directory.Add(f.lab.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Lab, ID: "lab-1"})
	f.service = b.Connect(t, b.Keys.Service)
	if _, err := f.service.Subscribe(broker.IntakePrefix+".>", func(m *nats.Msg) {
		f.received <- m
		_ = m.Respond([]byte(`{"stream":"TAPPROOF_READINGS","seq":1}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.service.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) device(t *testing.T, id string, key ed25519.PrivateKey, e *errs, opts ...nats.Option) *nats.Conn {
	t.Helper()
	if e != nil {
		opts = append(opts, nats.ErrorHandler(e.handler))
	}
	nc, err := f.b.ConnectParty(broker.Device, id, key, opts...)
	if err != nil {
		t.Fatalf("device %s connect: %v", id, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestRefusedConnections(t *testing.T) { brokers(t, testRefusedConnections) }

func testRefusedConnections(t *testing.T, start func(testing.TB) *natstest.Broker) {
	f := newFixture(t, start)
	stranger := newKey(t)
	strangerPub, err := broker.UserKey(stranger.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"user and password", []nats.Option{nats.UserInfo("tapproof", "tapproof")}},
		{"token", []nats.Option{nats.Token("secret")}},
		{"unknown key", []nats.Option{nats.Nkey(strangerPub, func(n []byte) ([]byte, error) { return ed25519.Sign(stranger, n), nil })}},
		{"enrolled key, signed by another", []nats.Option{nats.Nkey(mustUserKey(t, f.dev1), func(n []byte) ([]byte, error) { return ed25519.Sign(stranger, n), nil })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]nats.Option{nats.RootCAs(f.b.TLS.CA), nats.NoReconnect()}, tc.opts...)
			nc, err := nats.Connect(f.b.URL(), opts...)
			if err == nil {
				nc.Close()
				t.Fatal("connected; want refused")
			}
			if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authoriz") {
				t.Fatalf("connect error = %v, want an authorization violation", err)
			}
		})
	}
	t.Run("broker certificate not trusted", func(t *testing.T) {
		// The listener speaks TLS only, and a client that does not trust
		// the broker's CA does not connect.
		nc, err := nats.Connect(f.b.URL(), nats.NoReconnect(),
			nats.Nkey(mustUserKey(t, f.dev1), func(n []byte) ([]byte, error) { return ed25519.Sign(f.dev1, n), nil }))
		if err == nil {
			nc.Close()
			t.Fatal("connected without trusting the broker's CA")
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("connect error = %v, want a certificate error", err)
		}
	})
}

func mustUserKey(t *testing.T, k ed25519.PrivateKey) string {
	t.Helper()
	s, err := broker.UserKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDevicePermissions(t *testing.T) { brokers(t, testDevicePermissions) }

func testDevicePermissions(t *testing.T, start func(testing.TB) *natstest.Broker) {
	f := newFixture(t, start)
	e := &errs{}
	nc := f.device(t, "dev-1", f.dev1, e)

	// Its own subject reaches tapproof's intake, under the intake prefix,
	// and the acknowledgement comes back to its own inbox.
	reply, err := nc.Request("tapproof.readings.u1.s1.dev-1", []byte("reading"), 5*time.Second)
	if err != nil {
		t.Fatalf("own subject: %v", err)
	}
	if !strings.Contains(string(reply.Data), `"seq":1`) {
		t.Fatalf("own subject: reply %q", reply.Data)
	}
	select {
	case m := <-f.received:
		if m.Subject != "tapproof.intake.readings.u1.s1.dev-1" {
			t.Fatalf("intake got subject %q", m.Subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("intake got nothing")
	}

	for _, subj := range []string{
		"tapproof.readings.u1.s2.dev-2",         // another device
		"tapproof.readings.u1.s2.dev-1",         // its id at another site
		"tapproof.readings.u2.s1.dev-1",         // another utility
		"tapproof.log.u1.r.dev-1",               // the journal
		"tapproof.alerts.u1.s1",                 // the alert stream
		"tapproof.labsamples.u1.lab-1",          // a lab's subject
		"tapproof.intake.readings.u1.s1.dev-1",  // the intake itself
		"$JS.API.INFO",                          // the JetStream API
		"$JS.API.STREAM.DELETE.TAPPROOF_LOG_u1", // deleting the journal
		"$KV.tapproof_devices.dev-1",            // a KV bucket
		"$SYS.REQ.USER.AUTH",                    // the callout
	} {
		t.Run("publish "+subj, func(t *testing.T) {
			e := &errs{}
			nc := f.device(t, "dev-1", f.dev1, e)
			if err := nc.Publish(subj, []byte("x")); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			e.wait(t, "permissions violation")
		})
	}
	for _, subj := range []string{">", "tapproof.>", "_INBOX.>", "_INBOX.device.dev-2.>", "$KV.>", "tapproof.alerts.>"} {
		t.Run("subscribe "+subj, func(t *testing.T) {
			e := &errs{}
			nc := f.device(t, "dev-1", f.dev1, e)
			if _, err := nc.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			e.wait(t, "permissions violation")
		})
	}
	select {
	case m := <-f.received:
		t.Fatalf("intake received %q from a forbidden publish", m.Subject)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestLabPermissions(t *testing.T) { brokers(t, testLabPermissions) }

func testLabPermissions(t *testing.T, start func(testing.TB) *natstest.Broker) {
	f := newFixture(t, start)
	e := &errs{}
	nc, err := f.b.ConnectParty(broker.Lab, "lab-1", f.lab, nats.ErrorHandler(e.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("tapproof.labsamples.u1.lab-1", []byte("sample"), 5*time.Second); err != nil {
		t.Fatalf("own subject: %v", err)
	}
	if m := <-f.received; m.Subject != "tapproof.intake.labsamples.u1.lab-1" {
		t.Fatalf("intake got %q", m.Subject)
	}
	if err := nc.Publish("tapproof.labsamples.u1.lab-2", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	e.wait(t, "permissions violation")
}

func TestRevokeDisconnects(t *testing.T) { brokers(t, testRevokeDisconnects) }

func testRevokeDisconnects(t *testing.T, start func(testing.TB) *natstest.Broker) {
	f := newFixture(t, start)
	closed := make(chan struct{})
	nc := f.device(t, "dev-1", f.dev1, nil, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	other := f.device(t, "dev-2", f.dev2, nil)

	f.b.Directory.Revoke(f.dev1.Public().(ed25519.PublicKey))
	sys := f.b.Connect(t, f.b.Keys.System)
	n, err := broker.Disconnect(context.Background(), sys, broker.Party{Kind: broker.Device, ID: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("Disconnect closed %d connections, want 1", n)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("revoked device still connected")
	}
	if nc.IsConnected() {
		t.Fatal("revoked device still connected")
	}
	if _, err := f.b.ConnectParty(broker.Device, "dev-1", f.dev1, nats.NoReconnect()); err == nil {
		t.Fatal("revoked device reconnected")
	}
	// The other device is untouched.
	if !other.IsConnected() {
		t.Fatal("another device was disconnected")
	}
	if _, err := other.Request("tapproof.readings.u1.s2.dev-2", []byte("r"), 5*time.Second); err != nil {
		t.Fatalf("other device: %v", err)
	}
}

func TestOperatorAndServiceUsers(t *testing.T) { brokers(t, testOperatorAndServiceUsers) }

func testOperatorAndServiceUsers(t *testing.T, start func(testing.TB) *natstest.Broker) {
	f := newFixture(t, start)
	// The operator's CLI user reaches JetStream in the service account.
	op := f.b.Connect(t, f.b.Keys.Operator)
	if _, err := op.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatalf("operator: $JS.API.INFO: %v", err)
	}
}
