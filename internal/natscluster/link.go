package natscluster

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Link is a TCP relay on loopback that carries the routes one member of a
// Cluster started by StartLinked dials to another, so a test can cut them
// apart (a network partition) and join them again.
type Link struct {
	A, B int // A dials B through it; indices in Cluster.Nodes
	ln   net.Listener
	to   string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newLink(a, b int, to string) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{A: a, B: b, ln: ln, to: to, conns: map[net.Conn]struct{}{}}
	l.wg.Go(l.serve)
	return l, nil
}

// Addr is the address the dialing member routes to.
func (l *Link) Addr() string { return l.ln.Addr().String() }

func (l *Link) serve() {
	for {
		c, err := l.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		l.wg.Go(func() { l.relay(c) })
	}
}

func (l *Link) relay(c net.Conn) {
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	defer l.forget(c)
	d, err := net.Dial("tcp", l.to)
	if err != nil {
		return
	}
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		d.Close()
		return
	}
	l.conns[d] = struct{}{}
	l.mu.Unlock()
	defer l.forget(d)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(d, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, d); done <- struct{}{} }()
	<-done
}

func (l *Link) forget(c net.Conn) {
	c.Close()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Cut drops every connection the link carries and refuses new ones until
// Restore.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Restore carries connections again.
func (l *Link) Restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = false
}

func (l *Link) close() {
	l.Cut()
	l.ln.Close()
	l.wg.Wait()
}
