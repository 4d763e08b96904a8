// Command logscale measures what a regulator's tools cost on a large log,
// on the real stack: `tapproof monitor --once` over a log of N leaves from
// an empty state (its first pass), and `tapproof audit` of N readings in
// InfluxDB against that log, each beside a baseline measured in the same
// run (reading every leaf back through the API without checking anything,
// and one InfluxQL query of every point).
//
// It starts the stack and `tapproof serve`, enrolls a fleet (which creates
// the log), then appends N signed readings of that fleet to the log's
// journal, as ingest does once it has verified them; tapproof's own anchor,
// checkpointer and InfluxDB sink take them from there, as they would any
// reading. Publishing them through the broker would take this machine far
// longer and measure ingest, which bench does.
//
//	go run ./bench/logscale -leaves 1000000 -runs 3
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/trillian"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/internal/loadgen"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/tapproofproc"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
	"github.com/tapproof/tapproof/simulate"
)

const utility = "scale"

func main() {
	leaves := flag.Int("leaves", 1_000_000, "readings to put in the log and in InfluxDB")
	runs := flag.Int("runs", 3, "runs of each measurement; the median is reported")
	keep := flag.Bool("keep", false, "keep the stack's directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *leaves, *runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "logscale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, runs int, keep bool) error {
	dir, err := os.MkdirTemp("", "tapproof-logscale-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	_ = os.Chmod(dir, 0o755) // the postgres user must enter it
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
	token := rand.Text()
	data := filepath.Join(dir, "data")
	proc, err := tapproofproc.Start(ctx, tapproofproc.Config{
		Binary: bin, DataDir: data, TrillianAddr: st.TrillianAddr, InfluxURL: st.InfluxURL, InfluxDB: st.InfluxDatabase,
		AdminToken: token, LogFile: filepath.Join(dir, "tapproof.log"), Args: []string{"--checkpoint-interval", "1s"},
	})
	if err != nil {
		return err
	}
	defer proc.Stop()

	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 20, LeadPerSite: 10, NIRSPerUtil: -1, UtilityNames: []string{utility}})
	if err != nil {
		return err
	}
	if err := fleet.Enroll(ctx, proc.API(), token); err != nil {
		return err
	}
	client := &httpapi.Client{BaseURL: proc.API()}
	enrolled := uint64(len(fleet.Sensors))
	logKey, err := waitSize(ctx, proc.API(), enrolled)
	if err != nil {
		return err
	}

	logf("signing %d readings", n)
	msgs, err := loadgen.Presign(ctx, fleet, n, nil)
	if err != nil {
		return err
	}
	logf("appending them to the log's journal after its %d enrollments", enrolled)
	begin := time.Now()
	j, nc, err := operatorJournal(ctx, proc, fleet, data)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := appendReadings(ctx, j, fleet, msgs); err != nil {
		return err
	}
	logf("journaled in %v; tapproof's anchor and InfluxDB sink take them from there", time.Since(begin).Round(time.Second))
	msgs = nil
	total := enrolled + uint64(n)
	if _, err := waitSize(ctx, proc.API(), total); err != nil {
		return err
	}
	if err := waitInflux(ctx, j, total); err != nil {
		return err
	}
	logf("log of %d leaves anchored, checkpointed and in InfluxDB in %v", total, time.Since(begin).Round(time.Second))
	lg, err := openLog(ctx, st.TrillianAddr, data, logKey)
	if err != nil {
		return err
	}

	var fromTree, readBack, monitor, influxAll, audit []float64
	for r := range runs {
		logf("run %d of %d", r+1, runs)
		t, err := timed(func() error { return readTree(ctx, lg, total) })
		if err != nil {
			return err
		}
		fromTree = append(fromTree, t)
		t, err = timed(func() error { return readAll(ctx, client, total) })
		if err != nil {
			return err
		}
		readBack = append(readBack, t)
		state := filepath.Join(dir, fmt.Sprintf("monitor-%d", r))
		t, err = timed(func() error {
			return tapproofCmd(ctx, bin, "monitor", "--once", "--server", proc.API(), "--log", utility+"="+logKey, "--state", state)
		})
		if err != nil {
			return err
		}
		monitor = append(monitor, t)
		t, err = timed(func() error { return influxQuery(ctx, st) })
		if err != nil {
			return err
		}
		influxAll = append(influxAll, t)
		t, err = timed(func() error {
			return tapproofCmd(ctx, bin, "audit", "--server", proc.API(), "--utility", utility, "--log-key", logKey,
				"--influx-url", st.InfluxURL, "--influx-db", st.InfluxDatabase)
		})
		if err != nil {
			return err
		}
		audit = append(audit, t)
	}
	fmt.Printf("log of %d leaves (%d readings), %d runs, medians (each run):\n", total, n, runs)
	row := func(name string, xs, base []float64) {
		fmt.Printf("  %-58s %7.1f s  %s", name, median(xs), each(xs))
		if base != nil {
			fmt.Printf("  ÷ baseline %.2f", median(ratios(xs, base)))
		}
		fmt.Println()
	}
	row("read every leaf straight from Trillian, 1,000 a call", fromTree, nil)
	row("baseline: read every leaf back through the API", readBack, nil)
	row("tapproof monitor --once, first pass", monitor, readBack)
	row("baseline: one InfluxQL query of every point", influxAll, nil)
	row("tapproof audit (reads the log back too)", audit, influxAll)
	return nil
}

// waitSize waits until the log's served checkpoint has size n and returns
// its verifier key.
func waitSize(ctx context.Context, api string, n uint64) (string, error) {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(api + "/v1/logs")
		if err == nil {
			var ls []httpapi.LogSummary
			_ = json.NewDecoder(resp.Body).Decode(&ls) // none found: poll again
			resp.Body.Close()
			for _, l := range ls {
				if l.Utility == utility && l.Size >= n {
					return l.VerifierKey, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("the log did not reach %d leaves", n)
}

// openLog opens the log's Trillian tree for appending, with the key
// tapproof keeps for it.
func openLog(ctx context.Context, addr, data, vkey string) (*anchor.Log, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	trees, err := trillian.NewTrillianAdminClient(conn).ListTrees(ctx, &trillian.ListTreesRequest{})
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("list trees: %w", err)
	}
	i := slices.IndexFunc(trees.Tree, func(t *trillian.Tree) bool { return strings.HasSuffix(t.DisplayName, utility) })
	if i < 0 {
		return nil, fmt.Errorf("no Trillian tree for %s", utility)
	}
	skey, err := os.ReadFile(filepath.Join(data, "keys", utility+".note-key"))
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(string(skey))
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	c, err := anchor.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.Log(anchor.LogConfig{TreeID: trees.Tree[i].TreeId, Origin: verifier.Name(), Signer: signer, Verifier: verifier, BatchSize: 500})
}

// operatorJournal opens the journal as tapproof serve's service user (the
// operator's reads only), sealing with the key tapproof keeps in data;
// close the connection when done.
func operatorJournal(ctx context.Context, proc *tapproofproc.Proc, fleet *simulate.Fleet, data string) (*journal.Journal, *nats.Conn, error) {
	nc, err := loadgen.NewBroker(proc.NATS(), proc.BrokerDir(), fleet).Service()
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		var key []byte
		if key, err = journal.LoadOrCreateSealKey(filepath.Join(data, "journal-seal.key")); err == nil {
			var j *journal.Journal
			if j, err = journal.Open(ctx, js, journal.WithSealKey(key)); err == nil {
				return j, nc, nil
			}
		}
	}
	nc.Close()
	return nil, nil, err
}

// appendReadings appends the signed readings to the log's journal as
// ingest does once it has verified them, with the journal's seal and each
// device's head, from a few writers at once (each with its own devices).
func appendReadings(ctx context.Context, j *journal.Journal, fleet *simulate.Fleet, msgs []loadgen.Msg) error {
	const writers = 8
	byDevice := map[string]int{}
	for i, s := range fleet.Sensors {
		byDevice[s.Device.ID] = i % writers
	}
	g, ctx := errgroup.WithContext(ctx)
	for w := range writers {
		g.Go(func() error {
			heads := map[string]uint64{}
			for _, m := range msgs {
				if byDevice[m.Device] != w {
					continue
				}
				head, ok := heads[m.Device]
				if !ok {
					h, err := j.Head(ctx, utility, m.Device)
					if err != nil {
						return err
					}
					head = h.StreamSeq
				}
				r, err := signed.LoggedReading(m.Data)
				if err != nil {
					return err
				}
				idx, err := j.AppendReading(ctx, r, m.Data, head)
				if err != nil {
					return fmt.Errorf("append %s: %w", m.Key(), err)
				}
				heads[m.Device] = idx + 1
			}
			return nil
		})
	}
	return g.Wait()
}

// waitInflux waits until tapproof's InfluxDB sink has stored the first n
// entries of the log.
func waitInflux(ctx context.Context, j *journal.Journal, n uint64) error {
	for {
		p, err := j.CursorProgress(ctx, utility, "influx")
		if err != nil {
			return err
		}
		if p.Done >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// readTree reads every leaf straight from the log's Trillian tree.
func readTree(ctx context.Context, lg *anchor.Log, n uint64) error {
	return readPages(ctx, n, func(start uint64) (int, error) {
		page, err := lg.Leaves(ctx, start, 1000)
		return len(page), err
	})
}

// readAll reads every leaf back through the API, checking nothing.
func readAll(ctx context.Context, c *httpapi.Client, n uint64) error {
	return readPages(ctx, n, func(start uint64) (int, error) {
		page, err := c.Leaves(ctx, utility, start, 1000)
		return len(page), err
	})
}

// readPages reads leaves [0, n) a page at a time with read, which returns
// how many it read from start.
func readPages(ctx context.Context, n uint64, read func(start uint64) (int, error)) error {
	for start := uint64(0); start < n; {
		got, err := read(start)
		if err != nil {
			return err
		}
		if got == 0 {
			return fmt.Errorf("no leaves from %d", start)
		}
		start += uint64(got)
	}
	return ctx.Err()
}

// influxQuery fetches every point of the utility with one chunked query.
func influxQuery(ctx context.Context, st *localstack.Stack) error {
	q := url.Values{"db": {st.InfluxDatabase}, "chunked": {"true"}, "chunk_size": {"10000"},
		"q": {fmt.Sprintf(`SELECT * FROM reading WHERE "utility" = '%s'`, utility)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.InfluxURL+"/query?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return err
}

func tapproofCmd(ctx context.Context, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tapproof %s: %w\n%s", args[0], err, tail(out.Bytes()))
	}
	return nil
}

func timed(f func() error) (float64, error) {
	begin := time.Now()
	err := f()
	return time.Since(begin).Seconds(), err
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratios(xs, base []float64) []float64 {
	out := make([]float64, len(xs))
	for i := range xs {
		out[i] = xs[i] / base[i]
	}
	return out
}

func each(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.1f", x))
	}
	return "(" + strings.Join(parts, " / ") + ")"
}

func tail(b []byte) []byte { return b[max(len(b)-2000, 0):] }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "logscale: "+format+"\n", args...)
}
