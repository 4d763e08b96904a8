package influx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file starts a real InfluxDB 1.8.10 for the package's integration
// tests. It is a stand-in until internal/localstack is ready.

// influxdPath is where the tapproof toolchain cache keeps influxd 1.8.10;
// TAPPROOF_INFLUXD overrides it.
const influxdPath = "/root/.cache/tapproof/bin/influxd-v1.8.10/influxd"

var influxd struct {
	once sync.Once
	url  string
	err  error
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	log  *lockedBuffer
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopInfluxd()
	os.Exit(code)
}

// influxURL returns the base URL of a shared InfluxDB 1.8.10 started on
// free loopback ports, starting it on first use. It skips the test only if
// the influxd binary is missing.
func influxURL(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv("TAPPROOF_INFLUXD")
	if bin == "" {
		bin = influxdPath
	}
	if _, err := os.Stat(bin); err != nil {
		tb.Skipf("InfluxDB 1.8.10 binary not found at %s (set TAPPROOF_INFLUXD, or build it: GOBIN=%s go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10): %v",
			bin, filepath.Dir(influxdPath), err)
	}
	influxd.once.Do(func() { influxd.url, influxd.err = startInfluxd(bin) })
	if influxd.err != nil {
		tb.Fatalf("starting influxd: %v", influxd.err)
	}
	return influxd.url
}

func startInfluxd(bin string) (string, error) {
	dir, err := os.MkdirTemp("", "tapproof-influxd-*")
	if err != nil {
		return "", err
	}
	influxd.dir = dir
	httpPort, err := freePort()
	if err != nil {
		return "", err
	}
	rpcPort, err := freePort()
	if err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
[logging]
  level = "warn"
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return "", err
	}
	influxd.log = &lockedBuffer{}
	cmd := exec.Command(bin, "run", "-config", confPath)
	cmd.Stdout = influxd.log
	cmd.Stderr = influxd.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	influxd.cmd = cmd
	influxd.done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(influxd.done) }()

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return base, nil
			}
		}
		select {
		case <-influxd.done:
			return "", fmt.Errorf("influxd exited: %s", influxd.log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("influxd not answering /ping after 90s: %s", influxd.log.String())
		}
	}
}

func stopInfluxd() {
	if influxd.cmd != nil {
		_ = influxd.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-influxd.done:
		case <-time.After(15 * time.Second):
			_ = influxd.cmd.Process.Kill()
			<-influxd.done
		}
	}
	if influxd.dir != "" {
		os.RemoveAll(influxd.dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
