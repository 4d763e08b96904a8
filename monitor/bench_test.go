package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/monitor"
	"github.com/tapproof/tapproof/signed"
)

// benchLeaves is the number of leaves of BenchmarkFirstPass's log:
// $TAPPROOF_MONITOR_BENCH_LEAVES, 100,000 by default.
func benchLeaves(b *testing.B) int {
	if s := os.Getenv("TAPPROOF_MONITOR_BENCH_LEAVES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 200 {
			b.Fatalf("TAPPROOF_MONITOR_BENCH_LEAVES=%q: want a number of leaves, at least 200", s)
		}
		return n
	}
	return 100_000
}

// staticLog is a log of fixed leaves and its one checkpoint, served as the
// platform serves it (httpapi.Logs), or directly (monitor.API).
type staticLog struct {
	unused
	leaves     [][]byte
	checkpoint []byte
	verifier   note.Verifier
}

var (
	benchLogOnce sync.Once
	benchLog     *staticLog
)

// newStaticLog builds a log of n leaves: 100 enrollments, then readings of
// those devices in turn, each signed by its device, signed in parallel.
func newStaticLog(b *testing.B, n int) *staticLog {
	benchLogOnce.Do(func() {
		start := time.Now()
		tl := newTestLog(b)
		const devices = 100
		sensors := make([]*sensor, devices)
		leaves := make([][]byte, n)
		for i := range sensors {
			sensors[i] = newSensor(b, fmt.Sprintf("pb-%d", i))
			leaves[i] = sensors[i].enrollment(b)
		}
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		errs := make([]error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := devices + w; i < n && errs[w] == nil; i += workers {
					s := sensors[i%devices]
					r := s.readingOf(float64(i % 13))
					r.Seq = uint64(i/devices) + 1
					leaves[i], errs[w] = signed.SignReading(context.Background(), s.key, r)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
		for _, l := range leaves {
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
				b.Fatal(err)
			}
		}
		root, err := rng.GetRootHash(nil)
		if err != nil {
			b.Fatal(err)
		}
		cp, err := anchor.SignCheckpoint(tl.signer, uint64(n), root)
		if err != nil {
			b.Fatal(err)
		}
		benchLog = &staticLog{leaves: leaves, checkpoint: cp, verifier: tl.verifier}
		b.Logf("built a log of %d signed leaves in %s", n, time.Since(start).Round(time.Millisecond))
	})
	if len(benchLog.leaves) != n {
		b.Fatalf("the log has %d leaves, want %d", len(benchLog.leaves), n)
	}
	return benchLog
}

// The httpapi.Logs of the static log.

func (l *staticLog) LatestCheckpoint(context.Context, string) ([]byte, error) {
	return l.checkpoint, nil
}
func (l *staticLog) ConsistencyProof(context.Context, string, uint64, uint64) ([][]byte, error) {
	return nil, tapproof.ErrNotFound
}
func (l *staticLog) Leaves(_ context.Context, _ string, start, count uint64) ([][]byte, error) {
	end := min(start+count, uint64(len(l.leaves)))
	if start >= end {
		return nil, nil
	}
	return l.leaves[start:end], nil
}

// memoryAPI is the static log as a monitor.API, without HTTP.
type memoryAPI struct{ l *staticLog }

func (a memoryAPI) Checkpoint(context.Context, string) ([]byte, error) { return a.l.checkpoint, nil }
func (a memoryAPI) ConsistencyProof(context.Context, string, uint64, uint64) ([][]byte, error) {
	return nil, tapproof.ErrNotFound
}
func (a memoryAPI) Leaves(_ context.Context, _ string, start, count uint64) ([]tapproof.Leaf, error) {
	end := min(start+count, uint64(len(a.l.leaves)))
	out := make([]tapproof.Leaf, 0, end-start)
	for i := start; i < end; i++ {
		out = append(out, tapproof.Leaf{Index: i, Bytes: a.l.leaves[i]})
	}
	return out, nil
}

// BenchmarkFirstPass runs a monitor's first pass over a log of
// benchLeaves signed leaves (100 enrollments, then readings): every leaf
// read, hashed into the tree and checked, every signature verified. With
// api=http the log is served by the platform's own API handler in the
// same process (so on the same cores), and read through httpapi.Client;
// with api=memory the leaves are handed over directly, which is the
// monitor's own cost.
//
//	TAPPROOF_MONITOR_BENCH_LEAVES=1000000 go test -run '^$' -bench FirstPass -benchtime 1x ./monitor/
func BenchmarkFirstPass(b *testing.B) {
	n := benchLeaves(b)
	l := newStaticLog(b, n)
	h := httpapi.Handler(httpapi.Config{Logs: l, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, api := range []struct {
		name string
		api  monitor.API
	}{
		{"http", &httpapi.Client{BaseURL: srv.URL, HTTP: srv.Client()}},
		{"memory", memoryAPI{l}},
	} {
		b.Run("api="+api.name, func(b *testing.B) {
			var took, cpu time.Duration
			for b.Loop() {
				m, err := monitor.New(monitor.Config{
					API: api.api, Logs: []monitor.Log{{Utility: utility, Key: l.verifier}}, StateDir: b.TempDir(),
				})
				if err != nil {
					b.Fatal(err)
				}
				start, cpu0 := time.Now(), cpuTime(b)
				res := m.Once(context.Background())
				took += time.Since(start)
				cpu += cpuTime(b) - cpu0
				m.Close()
				if !res.Clean() || res.Logs[0].Size != uint64(n) {
					b.Fatalf("first pass = %+v", res.Logs[0])
				}
			}
			leaves := float64(n) * float64(b.N)
			b.ReportMetric(float64(took.Nanoseconds())/leaves, "ns/leaf")
			b.ReportMetric(leaves/took.Seconds(), "leaves/s")
			b.ReportMetric(took.Seconds()/float64(b.N)*1e6/float64(n), "s/1M-leaves")
			// On a machine shared with others the wall time says little;
			// the CPU time the process spent (the server's too, with
			// api=http) divided by the cores is what an idle machine
			// would take.
			b.ReportMetric(float64(cpu.Nanoseconds())/leaves, "cpu-ns/leaf")
		})
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
