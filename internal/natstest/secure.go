package natstest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/localstack"
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
	// Server is the embedded server; nil for an external one.
	Server    *server.Server
	url       string
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
	b.authorize(tb)
	return b
}

// brokerFiles returns the broker keys and local CA kept in dir, creating
// what is missing.
func brokerFiles(tb testing.TB, dir string) (*broker.Keys, broker.TLSFiles) {
	tb.Helper()
	keys, err := broker.LoadOrCreateKeys(dir)
	if err != nil {
		tb.Fatal(err)
	}
	files, err := broker.EnsureLocalCA(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return keys, files
}

// StartBroker starts a broker whose keys and local CA are in dir (created
// if missing), as an external server tapproof serve connects to with
// --nats-url and --broker-dir dir. Nothing answers its auth callout until a
// tapproof serve does.
func StartBroker(tb testing.TB, dir string) *Broker {
	tb.Helper()
	return StartLimitedBroker(tb, dir, broker.Limits{})
}

// StartLimitedBroker is StartBroker with the accounts' connections bounded
// by lim.
func StartLimitedBroker(tb testing.TB, dir string, lim broker.Limits) *Broker {
	tb.Helper()
	keys, files := brokerFiles(tb, dir)
	s, err := journal.StartServer(journal.ServerConfig{Dir: dir, Port: -1, Config: broker.ServerConfig{Keys: keys, TLS: files, Limits: lim}.Render()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Broker{Server: s, url: s.ClientURL(), Dir: dir, Keys: keys, TLS: files, Directory: &Directory{}}
}

// URL is the broker's client URL.
func (b *Broker) URL() string { return b.url }

// Connect connects as one of the broker's own nkey users (Keys.Service,
// Keys.Callout, Keys.Operator or Keys.System), closed at cleanup.
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

// ExternalBroker starts binary, a nats-server, as tapproof's broker, with
// the configuration `tapproof broker init` writes: keys and a local CA in a
// fresh directory, a free loopback port, JetStream in the directory. It is
// stopped at cleanup. Nothing answers its auth callout until a tapproof
// serve or SecureExternal's Authorizer does.
func ExternalBroker(tb testing.TB, binary string) *Broker {
	tb.Helper()
	dir := tb.TempDir()
	keys, files := brokerFiles(tb, dir)
	// The server picks its own port and writes it to a ports file: a port
	// picked here and released could be taken before the server binds it.
	conf := filepath.Join(dir, "nats.conf")
	text := broker.ServerConfig{Keys: keys, TLS: files, Listen: "127.0.0.1:-1", StoreDir: filepath.Join(dir, "jetstream"), ServerName: "external"}.Render()
	text += fmt.Sprintf("ports_file_dir: %q\n", dir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(binary, "-c", conf)
	out, err := os.Create(filepath.Join(dir, "nats-server.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		out.Close()
	})
	var addr string
	deadline := time.Now().Add(15 * time.Second)
	for addr == "" {
		if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s_%d.ports", filepath.Base(binary), cmd.Process.Pid))); err == nil {
			var ports struct {
				Nats []string `json:"nats"`
			}
			if json.Unmarshal(b, &ports) == nil && len(ports.Nats) > 0 {
				addr = strings.TrimPrefix(strings.TrimPrefix(ports.Nats[0], "tls://"), "nats://")
			}
		}
		if addr == "" && time.Now().After(deadline) {
			b, _ := os.ReadFile(out.Name())
			tb.Fatalf("external nats-server wrote no ports file:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(out.Name())
			tb.Fatalf("external nats-server did not listen on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Broker{url: "nats://" + addr, Dir: dir, Keys: keys, TLS: files, Directory: &Directory{}}
}

// SecureExternal starts an external broker (see ExternalBroker) and runs
// an Authorizer over Directory until cleanup.
func SecureExternal(tb testing.TB, binary string) *Broker {
	tb.Helper()
	b := ExternalBroker(tb, binary)
	b.authorize(tb)
	return b
}

func (b *Broker) authorize(tb testing.TB) {
	tb.Helper()
	b.Authorize(tb, broker.AuthorizerConfig{}, b.Directory, nil)
}

// Authorize runs an Authorizer configured by cfg over dir, answering as
// the callout's user, until cleanup. cfg's zero Issuer and XKey are the
// broker's own; reg may be nil.
func (b *Broker) Authorize(tb testing.TB, cfg broker.AuthorizerConfig, dir broker.Directory, reg prometheus.Registerer) {
	tb.Helper()
	if cfg.Issuer == nil {
		cfg.Issuer = b.Keys.Issuer
	}
	if cfg.XKey == nil {
		cfg.XKey = b.Keys.XKey
	}
	nc := b.Connect(tb, b.Keys.Callout)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a := broker.NewAuthorizer(cfg, dir, reg, slog.New(slog.DiscardHandler))
	go func() { defer close(done); _ = a.Run(ctx, nc) }()
	tb.Cleanup(func() { cancel(); <-done })
}

// EachBroker runs test against tapproof's broker embedded, as tapproof
// serve runs it, and as an external nats-server of the version go.mod
// requires, started with the configuration `tapproof broker init` writes:
// what holds on one must hold on the other. start returns a broker whose
// Authorizer answers over its Directory. The external run is skipped in
// -short mode.
func EachBroker(t *testing.T, test func(t *testing.T, start func(testing.TB) *Broker)) {
	t.Run("embedded", func(t *testing.T) { test(t, SecureServer) })
	t.Run("external", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds and starts an external nats-server")
		}
		bin, err := localstack.NATSServerBinary(t.Context(), "", io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		test(t, func(tb testing.TB) *Broker { return SecureExternal(tb, bin) })
	})
}
