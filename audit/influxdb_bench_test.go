package audit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/influx"
)

var loaded = struct {
	sync.Mutex
	dbs map[int]string
}{dbs: map[int]string{}}

// loadInflux writes the points of f to a database of their own on the
// shared InfluxDB, as tapproof's writer does (influx.Writer, batches of
// 5,000), once per size, and returns the database.
func loadInflux(b *testing.B, base string, n int, f fixture) string {
	b.Helper()
	loaded.Lock()
	defer loaded.Unlock()
	if db, ok := loaded.dbs[n]; ok {
		return db
	}
	ctx := context.Background()
	db := fmt.Sprintf("audit_bench_%d", n)
	if err := influx.EnsureDatabase(ctx, base, "", db); err != nil {
		b.Fatal(err)
	}
	w, err := influx.New(influx.Config{URL: base, Database: db, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	const batch = 5000
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i := 0; i < len(f.accepted); i += batch {
		as := f.accepted[i:min(i+batch, len(f.accepted))]
		g.Go(func() error { return w.Write(gctx, as) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d points into InfluxDB in %s", len(f.accepted), time.Since(start).Round(time.Millisecond))
	loaded.dbs[n] = db
	return db
}

// BenchmarkAuditInfluxDB audits a synthetic log against a real InfluxDB
// 1.8.10 holding its points, written by tapproof's writer: the whole audit
// but for fetching the leaves, which come from memory. It compares reading
// InfluxDB in one chunked query (two chunk sizes) with time-bounded pages,
// and times reading the points alone. It loads a million points by
// default, which takes a few minutes, so it runs only with
// TAPPROOF_AUDIT_BENCH=1:
//
//	TAPPROOF_AUDIT_BENCH=1 go test -run '^$' -bench BenchmarkAuditInfluxDB -benchtime 1x -count 3 -timeout 30m ./audit/
func BenchmarkAuditInfluxDB(b *testing.B) {
	if os.Getenv("TAPPROOF_AUDIT_BENCH") != "1" {
		b.Skip("set TAPPROOF_AUDIT_BENCH=1 to load a real InfluxDB and audit it")
	}
	base := influxURL(b)
	for _, n := range benchSizes(b, 1_000_000) {
		f := synthetic(b, n)
		db := loadInflux(b, base, n, f)
		chunked := func(size int) audit.Store {
			c, err := audit.NewInflux(audit.InfluxConfig{URL: base, Database: db, ChunkSize: size})
			if err != nil {
				b.Fatal(err)
			}
			return c
		}
		stores := []struct {
			name  string
			store audit.Store
		}{
			{"chunked/chunk=10000", chunked(10_000)},
			{"chunked/chunk=50000", chunked(50_000)},
			{"pages/rows=50000", &pagedStore{url: base, db: db, rows: 50_000}},
		}
		for _, s := range stores {
			b.Run(fmt.Sprintf("leaves=%d/%s", n, s.name), func(b *testing.B) {
				for b.Loop() {
					auditClean(b, f, s.store, len(f.accepted))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/leaf")
			})
		}
		b.Run(fmt.Sprintf("leaves=%d/points-only/chunk=%d", n, audit.DefaultChunkSize), func(b *testing.B) {
			for b.Loop() {
				got := 0
				if err := chunked(0).Points(context.Background(), utility, func(*audit.Point) error { got++; return nil }); err != nil {
					b.Fatal(err)
				}
				if got != len(f.accepted) {
					b.Fatalf("%d points, want %d", got, len(f.accepted))
				}
			}
		})
	}
}

// pagedStore reads a utility's points in time-bounded pages of about rows
// rows each, one plain query a page, to compare with one chunked query.
type pagedStore struct {
	url, db string
	rows    int
}

func (s *pagedStore) Points(ctx context.Context, u string, fn func(*audit.Point) error) error {
	var first, last, count int64
	stat := func(f string, set func(p *audit.Point)) error {
		return s.query(ctx, fmt.Sprintf(`SELECT %s(seq) FROM reading WHERE utility = '%s'`, f, u), func(p *audit.Point) error {
			set(p)
			return nil
		})
	}
	if err := stat("first", func(p *audit.Point) { first = p.Time }); err != nil {
		return err
	}
	if err := stat("last", func(p *audit.Point) { last = p.Time }); err != nil {
		return err
	}
	if err := stat("count", func(p *audit.Point) {
		if len(p.Other) == 1 {
			count, _ = strconv.ParseInt(strings.TrimPrefix(p.Other[0], "count="), 10, 64)
		}
	}); err != nil {
		return err
	}
	if count == 0 {
		return nil
	}
	width := (last-first+1)*int64(s.rows)/count + 1
	for t := first; t <= last; t += width {
		q := fmt.Sprintf(`SELECT * FROM reading WHERE utility = '%s' AND time >= %d AND time < %d GROUP BY *`, u, t, t+width)
		if err := s.query(ctx, q, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *pagedStore) query(ctx context.Context, q string, fn func(*audit.Point) error) error {
	v := url.Values{"db": {s.db}, "q": {q}, "epoch": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/query?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return audit.ReadChunks(resp.Body, fn)
}
