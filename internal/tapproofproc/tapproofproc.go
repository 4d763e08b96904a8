// Package tapproofproc runs the tapproof binary as a child process against a
// local stack, for the load benchmark and the fault tests, which need to
// kill it with SIGKILL and measure its memory. It is never imported by
// production code.
package tapproofproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles cmd/tapproof into dir and returns the binary's path. It
// finds the module root by walking up from the working directory.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tapproof")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tapproof")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build tapproof: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tapproofproc: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Config is how to run `tapproof serve`.
type Config struct {
	Binary       string
	DataDir      string
	TrillianAddr string
	InfluxURL    string
	InfluxDB     string
	AdminToken   string
	LogFile      string   // child output, appended
	Args         []string // extra flags
	// HTTPPort and NATSPort are kept across restarts; zero picks free ones.
	HTTPPort, NATSPort int
}

// Proc is a running (or stopped) tapproof serve.
type Proc struct {
	cfg Config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	peak int64 // highest VmHWM seen, kB
}

// Start starts tapproof and waits until /readyz answers 200.
func Start(ctx context.Context, cfg Config) (*Proc, error) {
	for _, p := range []*int{&cfg.HTTPPort, &cfg.NATSPort} {
		if *p == 0 {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			*p = port
		}
	}
	p := &Proc{cfg: cfg}
	return p, p.Restart(ctx)
}

// API is tapproof's HTTP base URL.
func (p *Proc) API() string { return fmt.Sprintf("http://127.0.0.1:%d", p.cfg.HTTPPort) }

// NATS is the embedded NATS server's URL.
func (p *Proc) NATS() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.cfg.NATSPort) }

// PID is the running process's id, or 0.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Restart starts tapproof again on the same data and ports. The previous
// process must have exited.
func (p *Proc) Restart(ctx context.Context) error {
	c := p.cfg
	args := append([]string{"serve", "--data", c.DataDir,
		"--http", fmt.Sprintf("127.0.0.1:%d", c.HTTPPort), "--nats-listen", fmt.Sprintf("127.0.0.1:%d", c.NATSPort),
		"--trillian", c.TrillianAddr, "--influx-url", c.InfluxURL, "--influx-db", c.InfluxDB,
		"--log-level", "warn"}, c.Args...)
	cmd := exec.Command(c.Binary, args...)
	cmd.Env = append(os.Environ(), "TAPPROOF_ADMIN_TOKEN="+c.AdminToken)
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start tapproof: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.API() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("tapproof exited while starting: %v (see %s)", err, c.LogFile)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("tapproof not ready after 60s")
		}
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the process to go.
func (p *Proc) Kill() error { return p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for a clean exit.
func (p *Proc) Stop() error { return p.signal(syscall.SIGTERM) }

func (p *Proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	p.sampleMemory()
	_ = cmd.Process.Signal(sig)
	select {
	case err := <-done:
		done <- err
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		if sig == syscall.SIGKILL {
			return nil
		}
		return err
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("tapproof did not stop within 60s of %v", sig)
	}
}

// sampleMemory records the process's peak resident set (VmHWM).
func (p *Proc) sampleMemory() {
	pid := p.PID()
	if pid == 0 {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			if err == nil {
				p.mu.Lock()
				p.peak = max(p.peak, kb)
				p.mu.Unlock()
			}
		}
	}
}

// PeakRSS is the highest resident set size seen, in bytes.
func (p *Proc) PeakRSS() int64 {
	p.sampleMemory()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak * 1024
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// BrokerDir is where tapproof keeps its broker's keys and local CA.
func (p *Proc) BrokerDir() string { return filepath.Join(p.cfg.DataDir, "broker") }
