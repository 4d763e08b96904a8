package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tapproof/tapproof/broker"
)

// Cluster is a NATS cluster of nats-server processes, each configured as
// tapproof's broker is by `tapproof broker init --cluster-…`: the same keys,
// local CA and route secret, its own JetStream store, routes to the others
// on loopback over TLS. Nothing answers its auth callout until a tapproof
// serve does.
type Cluster struct {
	Dir   string
	Keys  *broker.Keys
	TLS   broker.TLSFiles
	Nodes []*Node
}

// Node is one server of a Cluster.
type Node struct {
	Name       string
	ClientAddr string // host:port of its client listener
	RouteAddr  string // host:port of its route listener
	binary     string
	dir, conf  string
	cmd        *exec.Cmd
	done       chan struct{}
}

// ExternalCluster starts n nats-server processes of binary as one cluster
// and waits until each accepts connections; they are stopped at cleanup.
func ExternalCluster(tb testing.TB, binary string, n int) *Cluster {
	tb.Helper()
	dir := tb.TempDir()
	keys, files := brokerFiles(tb, dir)
	secret, err := broker.LoadOrCreateRouteSecret(dir)
	if err != nil {
		tb.Fatal(err)
	}
	routeTLS, err := broker.EnsureRouteCert(dir)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{Dir: dir, Keys: keys, TLS: files}
	var routes []string
	for i := range n {
		nd := &Node{Name: fmt.Sprintf("nats-%d", i+1), ClientAddr: FreeAddr(tb), RouteAddr: FreeAddr(tb), binary: binary,
			dir: filepath.Join(dir, fmt.Sprintf("nats-%d", i+1))}
		routes = append(routes, nd.RouteAddr)
		c.Nodes = append(c.Nodes, nd)
	}
	for _, nd := range c.Nodes {
		if err := os.MkdirAll(nd.dir, 0o700); err != nil {
			tb.Fatal(err)
		}
		text := broker.ServerConfig{Keys: keys, TLS: files, Listen: nd.ClientAddr, StoreDir: filepath.Join(nd.dir, "jetstream"), ServerName: nd.Name,
			Cluster: &broker.Cluster{Name: "tapproof", Listen: nd.RouteAddr, Routes: routes, Secret: secret, TLS: routeTLS}}.Render()
		nd.conf = filepath.Join(nd.dir, "nats.conf")
		if err := os.WriteFile(nd.conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		nd.Start(tb)
	}
	tb.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Stop()
		}
	})
	return c
}

// Stranger starts a nats-server that tries to join c's cluster by routing
// to its nodes, with a broker directory of its own: its own keys, CA and,
// unless given, route certificate and route secret. The cluster must
// refuse it. It is stopped at cleanup.
func (c *Cluster) Stranger(tb testing.TB, binary, secret string, routeTLS *broker.TLSFiles) *Node {
	tb.Helper()
	dir := tb.TempDir()
	keys, files := brokerFiles(tb, dir)
	if secret == "" {
		var err error
		if secret, err = broker.LoadOrCreateRouteSecret(dir); err != nil {
			tb.Fatal(err)
		}
	}
	if routeTLS == nil {
		own, err := broker.EnsureRouteCert(dir)
		if err != nil {
			tb.Fatal(err)
		}
		routeTLS = &own
	}
	nd := &Node{Name: "stranger", ClientAddr: FreeAddr(tb), RouteAddr: FreeAddr(tb), binary: binary, dir: dir}
	var routes []string
	for _, m := range c.Nodes {
		routes = append(routes, m.RouteAddr)
	}
	text := broker.ServerConfig{Keys: keys, TLS: files, Listen: nd.ClientAddr, StoreDir: filepath.Join(dir, "jetstream"), ServerName: nd.Name,
		Cluster: &broker.Cluster{Name: "tapproof", Listen: nd.RouteAddr, Routes: routes, Secret: secret, TLS: *routeTLS}}.Render()
	nd.conf = filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(nd.conf, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	nd.Start(tb)
	tb.Cleanup(nd.Stop)
	return nd
}

// RouteTLS is the route certificate the cluster's nodes present.
func (c *Cluster) RouteTLS(tb testing.TB) *broker.TLSFiles {
	tb.Helper()
	f, err := broker.EnsureRouteCert(c.Dir)
	if err != nil {
		tb.Fatal(err)
	}
	return &f
}

// RouteSecret is the cluster's route secret.
func (c *Cluster) RouteSecret(tb testing.TB) string {
	tb.Helper()
	s, err := broker.LoadOrCreateRouteSecret(c.Dir)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// URL is every node's client URL, comma-separated, as nats.Connect and
// tapproof serve --nats-url take them.
func (c *Cluster) URL() string {
	var urls []string
	for _, nd := range c.Nodes {
		urls = append(urls, "tls://"+nd.ClientAddr)
	}
	return strings.Join(urls, ",")
}

// StartServer starts binary with the configuration file conf as a server
// named name whose client listener is clientAddr, logging into dir, and
// waits until it accepts connections; it is stopped at cleanup.
func StartServer(tb testing.TB, binary, name, dir, conf, clientAddr string) *Node {
	tb.Helper()
	nd := &Node{Name: name, ClientAddr: clientAddr, binary: binary, dir: dir, conf: conf}
	nd.Start(tb)
	tb.Cleanup(nd.Stop)
	return nd
}

// Start starts the node, on its old store if it ran before, and waits
// until it accepts connections.
func (nd *Node) Start(tb testing.TB) {
	tb.Helper()
	out, err := os.OpenFile(filepath.Join(nd.dir, "nats-server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	nd.cmd = exec.Command(nd.binary, "-c", nd.conf)
	nd.cmd.Stdout, nd.cmd.Stderr = out, out
	if err := nd.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	nd.done = make(chan struct{})
	go func() { _ = nd.cmd.Wait(); out.Close(); close(nd.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", nd.ClientAddr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not listen on %s: %v\n%s", nd.Name, nd.ClientAddr, err, nd.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill kills the node with SIGKILL and waits for it to exit.
func (nd *Node) Kill() {
	if nd.cmd == nil || nd.cmd.Process == nil {
		return
	}
	_ = nd.cmd.Process.Kill()
	<-nd.done
}

// Stop stops the node as an operator would, SIGTERM then, after 10 s,
// SIGKILL.
func (nd *Node) Stop() {
	if nd.cmd == nil || nd.cmd.Process == nil {
		return
	}
	_ = nd.cmd.Process.Signal(os.Interrupt)
	select {
	case <-nd.done:
	case <-time.After(10 * time.Second):
		nd.Kill()
	}
}

// Log is what the node wrote so far.
func (nd *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(nd.dir, "nats-server.log"))
	return string(b)
}

// CountServers counts the servers that answer a ping on the system
// account, connecting to url as the system user sys, over TLS verified
// with ca.
func CountServers(tb testing.TB, url string, sys nkeys.KeyPair, ca string) int {
	tb.Helper()
	pub, err := sys.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.Nkey(pub, sys.Sign), nats.RootCAs(ca))
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		tb.Fatal(err)
	}
	if err := nc.PublishRequest("$SYS.REQ.SERVER.PING", inbox, nil); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		if _, err := sub.NextMsg(500 * time.Millisecond); err != nil {
			return n
		}
	}
}

// FreeAddr returns a loopback address no one listens on now. (Another
// process could take it before the server binds it; on a test machine that
// is rare, and the server then fails loudly.)
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
