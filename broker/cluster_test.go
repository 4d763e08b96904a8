package broker_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
)

// TestClusterRefusesStrangers: the servers of a cluster rendered by
// broker.ServerConfig route to each other, and refuse a server that knows
// the route secret but holds no certificate of the cluster's CA (refused
// by TLS), and one that holds the cluster's route certificate but not the
// secret (refused by the route authorization): the cluster keeps its two
// servers.
func TestClusterRefusesStrangers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nats-server processes")
	}
	bin, err := localstack.NATSServerBinary(t.Context(), "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cl := natstest.ExternalCluster(t, bin, 2)
	servers := func() int { return natstest.CountServers(t, cl.URL(), cl.Keys.System, cl.TLS.CA) }
	poll.Until(t, 15*time.Second, func() error {
		if n := servers(); n != 2 {
			return fmt.Errorf("servers answering = %d, want 2: the cluster's own servers route to each other", n)
		}
		return nil
	})
	strangers := []struct {
		nd   *natstest.Node
		want string // in the cluster's logs
	}{
		{cl.Stranger(t, bin, cl.RouteSecret(t), nil), "TLS route handshake error"},
		{cl.Stranger(t, bin, "", cl.RouteTLS(t)), `authentication error - User "route"`},
	}
	time.Sleep(3 * time.Second) // several route attempts
	if n := servers(); n != 2 {
		t.Errorf("servers answering = %d, want 2: a stranger joined the cluster", n)
	}
	logs := cl.Nodes[0].Log() + cl.Nodes[1].Log()
	for _, s := range strangers {
		if !strings.Contains(logs, s.want) {
			t.Errorf("the cluster's logs do not show %q for the stranger listening on %s:\n%s", s.want, s.nd.RouteAddr, logs)
		}
	}
}
