package audit_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tapproof/tapproof/internal/localstack"
)

// The benchmark on a real InfluxDB 1.8.10 starts the local stack once, on
// first use, and TestMain stops it.
var stack struct {
	once sync.Once
	s    *localstack.Stack
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if stack.s != nil {
		if err := stack.s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "localstack:", err)
		}
		os.RemoveAll(stack.dir)
	}
	os.Exit(code)
}

// influxURL returns the base URL of the shared InfluxDB, starting the
// stack on first use.
func influxURL(tb testing.TB) string {
	tb.Helper()
	stack.once.Do(func() {
		if stack.dir, stack.err = os.MkdirTemp("", "audit-bench-"); stack.err != nil {
			return
		}
		_ = os.Chmod(stack.dir, 0o755) // the postgres user must enter it
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		stack.s, stack.err = localstack.Start(ctx, localstack.Config{Dir: stack.dir})
	})
	if stack.err != nil {
		tb.Fatalf("localstack: %v", stack.err)
	}
	return stack.s.InfluxURL
}
