package audit_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/audit"
)

// benchSizes are the log sizes the benchmarks audit:
// $TAPPROOF_AUDIT_BENCH_N (comma-separated), else the given ones.
func benchSizes(tb testing.TB, def ...int) []int {
	v := os.Getenv("TAPPROOF_AUDIT_BENCH_N")
	if v == "" {
		return def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			tb.Fatalf("TAPPROOF_AUDIT_BENCH_N=%q: want sizes such as 100000,1000000", v)
		}
		out = append(out, n)
	}
	return out
}

// Devices and sites of the synthetic logs.
const (
	benchDevices = 100
	benchSites   = 20
)

var synthetics = struct {
	sync.Mutex
	m map[int]fixture
}{m: map[int]fixture{}}

// synthetic returns a log of n leaves as the field makes them: the
// enrollments of 100 lead sensors at 20 sites, then their readings, one
// every 100 ms among them, and a lab sample every 1,000 leaves; each leaf
// signed. It is built once per n (in parallel: about 15 s for a million).
func synthetic(tb testing.TB, n int) fixture {
	tb.Helper()
	synthetics.Lock()
	defer synthetics.Unlock()
	if f, ok := synthetics.m[n]; ok {
		return f
	}
	start := time.Now()
	f := fixture{leaves: make([]tapproof.Leaf, n)}
	kinds := make([]int, n) // 0 enrollment, 1 reading, 2 lab sample
	readings := make([]tapproof.Reading, n)
	samples := make([]tapproof.LabSample, n)
	seqs := make([]uint64, benchDevices)
	base := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at := base.Add(time.Duration(i) * 100 * time.Millisecond)
		switch {
		case i < benchDevices:
			kinds[i] = 0
		case i%1000 == 500:
			kinds[i] = 2
			samples[i] = tapproof.LabSample{Lab: lab, SampleID: fmt.Sprintf("S-%07d", i), Utility: utility,
				Site: fmt.Sprintf("home-%04d", i/1000), Tier: 1, Liter: tapproof.FirstLiter, Analyte: tapproof.Lead,
				Value: float64(i%29) + 0.5, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 0.5,
				CollectedAt: at, AnalyzedAt: at.Add(24 * time.Hour), Period: "2026H1"}
			f.accepted = append(f.accepted, tapproof.Accepted{Reading: samples[i].Reading(uint64(i)), Index: uint64(i)})
		default:
			kinds[i] = 1
			d := i % benchDevices
			seqs[d]++
			readings[i] = lead(fmt.Sprintf("pb-%03d", d), fmt.Sprintf("site-%02d", d%benchSites), seqs[d], 1+float64(i%97)/10, at)
			f.accepted = append(f.accepted, tapproof.Accepted{Reading: readings[i], Index: uint64(i)})
		}
	}
	b := &builder{tb: tb}
	parallel(n, func(i int) {
		var raw []byte
		switch kinds[i] {
		case 0:
			raw = b.sign(tapproof.EnrollmentPayloadType, tapproof.Enrollment{Device: fmt.Sprintf("pb-%03d", i), Utility: utility,
				Site: fmt.Sprintf("site-%02d", i%benchSites), Kind: tapproof.ASV, Firmware: firmware, EnrolledAt: base})
		case 1:
			raw = b.sign(tapproof.ReadingPayloadType, readings[i])
		case 2:
			raw = b.sign(tapproof.LabSamplePayloadType, samples[i])
		}
		f.leaves[i] = tapproof.Leaf{Index: uint64(i), Bytes: raw}
	})
	f.cp = checkpointOf(tb, f.leaves)
	tb.Logf("synthetic log of %d leaves (%d points) built in %s", n, len(f.accepted), time.Since(start).Round(time.Millisecond))
	synthetics.m[n] = f
	return f
}

// peakHeap runs fn once at GOGC=5, so that little garbage outlives a
// collection, sampling the heap's objects, and returns their peak above
// what they were before, in MiB: about the most fn holds at once.
func peakHeap(fn func()) float64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	before := read()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	peak = max(peak, read())
	return float64(peak-min(before, peak)) / (1 << 20)
}

// BenchmarkAudit audits synthetic logs against an in-memory InfluxDB that
// holds exactly their points: the read-back, the decoding of every leaf and
// the comparison, without the network. peak-heap-MiB is the most the audit
// holds at once, measured in one more, untimed, run (peakHeap).
//
//	go test -run '^$' -bench BenchmarkAudit$ -benchtime 1x -count 3 ./audit/
func BenchmarkAudit(b *testing.B) {
	for _, n := range benchSizes(b, 100_000, 1_000_000) {
		b.Run(fmt.Sprintf("leaves=%d", n), func(b *testing.B) {
			f := synthetic(b, n)
			st := written(b, f.accepted)
			b.ReportAllocs()
			for b.Loop() {
				auditClean(b, f, st, len(f.accepted))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/leaf")
			b.StopTimer()
			b.ReportMetric(peakHeap(func() { auditClean(b, f, st, len(f.accepted)) }), "peak-heap-MiB")
		})
	}
}

// auditClean audits f against st and fails unless it is clean with points
// points.
func auditClean(b *testing.B, f fixture, st audit.Store, points int) {
	b.Helper()
	rep, err := audit.Run(context.Background(), &memSource{f.leaves}, st, utility, f.cp)
	if err != nil {
		b.Fatal(err)
	}
	if !rep.Clean() || rep.Leaves != points || rep.Points != points {
		b.Fatalf("audit: %d leaves, %d points, %d findings; want %d, %d and none", rep.Leaves, rep.Points, len(rep.Findings), points, points)
	}
}
