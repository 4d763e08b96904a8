package influx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapproof/tapproof/internal/localstack"
)

// The package's integration tests share one real InfluxDB 1.8.10, started
// (with the rest of the local stack) by internal/localstack on first use;
// each test works in a database of its own.
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

// influxURL returns the base URL of the shared InfluxDB, starting it on
// first use. It skips the test in -short mode.
func influxURL(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("real InfluxDB is skipped in -short mode")
	}
	stack.once.Do(func() {
		if stack.dir, stack.err = os.MkdirTemp("", "influx-test-"); stack.err != nil {
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

// series is one series of an InfluxQL result.
type series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// influxQL runs q against db through /query and returns the series of its
// single statement. Times come back as integer nanoseconds.
func influxQL(tb testing.TB, base, db, q string) []series {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := url.Values{"db": {db}, "q": {q}, "epoch": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", strings.NewReader(v.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("query %q: %v", q, err)
	}
	defer resp.Body.Close()
	var out struct {
		Error   string `json:"error"`
		Results []struct {
			Error  string   `json:"error"`
			Series []series `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		tb.Fatalf("query %q: decoding: %v", q, err)
	}
	if out.Error != "" {
		tb.Fatalf("query %q: %s", q, out.Error)
	}
	if len(out.Results) != 1 {
		tb.Fatalf("query %q: %d results, want 1", q, len(out.Results))
	}
	if e := out.Results[0].Error; e != "" {
		tb.Fatalf("query %q: %s", q, e)
	}
	return out.Results[0].Series
}
