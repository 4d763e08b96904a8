package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/loadgen"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/internal/tapproofproc"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/simulate"
)

// clusterPlan sizes the cluster fault test: short in `make test`, long
// with TAPPROOF_SOAK=1 (see README, "Soak").
type clusterPlan struct {
	rate      float64
	duration  time.Duration
	replicas  int
	rounds    int // of the three faults
	partition time.Duration
}

func planCluster() clusterPlan {
	if os.Getenv("TAPPROOF_SOAK") != "" {
		// 300/s was more than three replicas and three servers sustain on
		// two cores through the faults (90,000 readings took 9 minutes).
		return clusterPlan{rate: 200, duration: 5 * time.Minute, replicas: 3, rounds: 3, partition: 20 * time.Second}
	}
	return clusterPlan{rate: 150, duration: 80 * time.Second, replicas: 2, rounds: 1, partition: 20 * time.Second}
}

// TestClusterFaults: three nats-servers and two tapproof replicas (three
// in the soak) share three utilities under steady load, through faults:
// the server leading the readings stream is killed with SIGKILL and
// brought back, a tapproof replica is killed with SIGKILL and restarted,
// and the server leading a utility's journal is cut off from the other two
// for 20 s (it keeps running, and whoever is connected to it stays so) and
// rejoins. Then the reconciliation: every published reading exactly once
// in its journal, in InfluxDB and in its log; every checkpoint published
// meanwhile consistent with the log's leaves; the notice records of the
// alerting sensors' alerts in the log; and every resident's subscription
// made before the faults still there, confirmed.
func TestClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts three nats-servers and tapproof processes")
	}
	p := planCluster()
	st := localstack.ForTest(t)
	// Publishing falls behind its rate while servers and replicas are down,
	// and the reconciliation reads every journal back.
	ctx, cancel := context.WithTimeout(t.Context(), 3*p.duration+8*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	nb, err := localstack.NATSServerBinary(ctx, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cl := natstest.LinkedCluster(t, nb, 3)
	bin, err := tapproofproc.Build(ctx, tmp)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(tmp, "data")
	var procs []*tapproofproc.Proc
	for i := range p.replicas {
		logFile := filepath.Join(tmp, fmt.Sprintf("tapproof-%d.log", i+1))
		// One after the other: the first creates the keys the others read.
		proc, err := tapproofproc.Start(ctx, tapproofproc.Config{
			Binary: bin, DataDir: data, TrillianAddr: st.TrillianAddr,
			InfluxURL: st.InfluxURL, InfluxDB: st.InfluxDatabase, AdminToken: adminToken, LogFile: logFile,
			Args: []string{"--nats-url", cl.URL(), "--broker-dir", cl.Dir, "--replicas", "3",
				"--checkpoint-interval", "500ms", "--device-rate", "500", "--log-level", "info"},
		})
		if err != nil {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("%v:\n%s", err, tail(string(b), 4000))
		}
		procs = append(procs, proc)
		t.Cleanup(func() {
			if t.Failed() {
				var lines []string
				if resp, err := http.Get(proc.API() + "/metrics"); err == nil {
					m, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					for _, l := range strings.Split(string(m), "\n") {
						if strings.HasPrefix(l, "tapproof_log_leader{") || strings.HasPrefix(l, "tapproof_journal_pending_entries{") ||
							strings.HasPrefix(l, "tapproof_leader ") || strings.HasPrefix(l, "tapproof_ingest_pending_messages{") {
							lines = append(lines, l)
						}
					}
				}
				b, _ := os.ReadFile(logFile)
				t.Logf("tapproof replica %d: metrics\n%s\nlog (tail):\n%s", i+1, strings.Join(lines, "\n"), tail(string(b), 8000))
				keepLog(t, logFile)
			}
			_ = proc.Stop()
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range cl.Nodes {
				t.Logf("%s log (tail):\n%s", nd.Name, tail(nd.Log(), 4000))
			}
			keepLog(t, filepath.Join(cl.Dir, "*", "nats-server.log"))
		}
	})

	utilities := []string{"alpena", "bay-city", "clare"}
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: len(utilities), Sites: 2, LeadPerSite: 2, NIRSPerUtil: -1, UtilityNames: utilities})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, procs[0].API(), adminToken); err != nil {
		t.Fatal(err)
	}
	alerting := map[string]bool{}
	for _, s := range fleet.Sensors {
		if s.Device.Site == "site-1" && len(alerting) < len(utilities) && !alerting[s.Device.ID] {
			alerting[s.Device.ID] = true
		}
	}
	msgs, err := loadgen.Presign(ctx, fleet, int(p.rate*p.duration.Seconds()), alerting)
	if err != nil {
		t.Fatal(err)
	}
	b := loadgen.NewBroker(cl.URL(), cl.Dir, fleet)

	// Residents subscribe before the faults (a write: the service user's).
	op := operatorJS(t, cl)
	subs, err := residents.NewSubscriptions(ctx, journal.Replicated(serviceJS(t, cl), 3), residents.SubscriptionsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	subscribed := map[string]bool{}
	for i := range 20 {
		s, token, err := subs.Subscribe(ctx, residents.SubscribeRequest{
			Target:  residents.Target{Utility: utilities[i%len(utilities)], Site: "site-1"},
			Channel: residents.ChannelEmail, Address: fmt.Sprintf("resident-%d@example.org", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		// A bucket's reads may be served by a replica a few milliseconds
		// behind its leader: a resident clicking at once may click again.
		poll.Until(t, 5*time.Second, func() error { _, err := subs.Confirm(ctx, token); return err })
		subscribed[s.ID] = true
	}

	pub := &loadgen.Publisher{Broker: b, Rate: p.rate}
	published := make(chan error, 1)
	go func() { published <- pub.Run(ctx, msgs) }()

	leaderOf := func(stream string) int {
		t.Helper()
		for {
			s, err := op.Stream(ctx, stream)
			if err == nil {
				var info *jetstream.StreamInfo
				if info, err = s.Info(ctx); err == nil && info.Cluster != nil {
					for i, nd := range cl.Nodes {
						if nd.Name == info.Cluster.Leader {
							return i
						}
					}
				}
			}
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			time.Sleep(250 * time.Millisecond) // electing
		}
	}
	step := p.duration / time.Duration(3*p.rounds+1)
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(step):
		}
	}
	for round := range p.rounds {
		pause()
		victim := leaderOf(journal.ReadingsStream)
		t.Logf("round %d: SIGKILL %s, the readings stream's leader; back after 5 s", round+1, cl.Nodes[victim].Name)
		cl.Nodes[victim].Kill()
		time.Sleep(5 * time.Second)
		if err := cl.Nodes[victim].Start(); err != nil {
			t.Fatal(err)
		}

		pause()
		replica := procs[round%len(procs)]
		t.Logf("round %d: SIGKILL tapproof replica %d", round+1, round%len(procs)+1)
		if err := replica.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := replica.Restart(ctx); err != nil {
			t.Fatal(err)
		}

		pause()
		cut := leaderOf("TAPPROOF_LOG_" + utilities[round%len(utilities)])
		t.Logf("round %d: cut %s, the leader of %s's journal, off for %s", round+1, cl.Nodes[cut].Name, utilities[round%len(utilities)], p.partition)
		if err := cl.Isolate(cut); err != nil {
			t.Fatal(err)
		}
		time.Sleep(p.partition)
		if err := cl.Rejoin(cut); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-published; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Logf("published %d readings (%d publish retries)", len(msgs), pub.Retries())

	rep, err := loadgen.Reconcile(ctx, loadgen.Target{
		Broker: b, DataDir: data, TrillianAddr: st.TrillianAddr, InfluxURL: st.InfluxURL, InfluxDB: st.InfluxDatabase,
	}, msgs, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	checkReconciled(t, rep, len(msgs), len(fleet.Sensors))
	if rep.Checkpoints < 3*len(utilities) {
		t.Errorf("only %d checkpoints verified", rep.Checkpoints)
	}
	all, err := subs.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if subscribed[s.ID] && s.Confirmed {
			delete(subscribed, s.ID)
		}
	}
	if len(subscribed) != 0 {
		t.Errorf("%d of 20 confirmed subscriptions lost or unconfirmed after the faults", len(subscribed))
	}
}

// keepLog copies the files matching pattern into $TAPPROOF_KEEP_LOGS, if
// set, for a failure to be read after the test's directory is gone.
func keepLog(t *testing.T, pattern string) {
	dir := os.Getenv("TAPPROOF_KEEP_LOGS")
	if dir == "" {
		return
	}
	files, _ := filepath.Glob(pattern)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		name := filepath.Base(filepath.Dir(f)) + "-" + filepath.Base(f)
		if err := os.MkdirAll(dir, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
	}
}
