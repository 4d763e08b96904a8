package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof/internal/loadgen"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/tapproofproc"
	"github.com/tapproof/tapproof/simulate"
)

// faultPlan sizes the fault test: short in `make test`, long with
// TAPPROOF_SOAK=1 (see README, "Soak").
type faultPlan struct {
	rate          float64
	duration      time.Duration
	influxOutage  time.Duration
	tapproofKills int
}

func plan() faultPlan {
	if os.Getenv("TAPPROOF_SOAK") != "" {
		return faultPlan{rate: 1000, duration: 5 * time.Minute, influxOutage: 30 * time.Second, tapproofKills: 10}
	}
	return faultPlan{rate: 250, duration: 45 * time.Second, influxOutage: 8 * time.Second, tapproofKills: 3}
}

// TestExactlyOnceThroughFaults publishes readings steadily while tapproof
// is killed with SIGKILL (taking its embedded NATS server with it), the
// Trillian log server and signer are killed, InfluxDB is stopped and
// PostgreSQL restarted, and then reconciles: every published reading is
// accepted exactly once, in InfluxDB and exactly once in the log, and every
// checkpoint published during the test commits to the log's leaves.
func TestExactlyOnceThroughFaults(t *testing.T) {
	p := plan()
	st := localstack.ForTest(t)
	ctx, cancel := context.WithTimeout(t.Context(), p.duration+5*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin, err := tapproofproc.Build(ctx, tmp)
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(tmp, "tapproof.log")
	proc, err := tapproofproc.Start(ctx, tapproofproc.Config{
		Binary: bin, DataDir: filepath.Join(tmp, "data"), TrillianAddr: st.TrillianAddr,
		InfluxURL: st.InfluxURL, InfluxDB: st.InfluxDatabase, AdminToken: adminToken, LogFile: logFile,
		// The fleet here is 20 sensors at up to 1,000 readings/s (soak):
		// 50/s each, the default limit; this test is about faults.
		Args: []string{"--checkpoint-interval", "500ms", "--device-rate", "500"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proc.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("tapproof log (tail):\n%s", tail(string(b), 8000))
		}
	})

	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 5, LeadPerSite: 4, NIRSPerUtil: -1, UtilityNames: []string{"faults"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, proc.API(), adminToken); err != nil {
		t.Fatal(err)
	}
	alerting := map[string]bool{fleet.Sensors[0].Device.ID: true}
	msgs, err := loadgen.Presign(ctx, fleet, int(p.rate*p.duration.Seconds()), alerting)
	if err != nil {
		t.Fatal(err)
	}
	b := loadgen.NewBroker(proc.NATS(), proc.BrokerDir(), fleet)
	obs, err := loadgen.Observe(b)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()

	pub := &loadgen.Publisher{Broker: b, Rate: p.rate}
	published := make(chan error, 1)
	go func() { published <- pub.Run(ctx, msgs) }()

	step := p.duration / time.Duration(6+p.tapproofKills)
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(step):
		}
	}
	kill := func() {
		t.Helper()
		if err := proc.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := proc.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < p.tapproofKills; i++ {
		pause()
		t.Logf("SIGKILL tapproof (%d of %d)", i+1, p.tapproofKills)
		kill()
	}
	pause()
	t.Log("kill the Trillian log server and signer")
	for _, c := range []localstack.Component{localstack.LogSigner, localstack.LogServer} {
		if err := st.Stop(c); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	for _, c := range []localstack.Component{localstack.LogServer, localstack.LogSigner} {
		if err := st.Restart(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	pause()
	t.Logf("stop InfluxDB for %s", p.influxOutage)
	if err := st.Stop(localstack.InfluxDB); err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	time.Sleep(p.influxOutage)
	// Screening kept deciding while InfluxDB was down. The alerting
	// sensor alternates 20 and 2 ppb: after its third alert it is flapping
	// and its alert stays open, so its later high readings are decided as
	// suppressions, published on the same path as alerts.
	alertsDuring := 0
	for i, m := range msgs {
		if m.High && pub.SentAt(i).After(outage) {
			if _, ok := obs.Decided(m.Key()); ok {
				alertsDuring++
			}
		}
	}
	// Nothing was acknowledged early: the InfluxDB sink has a backlog.
	backlog := metricValue(t, proc.API(), `tapproof_journal_pending_entries{log="faults",sink="influx"}`)
	if err := st.Restart(ctx, localstack.InfluxDB); err != nil {
		t.Fatal(err)
	}
	if alertsDuring == 0 {
		t.Errorf("no screening decision (alert or suppression) arrived while InfluxDB was down")
	}
	if backlog == 0 {
		t.Errorf("InfluxDB sink backlog = 0 during the outage; entries must wait in the journal")
	}
	pause()
	t.Log("restart PostgreSQL")
	if err := st.Restart(ctx, localstack.Postgres); err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Logf("published %d readings (%d publish retries)", len(msgs), pub.Retries())

	rep, err := loadgen.Reconcile(ctx, loadgen.Target{
		Broker: b, DataDir: filepath.Join(tmp, "data"), TrillianAddr: st.TrillianAddr,
		InfluxURL: st.InfluxURL, InfluxDB: st.InfluxDatabase,
	}, msgs, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	checkReconciled(t, rep, len(msgs), len(fleet.Sensors))
	if rep.Checkpoints < 3 {
		t.Errorf("only %d checkpoints verified", rep.Checkpoints)
	}
}

// checkReconciled fails t unless rep found nothing wrong and the logs hold
// the readings, the enrollments and the records of the notices the
// alerting sensors caused, and nothing else.
func checkReconciled(t *testing.T, rep *loadgen.Report, readings, enrollments int) {
	t.Helper()
	t.Logf("reconciled: %+v", *rep)
	for _, pr := range rep.Problems {
		t.Error(pr)
	}
	if rep.Journaled != readings || rep.InfluxPoints != readings || rep.Enrollments != enrollments ||
		rep.Leaves != rep.Journaled+rep.Enrollments+rep.Notices {
		t.Errorf("journaled %d, InfluxDB %d, enrollments %d, notices %d, leaves %d; want %d readings, %d enrollments, leaves = readings + enrollments + notices",
			rep.Journaled, rep.InfluxPoints, rep.Enrollments, rep.Notices, rep.Leaves, readings, enrollments)
	}
	if rep.Notices == 0 {
		t.Errorf("no notice records in the logs, though the alerting sensors raised alerts")
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := strings.IndexByte(s[len(s)-n:], '\n')
	return fmt.Sprint("…", s[len(s)-n+i+1:])
}
