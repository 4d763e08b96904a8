package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/simulate"
)

// TestLogsSpreadOverReplicas: each utility's log runs on the one replica
// holding its lease, and the logs spread over the replicas: two replicas
// and four utilities, two logs each. When one replica stops, the other
// takes its logs over and their readings keep landing; a replica that
// joins later is handed its share. Through every handover each reading is
// in its log and in InfluxDB exactly once, and ingest is shared too: each
// replica decides the readings of the utilities it leads.
func TestLogsSpreadOverReplicas(t *testing.T) {
	st := localstack.ForTest(t)
	dataDir := t.TempDir()
	ns := natstest.StartBroker(t, filepath.Join(dataDir, "broker"))
	a := startServeNATS(t, st, dataDir, ns.URL())
	b := startServeNATS(t, st, dataDir, ns.URL())
	ctx := t.Context()
	utilities := []string{"ann-arbor", "benton", "camden", "dayton"}
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: len(utilities), Sites: 1, NIRSPerUtil: -1, UtilityNames: utilities})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, a.api, adminToken); err != nil {
		t.Fatal(err)
	}
	dev := devicesOf(t, a)
	published := map[string]int{}
	publish := func(n int) {
		t.Helper()
		for i := range n {
			s := fleet.Sensors[i%len(fleet.Sensors)]
			if _, err := s.Publish(ctx, dev.js(s), s.Lead(3, time.Now())); err != nil {
				t.Fatal(err)
			}
			published[s.Device.Utility]++
		}
	}
	perUtility := len(fleet.Sensors) / len(utilities)
	landed := func(in *instance) error {
		for _, u := range utilities {
			if got, want := logInfo(t, in.api, u).Size, uint64(perUtility+published[u]); got != want {
				return fmt.Errorf("log %s: size %d, want %d", u, got, want)
			}
			if got := influxCount(t, st, fmt.Sprintf("utility='%s'", u)); got != published[u] {
				return fmt.Errorf("log %s: %d points in InfluxDB, want %d", u, got, published[u])
			}
		}
		return nil
	}
	leads := func(in *instance) (n int) {
		for _, u := range utilities {
			n += int(metricValue(t, in.api, fmt.Sprintf(`tapproof_log_leader{log=%q}`, u)))
		}
		return n
	}
	// Every log led by exactly one replica.
	oneLeaderEach := func(ins ...*instance) error {
		for _, u := range utilities {
			n := 0
			for _, in := range ins {
				n += int(metricValue(t, in.api, fmt.Sprintf(`tapproof_log_leader{log=%q}`, u)))
			}
			if n != 1 {
				return fmt.Errorf("log %s led by %d replicas", u, n)
			}
		}
		return nil
	}

	publish(40)
	poll.Until(t, 60*time.Second, func() error {
		if err := landed(a); err != nil {
			return err
		}
		if err := oneLeaderEach(a, b); err != nil {
			return err
		}
		if la, lb := leads(a), leads(b); la != 2 || lb != 2 {
			return fmt.Errorf("logs led: %d and %d, want 2 and 2", la, lb)
		}
		return nil
	})

	a.stop()
	publish(40)
	poll.Until(t, 60*time.Second, func() error {
		if err := landed(b); err != nil {
			return err
		}
		if n := leads(b); n != 4 {
			return fmt.Errorf("the remaining replica leads %d logs, want 4", n)
		}
		return nil
	})

	c := startServeNATS(t, st, dataDir, ns.URL())
	publish(40)
	poll.Until(t, 90*time.Second, func() error {
		if err := landed(c); err != nil {
			return err
		}
		if err := oneLeaderEach(b, c); err != nil {
			return err
		}
		if lb, lc := leads(b), leads(c); lb != 2 || lc != 2 {
			return fmt.Errorf("logs led: %d and %d, want 2 and 2 once the new replica is handed its share", lb, lc)
		}
		return nil
	})

	// Ingest is spread with the logs: each replica accepts the readings of
	// the utilities it leads, and between them every reading once.
	before := map[*instance]float64{b: metricSum(t, b.api, "tapproof_ingest_accepted_total"), c: metricSum(t, c.api, "tapproof_ingest_accepted_total")}
	publish(40)
	poll.Until(t, 60*time.Second, func() error {
		if err := landed(c); err != nil {
			return err
		}
		rb := metricSum(t, b.api, "tapproof_ingest_accepted_total") - before[b]
		rc := metricSum(t, c.api, "tapproof_ingest_accepted_total") - before[c]
		if rb == 0 || rc == 0 || rb+rc != 40 {
			return fmt.Errorf("the replicas accepted %v and %v of 40 readings, want some each and 40 in all", rb, rc)
		}
		return nil
	})
	// A replica reports the backlogs of the logs it leads only: b led all
	// four before c joined, and a figure left behind would keep a backlog
	// alert firing after the hand-over.
	for _, in := range []*instance{b, c} {
		_, body := get(t, in.api+"/metrics")
		for _, u := range utilities {
			led := metricValue(t, in.api, fmt.Sprintf(`tapproof_log_leader{log=%q}`, u)) == 1
			reported := strings.Contains(string(body), fmt.Sprintf(`tapproof_journal_pending_entries{log=%q,`, u))
			if reported != led {
				t.Errorf("replica %s: leads %s %v, reports its backlog %v", in.api, u, led, reported)
			}
		}
	}
}

// metricSum is the sum of every series of the metric name on api.
func metricSum(t *testing.T, api, name string) float64 {
	t.Helper()
	_, body := get(t, api+"/metrics")
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			var v float64
			fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}
