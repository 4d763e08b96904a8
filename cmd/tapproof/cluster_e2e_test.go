package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/platform"
	"github.com/tapproof/tapproof/simulate"
)

// TestCluster: tapproof serve on a real cluster of three nats-server
// processes, with --replicas 3. Every stream and bucket it creates has
// three replicas, spread over the servers; with the server that leads the
// utility's journal killed (SIGKILL) while sensors publish, readings are
// still accepted, each exactly once;
// the server rejoins and catches up. Asking for more replicas than the
// cluster has servers stops serve at start, saying so.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts three nats-server processes")
	}
	st := localstack.ForTest(t)
	ctx := t.Context()
	bin, err := localstack.NATSServerBinary(ctx, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cl := natstest.ExternalCluster(t, bin, 3)

	cfg := testServeConfig(t, st, t.TempDir())
	cfg.NATSURL, cfg.BrokerDir, cfg.Replicas = cl.URL(), cl.Dir, 5
	if err := platform.Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--replicas 5, but the NATS cluster has 3 server(s)") {
		t.Fatalf("serve --replicas 5 on 3 servers = %v, want refused", err)
	}
	cfg.Replicas = 3
	in := startServeConfig(t, cfg)

	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 3, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	enrolled := uint64(len(fleet.Sensors))

	// Every stream tapproof uses (buckets are streams too) has 3 replicas.
	op := operatorJS(t, cl)
	names := op.StreamNames(ctx)
	var streams []string
	for name := range names.Name() {
		s, err := op.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas configured, cluster %+v; want 3, a leader and 2 replicas", name, info.Config.Replicas, info.Cluster)
		}
		streams = append(streams, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TAPPROOF_READINGS", "TAPPROOF_LOG_flint", "TAPPROOF_CHECKPOINTS", "KV_tapproof_devices"} {
		if !strings.Contains(strings.Join(streams, " "), want) {
			t.Errorf("streams %v: no %s", streams, want)
		}
	}

	// Sensors publish while one server is killed and brought back.
	dev := &devices{t: t, url: cl.URL(), ca: filepath.Join(cl.Dir, broker.CAFile), conns: map[string]jetstream.JetStream{}}
	published := 0
	publish := func(n int) {
		t.Helper()
		for i := range n {
			s := fleet.Sensors[i%len(fleet.Sensors)]
			r := s.Lead(3, time.Now())
			var err error
			for range 20 { // a sensor retries the same reading until it is answered
				if _, err = s.Publish(ctx, dev.js(s), r); err == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("publish %d: %v", published, err)
			}
			published++
		}
	}
	publish(100)
	// The server that leads the utility's journal, so that the journal
	// itself must elect a new leader while readings arrive.
	s, err := op.Stream(ctx, "TAPPROOF_LOG_flint")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim *natstest.Node
	for _, nd := range cl.Nodes {
		if nd.Name == info.Cluster.Leader {
			victim = nd
		}
	}
	if victim == nil {
		t.Fatalf("the journal's leader %q is none of the cluster's servers", info.Cluster.Leader)
	}
	t.Logf("killing %s, the journal's leader", victim.Name)
	victim.Kill()
	publish(200)
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	publish(100)
	poll.Until(t, 60*time.Second, func() error {
		// While the streams led by the server killed elect new leaders,
		// the API may answer 503 for a moment.
		code, b := get(t, in.api+"/v1/logs")
		if code != 200 {
			return fmt.Errorf("GET /v1/logs = %d %s", code, b)
		}
		if got := logInfo(t, in.api, "flint").Size; got != enrolled+uint64(published) {
			return fmt.Errorf("log size = %d, want %d", got, enrolled+uint64(published))
		}
		if got := influxCount(t, st, `utility='flint'`); got != published {
			return fmt.Errorf("influx points = %d, want %d", got, published)
		}
		return nil
	})
	// The server that was down has caught up: its replica of the journal
	// holds every entry.
	poll.Until(t, 30*time.Second, func() error {
		s, err := op.Stream(ctx, "TAPPROOF_LOG_flint")
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s of the journal: current %v, offline %v", r.Name, r.Current, r.Offline)
			}
		}
		if info.State.Msgs != enrolled+uint64(published) {
			return fmt.Errorf("journal holds %d entries, want %d", info.State.Msgs, enrolled+uint64(published))
		}
		return nil
	})
}

// operatorJS connects to the cluster as the operator, who reads only.
func operatorJS(t *testing.T, cl *natstest.Cluster) jetstream.JetStream {
	t.Helper()
	return clusterJS(t, cl, cl.Keys.Operator)
}

// serviceJS connects to the cluster as tapproof serve's service user, who
// may write tapproof's streams and buckets.
func serviceJS(t *testing.T, cl *natstest.Cluster) jetstream.JetStream {
	t.Helper()
	return clusterJS(t, cl, cl.Keys.Service)
}

func clusterJS(t *testing.T, cl *natstest.Cluster, kp nkeys.KeyPair) jetstream.JetStream {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(cl.URL(), nats.Nkey(pub, kp.Sign), nats.RootCAs(cl.TLS.CA))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
