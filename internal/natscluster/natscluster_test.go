package natscluster_test

import (
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
)

// TestIsolate: in a linked cluster every route runs through the links, so
// isolating a node leaves the other two seeing each other and the node
// seeing itself alone, while it keeps running; rejoined, all three see
// each other again, and a second partition cuts as well as the first (no
// route went around the links meanwhile).
func TestIsolate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nats-server processes")
	}
	bin, err := localstack.NATSServerBinary(t.Context(), "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cl := natstest.LinkedCluster(t, bin, 3)
	seen := func(i int) int {
		return natstest.CountServers(t, "tls://"+cl.Nodes[i].ClientAddr, cl.Keys.System, cl.TLS.CA)
	}
	want := func(what string, counts ...int) {
		t.Helper()
		poll.Until(t, 20*time.Second, func() error {
			for i, n := range counts {
				if got := seen(i); got != n {
					return fmt.Errorf("%s: %s sees %d servers, want %d", what, cl.Nodes[i].Name, got, n)
				}
			}
			return nil
		})
	}
	want("formed", 3, 3, 3)
	for round := range 2 {
		if err := cl.Isolate(2); err != nil {
			t.Fatal(err)
		}
		want(fmt.Sprint("isolated, round ", round+1), 2, 2, 1)
		if err := cl.Rejoin(2); err != nil {
			t.Fatal(err)
		}
		want(fmt.Sprint("rejoined, round ", round+1), 3, 3, 3)
	}
}

// TestNodeOwnProcessGroup: each node runs in a process group of its own,
// so that a terminal's Ctrl-C, which goes to the foreground group, reaches
// the program that started the cluster (make demo-cluster), which stops
// the nodes in order, and not the nodes first.
func TestNodeOwnProcessGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nats-server processes")
	}
	bin, err := localstack.NATSServerBinary(t.Context(), "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cl := natstest.ExternalCluster(t, bin, 3)
	for _, nd := range cl.Nodes {
		pgid, err := syscall.Getpgid(nd.Pid())
		if err != nil {
			t.Fatal(err)
		}
		if pgid != nd.Pid() || pgid == syscall.Getpgrp() {
			t.Errorf("%s (pid %d) is in process group %d, ours is %d; want a group of its own", nd.Name, nd.Pid(), pgid, syscall.Getpgrp())
		}
	}
}
