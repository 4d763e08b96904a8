package broker_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
)

func isAccountFull(err error) bool {
	return err != nil && (errors.Is(err, nats.ErrMaxAccountConnectionsExceeded) ||
		strings.Contains(strings.ToLower(err.Error()), "maximum account active connections exceeded"))
}

// TestAccountConnectionLimits: each account holds at most its limit of
// connections; one more is refused, and a connection closed makes room.
func TestAccountConnectionLimits(t *testing.T) {
	b := natstest.StartLimitedBroker(t, t.TempDir(), broker.Limits{DeviceConnections: 2, LabConnections: 1, ServiceConnections: 3})
	b.Authorize(t, broker.AuthorizerConfig{}, b.Directory, nil) // the callout's user: one TAPPROOF connection
	dev1, dev2, lab1, lab2 := newKey(t), newKey(t), newKey(t), newKey(t)
	b.Directory.Add(dev1.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Device, ID: "dev-1", Utility: "u1", Site: "s1"})
	b.Directory.Add(dev2.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Device, ID: "dev-2", Utility: "u1", Site: "s2"})
	b.Directory.Add(lab1.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Lab, ID: "lab-1"})
	b.Directory.Add(lab2.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Lab, ID: "lab-2"})
	connect := func(kind broker.PartyKind, id string, key ed25519.PrivateKey) (*nats.Conn, error) {
		nc, err := b.ConnectParty(kind, id, key, nats.NoReconnect())
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return nc, err
	}

	t.Run("devices", func(t *testing.T) {
		first, err := connect(broker.Device, "dev-1", dev1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := connect(broker.Device, "dev-2", dev2); err != nil {
			t.Fatal(err)
		}
		// A third connection, of an enrolled device, is one too many.
		if _, err := connect(broker.Device, "dev-1", dev1); !isAccountFull(err) {
			t.Fatalf("third device connection: %v, want the account's limit", err)
		}
		first.Close()
		poll.Until(t, 5*time.Second, func() error {
			_, err := connect(broker.Device, "dev-1", dev1)
			return err
		})
	})
	t.Run("labs", func(t *testing.T) {
		if _, err := connect(broker.Lab, "lab-1", lab1); err != nil {
			t.Fatal(err)
		}
		if _, err := connect(broker.Lab, "lab-2", lab2); !isAccountFull(err) {
			t.Fatalf("second lab connection: %v, want the account's limit", err)
		}
	})
	t.Run("service", func(t *testing.T) {
		b.Connect(t, b.Keys.Service)
		b.Connect(t, b.Keys.Service)
		pub, err := b.Keys.Operator.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(b.URL(), nats.Nkey(pub, b.Keys.Operator.Sign), nats.RootCAs(b.TLS.CA), nats.NoReconnect())
		if err == nil {
			nc.Close()
		}
		if !isAccountFull(err) {
			t.Fatalf("fourth TAPPROOF connection: %v, want the account's limit", err)
		}
	})
}

// TestPartyConnectionBounds: a device's connection holds at most 8
// subscriptions and sends messages of at most 64 KiB; the server closes
// one that tries more.
func TestPartyConnectionBounds(t *testing.T) { brokers(t, testPartyConnectionBounds) }

func testPartyConnectionBounds(t *testing.T, start func(testing.TB) *natstest.Broker) {
	f := newFixture(t, start)
	t.Run("subscriptions", func(t *testing.T) {
		e := &errs{}
		nc := f.device(t, "dev-1", f.dev1, e)
		for i := range 9 {
			if _, err := nc.SubscribeSync(fmt.Sprintf("%s.%d", broker.InboxPrefix(broker.Device, "dev-1"), i)); err != nil {
				t.Fatal(err)
			}
		}
		_ = nc.Flush()
		e.wait(t, "maximum subscriptions exceeded")
	})
	t.Run("payload", func(t *testing.T) {
		// MaxPartyPayload itself arrives.
		nc := f.device(t, "dev-1", f.dev1, nil)
		if _, err := nc.Request("tapproof.readings.u1.s1.dev-1", make([]byte, broker.MaxPartyPayload), 5*time.Second); err != nil {
			t.Fatalf("a message of MaxPartyPayload bytes: %v", err)
		}
		if m := <-f.received; len(m.Data) != broker.MaxPartyPayload {
			t.Fatalf("intake received %d bytes, want %d", len(m.Data), broker.MaxPartyPayload)
		}
		// One byte more reaches nobody. The server announces the limit to
		// the admitted connection, so the client refuses the message
		// itself; a client that sends it anyway is closed (the server
		// answers with a maximum payload violation, which the client reads
		// unless its write already failed).
		closed := make(chan error, 1)
		nc = f.device(t, "dev-1", f.dev1, nil, nats.NoReconnect(), nats.ClosedHandler(func(c *nats.Conn) { closed <- c.LastError() }))
		pubErr := nc.Publish("tapproof.readings.u1.s1.dev-1", make([]byte, broker.MaxPartyPayload+1))
		if errors.Is(pubErr, nats.ErrMaxPayload) {
			if got := nc.MaxPayload(); got != broker.MaxPartyPayload {
				t.Fatalf("client refused the message with the server's max payload at %d, want %d", got, broker.MaxPartyPayload)
			}
			return
		}
		if pubErr == nil {
			pubErr = nc.Flush()
		}
		select {
		case err := <-closed:
			if pubErr == nil && (err == nil || !strings.Contains(strings.ToLower(err.Error()), "maximum payload")) {
				t.Fatalf("closed with %v, want a maximum payload violation", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("a device sent more than MaxPartyPayload and stayed connected (publish: %v, status %v)", pubErr, nc.Status())
		}
		select {
		case m := <-f.received:
			t.Fatalf("intake received %d bytes over the limit", len(m.Data))
		case <-time.After(100 * time.Millisecond):
		}
	})
}
