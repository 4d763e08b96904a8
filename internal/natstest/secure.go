package natstest

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/journal"
)

// Directory is a broker.Directory for tests: parties by key, some revoked.
type Directory struct {
	mu      sync.Mutex
	parties map[string]broker.Party
	revoked map[string]bool
}

// Add admits the holder of pub as p.
func (d *Directory) Add(pub ed25519.PublicKey, p broker.Party) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.parties == nil {
		d.parties, d.revoked = map[string]broker.Party{}, map[string]bool{}
	}
	d.parties[string(pub)] = p
}

// Revoke refuses the holder of pub from now on.
func (d *Directory) Revoke(pub ed25519.PublicKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.revoked[string(pub)] = true
}

// Party implements broker.Directory.
func (d *Directory) Party(pub ed25519.PublicKey) (broker.Party, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.parties[string(pub)]
	switch {
	case !ok:
		return p, broker.ErrUnknownKey
	case d.revoked[string(pub)]:
		return p, broker.ErrRevoked
	}
	return p, nil
}

// Broker is an embedded server configured as tapproof's broker: TLS,
// accounts and the auth callout, answered by an Authorizer over
// Directory.
type Broker struct {
	Server    *server.Server
	Dir       string
	Keys      *broker.Keys
	TLS       broker.TLSFiles
	Directory *Directory
}

// SecureServer starts a broker with a fresh directory, keys and local CA,
// and runs its Authorizer over Directory until cleanup.
func SecureServer(tb testing.TB) *Broker {
	tb.Helper()
	b := StartBroker(tb, tb.TempDir())
	nc := b.Connect(tb, b.Keys.Service)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a := broker.NewAuthorizer(b.Keys.Issuer, b.Directory, nil, slog.New(slog.DiscardHandler))
	go func() { defer close(done); _ = a.Run(ctx, nc) }()
	tb.Cleanup(func() { cancel(); <-done })
	return b
}

// StartBroker starts a broker whose keys and local CA are in dir (created
// if missing), as an external server tapproof serve connects to with
// --nats-url and --broker-dir dir. Nothing answers its auth callout until a
// tapproof serve does.
func StartBroker(tb testing.TB, dir string) *Broker {
	tb.Helper()
	keys, err := broker.LoadOrCreateKeys(dir)
	if err != nil {
		tb.Fatal(err)
	}
	files, err := broker.EnsureLocalCA(dir)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := journal.StartServer(journal.ServerConfig{Dir: dir, Port: -1, Config: broker.ServerConfig{Keys: keys, TLS: files}.Render()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Broker{Server: s, Dir: dir, Keys: keys, TLS: files, Directory: &Directory{}}
}

// URL is the broker's client URL.
func (b *Broker) URL() string { return b.Server.ClientURL() }

// Connect connects as one of the broker's own nkey users (Keys.Service,
// Keys.Operator or Keys.System), closed at cleanup.
func (b *Broker) Connect(tb testing.TB, kp interface {
	PublicKey() (string, error)
	Sign([]byte) ([]byte, error)
}, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	opts = append([]nats.Option{nats.Nkey(pub, kp.Sign), nats.RootCAs(b.TLS.CA)}, opts...)
	nc, err := nats.Connect(b.URL(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream returns a service connection's JetStream context.
func (b *Broker) JetStream(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc := b.Connect(tb, b.Keys.Service)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// ConnectParty connects as the party holding key over TLS, admitted or
// refused by the callout.
func (b *Broker) ConnectParty(kind broker.PartyKind, id string, key ed25519.PrivateKey, opts ...nats.Option) (*nats.Conn, error) {
	return broker.DialParty(b.URL(), b.TLS.CA, kind, id, key, opts...)
}
