// Command local runs the whole tapproof platform on this machine, on real
// components, with simulated sensors: `make demo` runs it.
//
// It starts PostgreSQL, the Trillian log server and signer, and InfluxDB
// 1.8 (internal/localstack builds and caches them on first use), two
// witnesses (litewitness, for a state regulator and a university), then
// `tapproof serve` with its embedded NATS JetStream and a witness policy
// that needs both, a small webhook receiver that prints every alert it
// gets, `tapproof simulate`, and, once the simulated utilities' logs exist,
// a regulator's `tapproof monitor` following them. Data
// lives in --dir, so running it again continues where it stopped. Ctrl-C
// (or SIGTERM) stops everything: sensors first, then tapproof, then the
// stack; then the demo exits 0, and so does `make demo` (see takeTerminal).
//
// With --cluster (`make demo-cluster`) NATS runs as a cluster of three
// nats-server processes (routes on loopback over mutual TLS, JetStream on
// each, every stream at three replicas) and tapproof as two replicas that
// share the utilities between them.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natscluster"
	"github.com/tapproof/tapproof/simulate"
)

// Ports of the demo; fixed so the printed URLs stay true across runs.
const (
	apiAddr     = "127.0.0.1:8480"
	webhookAddr = "127.0.0.1:8481"
	natsAddr    = "127.0.0.1:4222"
	mailUIAddr  = "127.0.0.1:8025" // mailpit: the residents' inbox
	smtpAddr    = "127.0.0.1:1025"
	monitorAddr = "127.0.0.1:8482" // the regulator's monitor's /metrics
	api2Addr    = "127.0.0.1:8483" // the second tapproof replica, with --cluster
)

// demoWitnesses are the demo's witnesses: independent parties that cosign
// each checkpoint once it extends the last they saw.
var demoWitnesses = []struct {
	id, name string
	port     int
}{
	{"state", "witness.state-regulator.example", 7380},
	{"university", "witness.university.example", 7381},
}

func main() {
	dir := flag.String("dir", ".data/demo", "where the demo keeps its data")
	bin := flag.String("tapproof", "bin/tapproof", "the tapproof binary")
	rate := flag.Float64("rate", 0, "simulated readings per second (0: one per sensor every 2 s)")
	cluster := flag.Bool("cluster", false, "NATS as a cluster of three nats-servers, tapproof as two replicas sharing the work (use its own --dir)")
	flag.Parse()
	os.Exit(demo(func(ctx context.Context) error { return run(ctx, *dir, *bin, *rate, *cluster) }))
}

// demo runs run with a context that Ctrl-C, SIGTERM or SIGHUP cancels, as
// the foreground of the terminal (takeTerminal), and returns the exit
// status. Ctrl-C is how the demo ends, also while it starts, so that is 0
// once run, having stopped everything it started, returns.
func demo(run func(context.Context) error) int {
	giveBack := takeTerminal()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx)
	interrupted := ctx.Err() != nil
	switch {
	case interrupted && err != nil:
		// err is what the interruption cut short (with logs, for the
		// stack's processes), not news.
		say("interrupted while starting; stopped")
	case interrupted:
		say("stopped")
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
	}
	giveBack()
	stop()
	if err != nil && !interrupted {
		return 1
	}
	return 0
}

func run(ctx context.Context, dir, bin string, rate float64, cluster bool) error {
	start := time.Now()
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	// The postgres user must be able to reach the stack's directory.
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o011 == 0 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	say("starting PostgreSQL, Trillian and InfluxDB in %s (the first run builds them: a few minutes)", dir)
	st, err := localstack.Start(ctx, localstack.Config{
		Dir: filepath.Join(dir, "stack"), Log: prefixWriter("stack: "),
		PostgresPort: 15432, TrillianRPCPort: 18090, TrillianHTTPPort: 18091,
		SignerRPCPort: 18092, SignerHTTPPort: 18093, InfluxPort: 18086, InfluxRPCPort: 18088,
	})
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the stack")
		if err := st.Close(); err != nil {
			say("stack: %v", err)
		}
	}()

	token, err := adminToken(filepath.Join(dir, "admin-token"))
	if err != nil {
		return err
	}
	secret, err := adminToken(filepath.Join(dir, "webhook-secret"))
	if err != nil {
		return err
	}
	// A certified lab whose key the state gave tapproof: it reports a
	// monitoring period that exceeds the action level.
	labFile := filepath.Join(dir, "simulated-lab.json")
	lab, err := simulate.LoadOrCreateLab(labFile, "demo-lab")
	if err != nil {
		return err
	}

	period := simulate.PreviousHalf(time.Now()).ID // the simulated lab's
	hook, err := webhookReceiver(secret, period, lab.ID+"="+lab.PublicKey())
	if err != nil {
		return err
	}
	defer hook.Close()

	// Residents' email goes to a local mailpit, whose web UI shows what
	// subscribers receive.
	mailpit, err := localstack.MailpitBinary(ctx, "", prefixWriter("stack: "))
	if err != nil {
		return err
	}
	mail, err := startChild(mailpit, os.Environ(), filepath.Join(logs, "mailpit.log"),
		"--listen", mailUIAddr, "--smtp", smtpAddr, "--database", filepath.Join(dir, "mailpit.db"),
		"--smtp-disable-rdns", "--disable-version-check")
	if err != nil {
		return err
	}
	defer mail.stop("mailpit", 5*time.Second)

	ws, policyFile, err := startWitnesses(ctx, dir)
	if err != nil {
		return err
	}
	defer func() {
		for _, w := range ws {
			say("stopping witness %s", w.Name)
			_ = w.Stop()
		}
	}()

	// NATS: tapproof's embedded server, or a cluster of three.
	natsURL, brokerDir := "tls://"+natsAddr, filepath.Join(dir, "tapproof", "broker")
	natsArgs := []string{"--nats-listen", natsAddr}
	if cluster {
		nb, err := localstack.NATSServerBinary(ctx, "", prefixWriter("stack: "))
		if err != nil {
			return err
		}
		say("starting a NATS cluster of three nats-servers in %s", filepath.Join(dir, "nats"))
		cl, err := natscluster.Start(nb, filepath.Join(dir, "nats"), 3)
		if err != nil {
			return err
		}
		defer func() {
			say("stopping the NATS cluster")
			cl.Stop()
		}()
		natsURL, brokerDir = cl.URL(), cl.Dir
		natsArgs = []string{"--nats-url", natsURL, "--broker-dir", brokerDir, "--replicas", "3"}
	}

	env := append(os.Environ(), "TAPPROOF_ADMIN_TOKEN="+token, "TAPPROOF_WEBHOOK_SECRET="+secret)
	serveArgs := func(http string) []string {
		return append(append([]string{"serve", "--data", filepath.Join(dir, "tapproof"), "--http", http}, natsArgs...),
			"--trillian", st.TrillianAddr, "--influx-url", st.InfluxURL, "--influx-db", st.InfluxDatabase,
			"--webhook", "http://"+webhookAddr+"/alerts", "--checkpoint-interval", "1s",
			"--public-url", "http://"+apiAddr+"/", "--public-title", "tapproof demo water",
			"--smtp-host", "127.0.0.1", "--smtp-port", "1025", "--smtp-tls", "none", "--smtp-from", "alerts@demo.tapproof.local",
			"--lab-key", lab.ID+"="+lab.PublicKey(), "--witness-policy", policyFile, "--audit-every", "30s")
	}
	serve, err := startChild(bin, env, filepath.Join(logs, "tapproof.log"), serveArgs(apiAddr)...)
	if err != nil {
		return err
	}
	defer serve.stop("tapproof serve", 30*time.Second)
	if err := waitReady(ctx, "http://"+apiAddr+"/readyz", serve); err != nil {
		return fmt.Errorf("tapproof did not become ready (see %s): %w", filepath.Join(logs, "tapproof.log"), err)
	}
	// A second replica, started once the first has made the keys it reads.
	serve2 := &child{done: make(chan struct{})}
	if cluster {
		if serve2, err = startChild(bin, env, filepath.Join(logs, "tapproof-2.log"), serveArgs(api2Addr)...); err != nil {
			return err
		}
		defer serve2.stop("tapproof serve (replica 2)", 30*time.Second)
		if err := waitReady(ctx, "http://"+api2Addr+"/readyz", serve2); err != nil {
			return fmt.Errorf("tapproof's second replica did not become ready (see %s): %w", filepath.Join(logs, "tapproof-2.log"), err)
		}
	}
	simArgs := []string{"simulate", "--nats-url", natsURL, "--nats-ca", filepath.Join(brokerDir, "ca.pem"), "--server", "http://" + apiAddr,
		"--fleet", filepath.Join(dir, "simulated-fleet.json"), "--lab", labFile, "--lab-after", "30s"}
	if rate > 0 {
		simArgs = append(simArgs, "--rate", fmt.Sprint(rate))
	}
	sim, err := startChild(bin, env, filepath.Join(logs, "simulate.log"), simArgs...)
	if err != nil {
		return err
	}
	defer sim.stop("simulated sensors", 10*time.Second)

	printGuide(dir, st, time.Since(start), period, lab.ID+"="+lab.PublicKey(), policyFile)
	if cluster {
		fmt.Printf(`With --cluster, NATS is a cluster of three nats-servers (%s; their stores and logs in %s)
and tapproof runs as two replicas sharing the utilities: http://%s and http://%s; which leads what
is tapproof_log_leader{log} on each one's /metrics. The broker's files are in %s,
not in %s/tapproof/broker as the NATS commands above say.

`, natsURL, filepath.Join(dir, "nats"), apiAddr, api2Addr, brokerDir, dir)
	}

	// The witnesses and a regulator's monitor follow the logs once the
	// simulated utilities have created them.
	known, err := awaitLogs(ctx, ws)
	if err != nil {
		return err
	}
	go registerLogs(ctx, ws, known)
	monArgs := []string{"monitor", "--server", "http://" + apiAddr, "--state", filepath.Join(dir, "monitor"),
		"--witness-policy", policyFile, "--lab-key", lab.ID + "=" + lab.PublicKey(), "--metrics", monitorAddr, "--interval", "5s"}
	for _, l := range known {
		monArgs = append(monArgs, "--log", l.Utility+"="+l.VerifierKey)
	}
	mon, err := startChild(bin, env, filepath.Join(logs, "monitor.log"), monArgs...)
	if err != nil {
		return err
	}
	defer mon.stop("monitor", 10*time.Second)
	say("a regulator's monitor follows %d logs: findings in %s, metrics on http://%s/metrics, log %s",
		len(known), filepath.Join(dir, "monitor", "findings"), monitorAddr, filepath.Join(logs, "monitor.log"))

	select {
	case <-ctx.Done():
		say("interrupted; shutting down")
		return nil
	case <-serve.done:
		return fmt.Errorf("tapproof serve exited: %v (see %s)", serve.err, filepath.Join(logs, "tapproof.log"))
	case <-serve2.done:
		return fmt.Errorf("tapproof serve (replica 2) exited: %v (see %s)", serve2.err, filepath.Join(logs, "tapproof-2.log"))
	case <-sim.done:
		return fmt.Errorf("simulator exited: %v (see %s)", sim.err, filepath.Join(logs, "simulate.log"))
	case <-mon.done:
		return fmt.Errorf("monitor exited: %v (see %s)", mon.err, filepath.Join(logs, "monitor.log"))
	}
}

// startWitnesses starts the demo's witnesses, with their state (key,
// SQLite database, logs) under dir/witnesses, and writes the witness
// policy that needs both.
func startWitnesses(ctx context.Context, dir string) ([]*localstack.Witness, string, error) {
	var (
		ws     []*localstack.Witness
		policy strings.Builder
	)
	policy.WriteString("# The demo's witness policy: every checkpoint must be cosigned by both.\n")
	for _, d := range demoWitnesses {
		w, err := localstack.StartWitness(ctx, localstack.WitnessConfig{
			Name: d.name, Dir: filepath.Join(dir, "witnesses", d.id), Port: d.port, Log: prefixWriter("stack: "),
		})
		if err != nil {
			for _, w := range ws {
				_ = w.Stop()
			}
			return nil, "", err
		}
		ws = append(ws, w)
		fmt.Fprintf(&policy, "witness %s %s %s\n", d.id, w.VerifierKey, w.URL)
	}
	policy.WriteString("group both all state university\nquorum both\n")
	path := filepath.Join(dir, "witness-policy.txt")
	return ws, path, os.WriteFile(path, []byte(policy.String()), 0o644)
}

// demoLog is a log as GET /v1/logs lists it.
type demoLog struct {
	Utility     string `json:"utility"`
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
}

// awaitLogs registers the logs tapproof serves with the witnesses, as a
// log operator does with a witness's operators when a log starts, until
// there is at least one and no new one has appeared for 5 s (the simulated
// utilities' logs appear as their devices enroll), and returns them.
func awaitLogs(ctx context.Context, ws []*localstack.Witness) ([]demoLog, error) {
	var (
		known   []demoLog
		changed = time.Now()
	)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		if n := len(known); registerNew(ctx, ws, &known) && len(known) > n {
			changed = time.Now()
		}
		if len(known) > 0 && time.Since(changed) > 5*time.Second {
			return known, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, errors.New("no log appeared: did the simulator enroll its fleet? (see its log)")
}

// registerLogs goes on registering logs that appear later.
func registerLogs(ctx context.Context, ws []*localstack.Witness, known []demoLog) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		registerNew(ctx, ws, &known)
	}
}

// registerNew registers with every witness the logs served that are not in
// known, and adds them to it. It reports whether it could list the logs.
func registerNew(ctx context.Context, ws []*localstack.Witness, known *[]demoLog) bool {
	resp, err := http.Get("http://" + apiAddr + "/v1/logs")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var logs []demoLog
	if err := json.NewDecoder(resp.Body).Decode(&logs); err != nil {
		return false
	}
	for _, l := range logs {
		if slices.ContainsFunc(*known, func(k demoLog) bool { return k.Origin == l.Origin }) {
			continue
		}
		ok := true
		for _, w := range ws {
			if err := w.AddLog(ctx, l.Origin, l.VerifierKey); err != nil {
				say("witness %s: %v", w.Name, err)
				ok = false
			}
		}
		if ok {
			*known = append(*known, l)
			say("log %s registered with the witnesses", l.Origin)
		}
	}
	return true
}

func printGuide(dir string, st *localstack.Stack, took time.Duration, period, labKey, policyFile string) {
	api := "http://" + apiAddr
	fmt.Printf(`
tapproof is up (%s). Simulated sensors are publishing signed readings.
A lead spike of about 24 ppb at utility-1/site-2 starts about 15 s from now;
a certified lab reports utility-1's %[9]s lead samples about 30 s from now: their 90th
percentile, 17 ppb, exceeds 15 ppb and raises the Tier 1 alert (once; a rerun finds them reported).
Alerts are printed here as the webhook receives them.

  Residents         %[2]s/            status page: find a site, subscribe by email
                    http://%[8]s       the demo's inbox (mailpit): confirmation and alert emails
                    %[2]s/v1/alerts/feed.atom   (each alert also as CAP 1.2 at /v1/alerts/ID/cap.xml)
  Regulator API     %[2]s/v1/logs   (logs, origins, verifier keys)
                    %[2]s/v1/logs/utility-1/checkpoint   (cosigned by both witnesses)
  Witnesses         http://127.0.0.1:7380 (witness.state-regulator.example), http://127.0.0.1:7381
                    (witness.university.example); their keys, databases and logs in %[7]s/witnesses,
                    the policy that needs both in %[11]s
  Monitor           a regulator's tapproof monitor follows every log once the fleet has enrolled:
                    state in %[7]s/monitor, findings (with their evidence) in %[7]s/monitor/findings,
                    metrics on http://%[12]s/metrics, log in %[7]s/logs/monitor.log
                    %[2]s/v1/alerts
                    %[2]s/v1/devices
  Compliance        %[2]s/v1/compliance/utility-1/%[9]s   (90th percentile, notices due)
                    bin/tapproof compliance --utility utility-1 --period %[9]s --lab-key %[10]s \
                        --log %[2]s --log-key "$(curl -s %[2]s/v1/logs | jq -r '.[] | select(.utility=="utility-1") | .verifier_key')"
  Audit             tapproof audits InfluxDB against each log every 30 s (tapproof_audit_findings on
                    %[2]s/metrics); by hand, naming each point deleted, changed or added:
                    bin/tapproof audit --server %[2]s --utility utility-1 --influx-url %[4]s --influx-db %[5]s \
                        --log-key "$(curl -s %[2]s/v1/logs | jq -r '.[] | select(.utility=="utility-1") | .verifier_key')"
  Metrics           %[2]s/metrics   readiness: %[2]s/readyz
  NATS JetStream    tls://%[3]s      TLS with a local CA, every connection authenticated: sensors with
                    their enrolled key, the operator with %[7]s/tapproof/broker/operator.nk, e.g.
                    nats --server tls://%[3]s --tlsca %[7]s/tapproof/broker/ca.pem \
                        --nkey %[7]s/tapproof/broker/operator.nk sub 'tapproof.rejected.>'
                    (readings on tapproof.readings.>, rejections on tapproof.rejected.>)
  InfluxDB 1.8      %[4]s  database %[5]s  e.g. curl -G %[4]s/query --data-urlencode db=%[5]s --data-urlencode 'q=SELECT last(value) FROM reading GROUP BY site'
  Trillian gRPC     %[6]s (PostgreSQL on 127.0.0.1:15432)
  Grafana           dashboards in dashboards/json/, data sources and provider in deploy/grafana/
                    (import them into any Grafana: docs/operations.md)
  Logs              %[7]s/logs

Verify a reading offline, as a regulator would:
  curl -s %[2]s/v1/devices                                   # pick a device
  curl -s %[2]s/v1/readings/DEVICE/SEQ/bundle > bundle.json  # SEQ: see InfluxDB field "seq"
  bin/tapproof verify --log-key "$(curl -s %[2]s/v1/logs | jq -r '.[0].verifier_key')" \
      --witness-policy %[11]s bundle.json

Ctrl-C stops everything; running make demo again continues on the same data.

`, took.Round(100*time.Millisecond), api, natsAddr, st.InfluxURL, st.InfluxDatabase, st.TrillianAddr, dir, mailUIAddr, period, labKey, policyFile, monitorAddr)
}

// webhookReceiver listens for tapproof's alert webhooks, checks their
// signature and prints each alert, with the command that fetches and
// verifies its proof (notice.Links.Proof); labKey is the lab's LAB=KEY.
func webhookReceiver(secret, period, labKey string) (*http.Server, error) {
	ln, err := net.Listen("tcp", webhookAddr)
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !alerts.Verify(secret, body, r.Header.Get(alerts.HeaderSignature)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			say("webhook: refused a delivery with a bad signature")
			return
		}
		var a tapproof.Alert
		if err := json.Unmarshal(body, &a); err != nil {
			http.Error(w, "bad alert", http.StatusBadRequest)
			return
		}
		report := fmt.Sprintf("http://%s/v1/compliance/%s/%s", apiAddr, a.Utility, period)
		proof := notice.Links{Base: "http://" + apiAddr}.Proof(a)
		logKey := fmt.Sprintf(`"$(curl -s http://%s/v1/logs | jq -r '.[] | select(.utility==%q) | .verifier_key')"`, apiAddr, a.Utility)
		switch {
		case a.Type() == tapproof.CancelMsg:
			fmt.Printf("\n*** ALL CLEAR %s: %s back to %.1f %s at %s/%s (device %s)\n    proof: %s\n\n",
				a.Class, a.Analyte, a.Value, a.Unit, a.Utility, a.Site, a.Device, proof.URL)
		case a.Type() == tapproof.UpdateMsg:
			fmt.Printf("\n*** UPDATE %s: %s now %.1f %s at %s/%s (device %s, seq %d)\n\n",
				a.Class, a.Analyte, a.Value, a.Unit, a.Utility, a.Site, a.Device, a.Seq)
		case a.Class == tapproof.SystemExceedance:
			fmt.Printf("\n*** ACTION LEVEL EXCEEDANCE in %s: %s 90th percentile %.1f %s exceeds %g %s [rule %s]\n"+
				"    Tier 1 public notice due within 24 hours; the period's report and notices: %s\n\n",
				a.Utility, a.Analyte, a.Value, a.Unit, a.Level, a.Unit, a.Rule, report)
		case a.Class == tapproof.IndividualCompliance:
			fmt.Printf("\n*** ALERT %s: lab sample at leaf %d, %s %.1f %s at %s/%s, exceeds %g %s [rule %s]\n"+
				"    consumer notice due; the period's report: %s\n"+
				"    verify: curl -s %s > sample.json && bin/tapproof verify --log-key %s --lab-key %s sample.json\n\n",
				a.Class, a.Seq, a.Analyte, a.Value, a.Unit, a.Utility, a.Site, a.Level, a.Unit, a.Rule, report, proof.URL, logKey, labKey)
		default:
			fmt.Printf("\n*** ALERT %s: %s %.1f %s at %s/%s (device %s, seq %d) exceeds %g %s [rule %s]\n"+
				"    verify: curl -s %s > bundle.json && bin/tapproof verify --log-key %s bundle.json\n\n",
				a.Class, a.Analyte, a.Value, a.Unit, a.Utility, a.Site, a.Device, a.Seq, a.Level, a.Unit, a.Rule, proof.URL, logKey)
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	return srv, nil
}

type child struct {
	cmd *exec.Cmd
	// done is closed when the child has exited, with its status in err:
	// closed, not sent on, so that the run loop noticing an exit does not
	// leave stop waiting for it.
	done chan struct{}
	err  error
}

func startChild(bin string, env []string, logFile string, args ...string) (*child, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: Ctrl-C reaches only this program, which stops
	// the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s %s: %w", bin, args[0], err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); f.Close(); close(c.done) }()
	return c, nil
}

func (c *child) stop(name string, grace time.Duration) {
	select {
	case <-c.done:
		return // exited already
	default:
	}
	say("stopping %s", name)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func waitReady(ctx context.Context, url string, c *child) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return fmt.Errorf("exited: %v", c.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("timed out")
}

// adminToken reads a random secret kept in path, creating it on first use.
func adminToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return string(b), nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	return tok, os.WriteFile(path, []byte(tok), 0o600)
}

func say(format string, args ...any) {
	fmt.Printf("demo: "+format+"\n", args...)
}

type prefixWriter string

func (p prefixWriter) Write(b []byte) (int, error) {
	fmt.Print(string(p) + string(b))
	return len(b), nil
}
