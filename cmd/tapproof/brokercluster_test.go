package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
)

// TestBrokerInitCluster: what `tapproof broker init --cluster-listen
// --route` writes, run once per server with one directory as the docs say,
// starts three real nats-server processes that form one cluster.
func TestBrokerInitCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nats-server processes")
	}
	bin, err := localstack.NATSServerBinary(t.Context(), "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "broker")
	var clients, routes []string
	for range 3 {
		clients, routes = append(clients, natstest.FreeAddr(t)), append(routes, natstest.FreeAddr(t))
	}
	var confs []string
	for i := range 3 {
		args := []string{"broker", "init", "--dir", dir, "--server-name", fmt.Sprint("nats-", i+1), "--listen", clients[i],
			"--store-dir", filepath.Join(dir, fmt.Sprint("store-", i+1)), "--cluster-listen", routes[i]}
		for _, r := range routes {
			args = append(args, "--route", r)
		}
		if out, err := runCmd(t, args...); err != nil {
			t.Fatalf("broker init: %v\n%s", err, out)
		}
		// Each server gets its own copy, as it would on its own host.
		b, err := os.ReadFile(filepath.Join(dir, "server", "nats.conf"))
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "server", fmt.Sprintf("nats-%d.conf", i+1))
		if err := os.WriteFile(conf, b, 0o600); err != nil {
			t.Fatal(err)
		}
		confs = append(confs, conf)
	}
	if _, err := runCmd(t, "broker", "init", "--dir", dir, "--cluster-listen", routes[0]); err == nil || !strings.Contains(err.Error(), "--cluster-listen and --route") {
		t.Errorf("broker init --cluster-listen without --route = %v, want refused", err)
	}
	for i, conf := range confs {
		natstest.StartServer(t, bin, fmt.Sprint("nats-", i+1), filepath.Dir(conf), conf, clients[i])
	}
	keys, err := broker.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, func() error {
		if n := natstest.CountServers(t, "tls://"+clients[0], keys.System, filepath.Join(dir, broker.CAFile)); n != 3 {
			return fmt.Errorf("servers answering = %d, want 3", n)
		}
		return nil
	})
}
