// Command bench measures tapproof end to end on the real local stack: it
// publishes signed readings at a chosen rate for a chosen time and reports
// the rate at which readings became verified, stored in InfluxDB and
// covered by a signed checkpoint, the latency from publishing a reading to
// its inclusion proof being available and to its alert, and tapproof's peak
// memory. In the same run it measures what Trillian (AddSequencedLeaves, one
// caller, the same batch size) and InfluxDB (batched writes) sustain on
// their own, and reports tapproof's rate as a ratio to each.
//
//	make bench                      # 3 runs of 60 s at 6,000 readings/s
//	go run ./bench -rate 2000 -duration 20s -runs 1
//
// Everything runs on this machine: the stack, tapproof and the publisher
// share its cores, as in the target.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/influx"
	"github.com/tapproof/tapproof/internal/loadgen"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natscluster"
	"github.com/tapproof/tapproof/internal/tapproofproc"
	"github.com/tapproof/tapproof/signed"
	"github.com/tapproof/tapproof/simulate"
)

type options struct {
	rate        float64
	duration    time.Duration
	runs        int
	utilities   int
	sites       int
	perSite     int
	rawTrillian int
	rawInflux   int
	batch       int
	out         string
	debugAddr   string
	flood       float64
	witnesses   int
	cluster     int
	replicas    int
}

// Result is one run's figures.
type Result struct {
	Offered      float64 `json:"offered_per_s"`
	EndToEnd     float64 `json:"end_to_end_per_s"`   // readings / (last anchored and in InfluxDB − first published)
	Sustained    float64 `json:"sustained_per_s"`    // checkpointed leaves/s between 10 s and the end of publishing
	ProofP50     float64 `json:"proof_p50_s"`        // publish → covered by a signed checkpoint
	ProofP99     float64 `json:"proof_p99_s"`        //
	WitnessedP50 float64 `json:"witnessed_p50_s"`    // publish → covered by a checkpoint cosigned by every witness (-witnesses)
	WitnessedP99 float64 `json:"witnessed_p99_s"`    //
	AlertP50     float64 `json:"alert_p50_ms"`       // publish → alert on tapproof.alerts.>
	AlertP99     float64 `json:"alert_p99_ms"`       //
	DecideP99    float64 `json:"decide_p99_ms"`      // publish → alert or suppression record, for every high reading
	High         int     `json:"high_readings"`      // readings at 20 ppb
	Alerts       int     `json:"alerts"`             // of which raised an alert message (the rest were suppressed under an open one)
	Undecided    int     `json:"undecided"`          // high readings with neither an alert nor a suppression seen
	PeakRSSMiB   float64 `json:"peak_rss_mib"`       // tapproof's VmHWM
	TrillianRaw  float64 `json:"trillian_raw_per_s"` // AddSequencedLeaves alone, integrated
	InfluxRaw    float64 `json:"influx_raw_per_s"`   // batched writes alone
	VsTrillian   float64 `json:"ratio_vs_trillian"`
	VsInflux     float64 `json:"ratio_vs_influx"`
	Readings     int     `json:"readings"`
	PublishRetry int64   `json:"publish_retries"`
	// With -flood: what one enrolled device flooding the broker sent, and
	// how much of it was refused at the edge as rate_limited.
	FloodSent    int64 `json:"flood_sent,omitempty"`
	FloodRefused int64 `json:"flood_refused,omitempty"`
	// CPUPerReading is the CPU time each component spent, from the first
	// reading published until the last was anchored and in InfluxDB,
	// divided by the readings, in microseconds.
	CPUPerReading map[string]float64 `json:"cpu_us_per_reading,omitempty"`
}

func main() {
	var o options
	flag.Float64Var(&o.rate, "rate", 6000, "readings per second offered")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to publish")
	flag.IntVar(&o.runs, "runs", 3, "runs; figures are reported per run and as medians")
	flag.IntVar(&o.utilities, "utilities", 2, "utilities (one log each)")
	flag.IntVar(&o.sites, "sites", 20, "sites per utility")
	flag.IntVar(&o.perSite, "per-site", 10, "lead sensors per site")
	flag.IntVar(&o.rawTrillian, "raw-trillian", 60000, "leaves for the raw Trillian baseline")
	flag.IntVar(&o.rawInflux, "raw-influx", 200000, "points for the raw InfluxDB baseline")
	flag.IntVar(&o.batch, "batch", anchor.DefaultBatchSize, "AddSequencedLeaves batch size (tapproof and baseline)")
	flag.StringVar(&o.out, "out", "", "also write the results as JSON to this file")
	flag.StringVar(&o.debugAddr, "debug-addr", "", "run tapproof with --debug-addr (pprof) here")
	flag.Float64Var(&o.flood, "flood", 0, "also run one enrolled device that floods at this multiple of a sensor's rate, with maximum-size messages and replays")
	flag.IntVar(&o.witnesses, "witnesses", 0, "run this many witnesses (litewitness) and a policy needing all of them, and report publish → witnessed proof")
	flag.IntVar(&o.cluster, "cluster", 0, "run tapproof against a cluster of this many nats-servers (with --replicas 3 from 3 on) instead of its embedded server")
	flag.IntVar(&o.replicas, "replicas", 1, "tapproof replicas (processes) sharing the work; more than 1 needs -cluster")
	flag.Parse()
	if o.replicas > 1 && o.cluster == 0 {
		fmt.Fprintln(os.Stderr, "bench: -replicas above 1 needs -cluster: each replica embeds no NATS of its own then")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "tapproof-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			logf("kept %s, with every process's log, for the failure to be read", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	_ = os.Chmod(dir, 0o755)
	logf("building tapproof and starting the stack in %s", dir)
	bin, err := tapproofproc.Build(ctx, dir)
	if err != nil {
		return err
	}
	st, err := localstack.Start(ctx, localstack.Config{Dir: filepath.Join(dir, "stack"), Log: os.Stderr})
	if err != nil {
		return err
	}
	defer st.Close()

	var results []Result
	for i := range o.runs {
		logf("run %d of %d: %.0f readings/s for %s", i+1, o.runs, o.rate, o.duration)
		r, err := oneRun(ctx, o, st, bin, filepath.Join(dir, fmt.Sprintf("run%d", i)), i)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		results = append(results, *r)
		report(results)
	}
	if o.out != "" {
		b, _ := json.MarshalIndent(map[string]any{"options": fmt.Sprintf("%+v", o), "runs": results, "median": median(results)}, "", "  ")
		if err := os.WriteFile(o.out, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func oneRun(ctx context.Context, o options, st *localstack.Stack, bin, dir string, n int) (*Result, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	token := rand.Text()
	args := append([]string{"--checkpoint-interval", "250ms"}, debugArgs(o.debugAddr)...)
	ws, policy, err := startWitnesses(ctx, dir, o.witnesses)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, w := range ws {
			_ = w.Stop()
		}
	}()
	if policy != "" {
		args = append(args, "--witness-policy", policy)
	}
	natsURL, brokerDir := "", ""
	if o.cluster > 0 {
		nb, err := localstack.NATSServerBinary(ctx, "", os.Stderr)
		if err != nil {
			return nil, err
		}
		cl, err := natscluster.Start(nb, filepath.Join(dir, "nats"), o.cluster)
		if err != nil {
			return nil, err
		}
		defer cl.Stop()
		natsURL, brokerDir = cl.URL(), cl.Dir
		args = append(args, "--nats-url", natsURL, "--broker-dir", brokerDir, "--replicas", fmt.Sprint(min(o.cluster, 3)))
		logf("a cluster of %d nats-servers: %s", o.cluster, natsURL)
	}
	// The replicas start one after the other: the first creates the
	// journal's seal key the others read.
	var procs []*tapproofproc.Proc
	defer func() {
		for _, p := range procs {
			_ = p.Stop()
		}
	}()
	for i := range max(o.replicas, 1) {
		p, err := tapproofproc.Start(ctx, tapproofproc.Config{
			Binary: bin, DataDir: data, TrillianAddr: st.TrillianAddr, InfluxURL: st.InfluxURL, InfluxDB: st.InfluxDatabase,
			AdminToken: token, LogFile: filepath.Join(dir, fmt.Sprintf("tapproof-%d.log", i+1)), Args: args,
		})
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	proc := procs[0]
	if natsURL == "" {
		natsURL, brokerDir = proc.NATS(), proc.BrokerDir()
	}
	var names []string
	for u := range o.utilities {
		names = append(names, fmt.Sprintf("bench%d-u%d", n, u+1))
	}
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: o.utilities, Sites: o.sites, LeadPerSite: o.perSite, NIRSPerUtil: -1, UtilityNames: names})
	if err != nil {
		return nil, err
	}
	if err := fleet.Enroll(ctx, proc.API(), token); err != nil {
		return nil, err
	}
	if err := registerLogs(ctx, proc.API(), ws); err != nil {
		return nil, err
	}
	// One alerting sensor per utility: every other reading is 20 ppb. It
	// flaps, so after three alerts its high readings are suppressions:
	// decide p99 times every high reading, alert p99 the alerts raised.
	alerting := map[string]bool{}
	for _, s := range fleet.Sensors {
		if s.Device.Site == "site-1" && len(alerting) < o.utilities && !alerting[s.Device.ID] {
			alerting[s.Device.ID] = true
		}
	}
	total := int(o.rate * o.duration.Seconds())
	logf("signing %d readings", total)
	msgs, err := loadgen.Presign(ctx, fleet, total, alerting)
	if err != nil {
		return nil, err
	}
	b := loadgen.NewBroker(natsURL, brokerDir, fleet)
	obs, err := loadgen.Observe(b)
	if err != nil {
		return nil, err
	}
	defer obs.Close()

	perUtility := map[string]uint64{}
	for _, m := range msgs {
		perUtility[m.Utility]++
	}
	enrolled := map[string]uint64{}
	for _, s := range fleet.Sensors {
		enrolled[s.Device.Utility]++
	}
	pub := &loadgen.Publisher{Broker: b, Rate: o.rate}
	var fl *flooder
	if o.flood > 0 {
		if fl, err = startFlood(ctx, proc, token, o.flood*o.rate/float64(len(fleet.Sensors))); err != nil {
			return nil, err
		}
	}
	logf("publishing")
	cpuBefore := cpuSeconds()
	start := time.Now()
	if err := pub.Run(ctx, msgs); err != nil {
		return nil, err
	}
	published := time.Now()
	if fl != nil {
		fl.stop()
	}
	// Wait until everything is covered by a checkpoint and in InfluxDB.
	var done time.Time
	for {
		all := true
		for u, k := range perUtility {
			if obs.Size(u) < k+enrolled[u] || len(ws) > 0 && obs.WitnessedSize(u) < k+enrolled[u] {
				all = false
			}
		}
		if all {
			done = time.Now()
			break
		}
		if time.Since(published) > 10*time.Minute {
			return nil, fmt.Errorf("not all readings anchored 10 minutes after publishing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		ok := true
		for u, k := range perUtility {
			c, err := loadgen.InfluxCount(ctx, st.InfluxURL, st.InfluxDatabase, u)
			if err != nil || uint64(c) < k {
				ok = false
			}
		}
		if ok {
			if t := time.Now(); t.After(done) {
				done = t
			}
			break
		}
		if time.Since(published) > 10*time.Minute {
			return nil, fmt.Errorf("not all readings in InfluxDB 10 minutes after publishing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu := cpuSince(cpuBefore)
	r := &Result{Readings: total, PublishRetry: pub.Retries(), CPUPerReading: map[string]float64{}}
	for name, sec := range cpu {
		r.CPUPerReading[name] = sec / float64(total) * 1e6
	}
	logf("CPU per reading: %s", formatCPU(r.CPUPerReading))
	if fl != nil {
		r.FloodSent, r.FloodRefused = fl.sent.Load(), fl.refused.Load()
		logf("flood: %d messages sent, %d refused as rate_limited", r.FloodSent, r.FloodRefused)
	}
	first, last := pub.SentAt(0), pub.SentAt(0)
	for i := range msgs {
		t := pub.SentAt(i)
		if t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	r.Offered = float64(total) / last.Sub(first).Seconds()
	r.EndToEnd = float64(total) / done.Sub(first).Seconds()
	r.Sustained = sustained(obs, names, start.Add(10*time.Second), published)
	for _, p := range procs {
		r.PeakRSSMiB += float64(p.PeakRSS()) / (1 << 20) // summed over the replicas
	}

	// Latencies, from the journal's indices and the checkpoints and alerts
	// seen as they were published.
	var proofs, witnessed, alertsMS, decideMS []float64
	for _, u := range names {
		idx, err := loadgen.Indexes(ctx, b, u)
		if err != nil {
			return nil, err
		}
		for i, m := range msgs {
			if m.Utility != u {
				continue
			}
			if m.High {
				r.High++
				if at, ok := obs.Alert(m.Key()); ok {
					alertsMS = append(alertsMS, float64(at.Sub(pub.SentAt(i)))/float64(time.Millisecond))
				}
				if at, ok := obs.Decided(m.Key()); ok {
					decideMS = append(decideMS, float64(at.Sub(pub.SentAt(i)))/float64(time.Millisecond))
				} else {
					r.Undecided++
				}
			}
			if i%10 != 0 {
				continue
			}
			if at, ok := obs.Covered(u, idx[m.Key()]); ok {
				proofs = append(proofs, at.Sub(pub.SentAt(i)).Seconds())
			}
			if at, ok := obs.WitnessedCovered(u, idx[m.Key()]); ok && len(ws) > 0 {
				witnessed = append(witnessed, at.Sub(pub.SentAt(i)).Seconds())
			}
		}
	}
	r.ProofP50, r.ProofP99 = quantile(proofs, 0.5), quantile(proofs, 0.99)
	r.WitnessedP50, r.WitnessedP99 = quantile(witnessed, 0.5), quantile(witnessed, 0.99)
	r.AlertP50, r.AlertP99 = quantile(alertsMS, 0.5), quantile(alertsMS, 0.99)
	r.DecideP99, r.Alerts = quantile(decideMS, 0.99), len(alertsMS)
	if r.Undecided > 0 {
		logf("%d of %d high readings had neither an alert nor a suppression record", r.Undecided, r.High)
	}
	for _, p := range procs {
		if err := p.Stop(); err != nil {
			logf("stopping tapproof: %v", err)
		}
	}

	logf("baseline: Trillian AddSequencedLeaves, %d leaves in batches of %d", o.rawTrillian, o.batch)
	if r.TrillianRaw, err = rawTrillian(ctx, st, o.rawTrillian, o.batch); err != nil {
		return nil, err
	}
	logf("baseline: InfluxDB writes, %d points in batches of 5000", o.rawInflux)
	if r.InfluxRaw, err = rawInflux(ctx, st, o.rawInflux, fmt.Sprintf("raw%d", n)); err != nil {
		return nil, err
	}
	r.VsTrillian = r.EndToEnd / r.TrillianRaw
	r.VsInflux = r.EndToEnd / r.InfluxRaw
	return r, nil
}

// sustained is the rate at which checkpoints covered new leaves between
// from and to, summed over the logs.
func sustained(obs *loadgen.Observer, logs []string, from, to time.Time) float64 {
	var rate float64
	for _, u := range logs {
		a, b := obs.SizeAt(u, from), obs.SizeAt(u, to)
		rate += float64(b-a) / to.Sub(from).Seconds()
	}
	return rate
}

// rawTrillian appends n leaves of reading size to a new tree from one
// caller, in batches, and returns the rate at which they were integrated.
func rawTrillian(ctx context.Context, st *localstack.Stack, n, batch int) (float64, error) {
	c, err := anchor.Dial(ctx, st.TrillianAddr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tree, err := c.CreateTree(ctx, "bench raw")
	if err != nil {
		return 0, err
	}
	skey, vkey, _ := note.GenerateKey(nil, "bench.raw/"+fmt.Sprint(tree))
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	lg, err := c.Log(anchor.LogConfig{TreeID: tree, Signer: signer, Verifier: verifier, BatchSize: batch})
	if err != nil {
		return 0, err
	}
	leaf := make([]byte, 700)
	start := time.Now()
	for i := 0; i < n; i += batch {
		es := make([]tapproof.Leaf, 0, batch)
		for k := i; k < min(i+batch, n); k++ {
			l := slices.Clone(leaf)
			copy(l, fmt.Sprint(k))
			es = append(es, tapproof.Leaf{Index: uint64(k), Bytes: l})
		}
		if err := lg.Append(ctx, es); err != nil {
			return 0, err
		}
	}
	for {
		size, _, err := lg.Root(ctx)
		if err != nil {
			return 0, err
		}
		if size >= uint64(n) {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawInflux writes n points like tapproof's, in batches of 5000, and
// returns the rate.
func rawInflux(ctx context.Context, st *localstack.Stack, n int, utility string) (float64, error) {
	w, err := influx.New(influx.Config{URL: st.InfluxURL, Database: st.InfluxDatabase})
	if err != nil {
		return 0, err
	}
	defer w.Close()
	t0 := time.Now().Add(-time.Hour)
	start := time.Now()
	for i := 0; i < n; i += 5000 {
		batch := make([]tapproof.Accepted, 0, 5000)
		for k := i; k < min(i+5000, n); k++ {
			batch = append(batch, tapproof.Accepted{Index: uint64(k), Reading: tapproof.Reading{
				Utility: utility, Site: fmt.Sprintf("site-%d", k%20), Device: fmt.Sprintf("dev-%d", k%400), Seq: uint64(k + 1),
				Analyte: tapproof.Lead, Value: float64(k % 7), Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
				SampledAt: t0.Add(time.Duration(k) * time.Millisecond),
			}})
		}
		if err := w.Write(ctx, batch); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func median(rs []Result) Result {
	pick := func(f func(Result) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	cpu := map[string]float64{}
	for _, r := range rs {
		for name := range r.CPUPerReading {
			cpu[name] = pick(func(r Result) float64 { return r.CPUPerReading[name] })
		}
	}
	return Result{
		CPUPerReading: cpu,
		Offered:       pick(func(r Result) float64 { return r.Offered }),
		EndToEnd:      pick(func(r Result) float64 { return r.EndToEnd }),
		Sustained:     pick(func(r Result) float64 { return r.Sustained }),
		ProofP50:      pick(func(r Result) float64 { return r.ProofP50 }),
		ProofP99:      pick(func(r Result) float64 { return r.ProofP99 }),
		WitnessedP50:  pick(func(r Result) float64 { return r.WitnessedP50 }),
		WitnessedP99:  pick(func(r Result) float64 { return r.WitnessedP99 }),
		AlertP50:      pick(func(r Result) float64 { return r.AlertP50 }),
		AlertP99:      pick(func(r Result) float64 { return r.AlertP99 }),
		DecideP99:     pick(func(r Result) float64 { return r.DecideP99 }),
		Alerts:        int(pick(func(r Result) float64 { return float64(r.Alerts) })),
		High:          int(pick(func(r Result) float64 { return float64(r.High) })),
		PeakRSSMiB:    pick(func(r Result) float64 { return r.PeakRSSMiB }),
		TrillianRaw:   pick(func(r Result) float64 { return r.TrillianRaw }),
		InfluxRaw:     pick(func(r Result) float64 { return r.InfluxRaw }),
		VsTrillian:    pick(func(r Result) float64 { return r.VsTrillian }),
		VsInflux:      pick(func(r Result) float64 { return r.VsInflux }),
	}
}

func report(rs []Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\toffered/s\tend-to-end/s\tsustained/s\tproof p50 s\tproof p99 s\twitnessed p50 s\twitnessed p99 s\talert p50 ms\talert p99 ms\talerts/high\tdecide p99 ms\tpeak RSS MiB\ttrillian raw/s\tinflux raw/s\t÷trillian\t÷influx\t")
	row := func(name string, r Result) {
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%d/%d\t%.1f\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t\n", name,
			r.Offered, r.EndToEnd, r.Sustained, r.ProofP50, r.ProofP99, r.WitnessedP50, r.WitnessedP99, r.AlertP50, r.AlertP99, r.Alerts, r.High, r.DecideP99, r.PeakRSSMiB,
			r.TrillianRaw, r.InfluxRaw, r.VsTrillian, r.VsInflux)
	}
	for i, r := range rs {
		row(fmt.Sprint(i+1), r)
	}
	if len(rs) > 1 {
		row("median", median(rs))
	}
	w.Flush()
	for i, r := range rs {
		fmt.Printf("run %d, CPU per reading: %s\n", i+1, formatCPU(r.CPUPerReading))
	}
	if len(rs) > 1 {
		fmt.Printf("median, CPU per reading: %s\n", formatCPU(median(rs).CPUPerReading))
	}
}

// startWitnesses starts n witnesses under dir and writes a policy that
// needs all of them; none and "" if n is 0.
func startWitnesses(ctx context.Context, dir string, n int) ([]*localstack.Witness, string, error) {
	if n == 0 {
		return nil, "", nil
	}
	var (
		ws     []*localstack.Witness
		policy strings.Builder
		ids    []string
	)
	for i := range n {
		id := fmt.Sprintf("w%d", i+1)
		w, err := localstack.StartWitness(ctx, localstack.WitnessConfig{
			Name: "witness-" + id + ".bench.example", Dir: filepath.Join(dir, "witness-"+id), Log: os.Stderr,
		})
		if err != nil {
			for _, w := range ws {
				_ = w.Stop()
			}
			return nil, "", err
		}
		ws = append(ws, w)
		ids = append(ids, id)
		fmt.Fprintf(&policy, "witness %s %s %s\n", id, w.VerifierKey, w.URL)
	}
	fmt.Fprintf(&policy, "group every all %s\nquorum every\n", strings.Join(ids, " "))
	path := filepath.Join(dir, "witness-policy.txt")
	return ws, path, os.WriteFile(path, []byte(policy.String()), 0o644)
}

// registerLogs registers every log of the tapproof at api with ws.
func registerLogs(ctx context.Context, api string, ws []*localstack.Witness) error {
	if len(ws) == 0 {
		return nil
	}
	resp, err := http.Get(api + "/v1/logs")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var logs []struct {
		Origin      string `json:"origin"`
		VerifierKey string `json:"verifier_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&logs); err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	for _, l := range logs {
		for _, w := range ws {
			if err := w.AddLog(ctx, l.Origin, l.VerifierKey); err != nil {
				return err
			}
		}
	}
	return nil
}

func debugArgs(addr string) []string {
	if addr == "" {
		return nil
	}
	return []string{"--debug-addr", addr}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// flooder is an enrolled device that misbehaves: it publishes far above
// its rate, alternating maximum-size messages with replays of one signed
// reading. It has a utility of its own, so that the fleet's figures and
// logs are those of the others.
type flooder struct {
	sent, refused atomic.Int64
	cancel        context.CancelFunc
	done          chan struct{}
}

func startFlood(ctx context.Context, proc *tapproofproc.Proc, token string, rate float64) (*flooder, error) {
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 1, NIRSPerUtil: -1, UtilityNames: []string{"bench-flood"}})
	if err != nil {
		return nil, err
	}
	if err := fleet.Enroll(ctx, proc.API(), token); err != nil {
		return nil, err
	}
	s := fleet.Sensors[0]
	nc, err := loadgen.NewBroker(proc.NATS(), proc.BrokerDir(), fleet).Device(s.Device.ID)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	replay, err := signed.SignReading(ctx, s.Key, s.Lead(2, time.Now()))
	if err != nil {
		return nil, err
	}
	big := make([]byte, 60<<10) // under the broker's 64 KiB; ingest refuses it as oversized
	for i := range big {
		big[i] = '{'
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &flooder{cancel: cancel, done: make(chan struct{})}
	logf("flood: device %s publishing at %.0f messages/s", s.Device.ID, rate)
	go func() {
		defer close(f.done)
		defer nc.Close()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-fctx.Done():
				return
			case <-tick.C:
			}
			data := replay
			if i%2 == 0 {
				data = big
			}
			fut, err := js.PublishMsgAsync(&nats.Msg{Subject: simulate.Subject(s.Lead(0, time.Now())), Data: data})
			if err != nil {
				continue
			}
			f.sent.Add(1)
			go func() {
				select {
				case <-fut.Ok():
				case err := <-fut.Err():
					var apiErr *jetstream.APIError
					if errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "rate_limited") {
						f.refused.Add(1)
					}
				case <-fctx.Done():
				}
			}()
		}
	}()
	return f, nil
}

func (f *flooder) stop() { f.cancel(); <-f.done }
