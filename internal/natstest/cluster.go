package natstest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/natscluster"
)

// Cluster is a NATS cluster of nats-server processes (natscluster).
type Cluster struct{ *natscluster.Cluster }

// Node is one server of a Cluster.
type Node = natscluster.Node

// ExternalCluster starts n nats-server processes of binary as one cluster
// and waits until each accepts connections; they are stopped at cleanup.
func ExternalCluster(tb testing.TB, binary string, n int) *Cluster {
	tb.Helper()
	c, err := natscluster.Start(binary, tb.TempDir(), n)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return &Cluster{c}
}

// StartServer starts binary with the configuration file conf as a server
// named name whose client listener is clientAddr, logging into dir, and
// waits until it accepts connections; it is stopped at cleanup.
func StartServer(tb testing.TB, binary, name, dir, conf, clientAddr string) *Node {
	tb.Helper()
	nd, err := natscluster.StartConfigured(binary, name, dir, conf, clientAddr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nd.Stop)
	return nd
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
	var routes []string
	for _, m := range c.Nodes {
		routes = append(routes, m.RouteAddr)
	}
	client, route := FreeAddr(tb), FreeAddr(tb)
	nd, err := natscluster.StartServer(binary, "stranger", dir, broker.ServerConfig{Keys: keys, TLS: files, Listen: client,
		StoreDir: filepath.Join(dir, "jetstream"), ServerName: "stranger",
		Cluster: &broker.Cluster{Name: "tapproof", Listen: route, Routes: routes, Secret: secret, TLS: *routeTLS}})
	if err != nil {
		tb.Fatal(err)
	}
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

// FreeAddr returns a loopback address no one listens on now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	a, err := natscluster.FreeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// LinkedCluster is ExternalCluster with every route carried by a link the
// test can cut (natscluster.StartLinked): Isolate partitions a node off.
func LinkedCluster(tb testing.TB, binary string, n int) *Cluster {
	tb.Helper()
	c, err := natscluster.StartLinked(binary, tb.TempDir(), n)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return &Cluster{c}
}
