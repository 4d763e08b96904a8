package localstack

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// ForTest starts a stack in a fresh temporary directory and returns it. It
// registers a cleanup that closes the stack, logs the end of every
// component's log file if the test failed, and removes the directory.
// Progress lines go to tb.Log. ForTest skips the test in -short mode; it
// fails the test if the stack does not start.
//
// The first run on a machine builds InfluxDB and Trillian, which takes
// several minutes; give such a run a -timeout above the default 10m.
func ForTest(tb testing.TB) *Stack {
	tb.Helper()
	if testing.Short() {
		tb.Skip("localstack: real PostgreSQL, Trillian and InfluxDB are skipped in -short mode")
	}
	// Not tb.TempDir: it is private to root, and the postgres user must be
	// able to enter the directory.
	dir, err := os.MkdirTemp("", "localstack-")
	if err != nil {
		tb.Fatalf("localstack: %v", err)
	}
	tb.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			tb.Errorf("localstack: %v", err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatalf("localstack: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testStartTimeout(tb))
	defer cancel()
	s, err := Start(ctx, Config{Dir: dir, Log: tbWriter{tb}})
	if err != nil {
		tb.Fatalf("localstack: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("localstack: %v", err)
		}
		if tb.Failed() {
			s.logTails(tb)
		}
	})
	return s
}

// testStartTimeout is the time left before the test binary's deadline,
// minus a margin for cleanup, or 15 minutes when there is no deadline.
func testStartTimeout(tb testing.TB) time.Duration {
	if t, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := t.Deadline(); ok {
			return max(time.Until(d)-30*time.Second, time.Second)
		}
	}
	return 15 * time.Minute
}

// logTails logs the end of every component's log file.
func (s *Stack) logTails(tb testing.TB) {
	tb.Helper()
	for c := range numComponents {
		tb.Logf("localstack: end of %s:\n%s", s.LogFile(c), tail(s.LogFile(c), 16<<10))
	}
}

// tbWriter turns writes into tb.Log lines.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
