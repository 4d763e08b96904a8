// Package natscluster starts real nats-server processes as one cluster,
// configured as tapproof's broker is by `tapproof broker init
// --cluster-listen --route`: the same keys, local CA, route certificate and
// route secret on every server, each its own JetStream store, routes on
// loopback over mutual TLS. The test harness (internal/natstest), the
// benchmark and the local demo use it; nothing answers the servers' auth
// callout until a tapproof serve does.
//
// natscluster imports only broker.
package natscluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tapproof/tapproof/broker"
)

// Cluster is a running cluster.
type Cluster struct {
	Dir   string // the broker directory every server's files come from
	Keys  *broker.Keys
	TLS   broker.TLSFiles
	Nodes []*Node
	// Links, set by StartLinked, carry the routes between each pair of
	// nodes.
	Links []*Link
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

// Start starts n servers of binary as one cluster, their files in dir,
// and waits until each accepts connections.
func Start(binary, dir string, n int) (*Cluster, error) { return start(binary, dir, n, false) }

// StartLinked is Start with the routes between nodes carried by links, so
// that Isolate can cut a node off from the others. Each node routes to
// each other through a link of its own (JetStream needs every node to
// have routes), and advertises, for the others to gossip, an address where
// nothing listens, so that no route bypasses the links.
func StartLinked(binary, dir string, n int) (*Cluster, error) { return start(binary, dir, n, true) }

func start(binary, dir string, n int, linked bool) (*Cluster, error) {
	keys, err := broker.LoadOrCreateKeys(dir)
	if err != nil {
		return nil, err
	}
	files, err := broker.EnsureLocalCA(dir)
	if err != nil {
		return nil, err
	}
	secret, err := broker.LoadOrCreateRouteSecret(dir)
	if err != nil {
		return nil, err
	}
	routeTLS, err := broker.EnsureRouteCert(dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Keys: keys, TLS: files}
	var routes []string
	for i := range n {
		client, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		route, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("nats-%d", i+1)
		c.Nodes = append(c.Nodes, &Node{Name: name, ClientAddr: client, RouteAddr: route, binary: binary, dir: filepath.Join(dir, name)})
		routes = append(routes, route)
	}
	for i, nd := range c.Nodes {
		cl := &broker.Cluster{Name: "tapproof", Listen: nd.RouteAddr, Routes: routes, Secret: secret, TLS: routeTLS}
		if linked {
			if cl.Advertise, err = FreeAddr(); err != nil {
				c.Stop()
				return nil, err
			}
			cl.Routes = nil
			for j := range n {
				if j == i {
					continue
				}
				l, err := newLink(i, j, c.Nodes[j].RouteAddr)
				if err != nil {
					c.Stop()
					return nil, err
				}
				c.Links = append(c.Links, l)
				cl.Routes = append(cl.Routes, l.Addr())
			}
		}
		sc := broker.ServerConfig{Keys: keys, TLS: files, Listen: nd.ClientAddr, StoreDir: filepath.Join(nd.dir, "jetstream"), ServerName: nd.Name,
			Cluster: cl}
		if err := nd.configure(sc); err != nil {
			c.Stop()
			return nil, err
		}
		if err := nd.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// StartServer starts binary with the configuration sc as one server named
// name, its files in dir, and waits until it accepts connections.
func StartServer(binary, name, dir string, sc broker.ServerConfig) (*Node, error) {
	nd := &Node{Name: name, ClientAddr: sc.Listen, binary: binary, dir: dir}
	if sc.Cluster != nil {
		nd.RouteAddr = sc.Cluster.Listen
	}
	if err := nd.configure(sc); err != nil {
		return nil, err
	}
	return nd, nd.Start()
}

// StartConfigured starts binary with the configuration file conf as a
// server named name whose client listener is clientAddr, logging into dir.
func StartConfigured(binary, name, dir, conf, clientAddr string) (*Node, error) {
	nd := &Node{Name: name, ClientAddr: clientAddr, binary: binary, dir: dir, conf: conf}
	return nd, nd.Start()
}

func (nd *Node) configure(sc broker.ServerConfig) error {
	if err := os.MkdirAll(nd.dir, 0o700); err != nil {
		return err
	}
	nd.conf = filepath.Join(nd.dir, "nats.conf")
	return os.WriteFile(nd.conf, []byte(sc.Render()), 0o600)
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

// Stop stops every node and link.
func (c *Cluster) Stop() {
	for _, nd := range c.Nodes {
		nd.Stop()
	}
	for _, l := range c.Links {
		l.close()
	}
}

// Isolate cuts node i off from every other node (a partition: it keeps
// running and its clients stay connected to it) until Rejoin. The cluster
// must have been started by StartLinked.
func (c *Cluster) Isolate(i int) error { return c.links(i, (*Link).Cut) }

// Rejoin undoes Isolate.
func (c *Cluster) Rejoin(i int) error { return c.links(i, (*Link).Restore) }

func (c *Cluster) links(i int, f func(*Link)) error {
	if c.Links == nil {
		return fmt.Errorf("cluster: node %d cannot be isolated: not started by StartLinked", i)
	}
	for _, l := range c.Links {
		if l.A == i || l.B == i {
			f(l)
		}
	}
	return nil
}

// Start starts the node, on its old store if it ran before, and waits
// until it accepts connections.
func (nd *Node) Start() error {
	out, err := os.OpenFile(filepath.Join(nd.dir, "nats-server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	nd.cmd = exec.Command(nd.binary, "-c", nd.conf)
	nd.cmd.Stdout, nd.cmd.Stderr = out, out
	// A process group of its own: a terminal's Ctrl-C reaches the program
	// that started the node, which stops it in order, not the node first.
	// It dies with that program all the same.
	nd.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := nd.cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", nd.Name, err)
	}
	nd.done = make(chan struct{})
	go func() { _ = nd.cmd.Wait(); out.Close(); close(nd.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", nd.ClientAddr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			nd.Kill()
			return fmt.Errorf("%s did not listen on %s: %w\n%s", nd.Name, nd.ClientAddr, err, nd.Log())
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

// Pid is the process id of the node's last start, 0 before it first started.
func (nd *Node) Pid() int {
	if nd.cmd == nil || nd.cmd.Process == nil {
		return 0
	}
	return nd.cmd.Process.Pid
}

// Log is what the node wrote so far.
func (nd *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(nd.dir, "nats-server.log"))
	return string(b)
}

// FreeAddr returns a loopback address no one listens on now. (Another
// process could take it before a server binds it; on a test machine that
// is rare, and the server then fails loudly.)
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
