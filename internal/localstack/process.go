package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// procSpec describes a long-running child process.
type procSpec struct {
	path    string
	args    []string
	env     []string            // nil means the parent's environment
	dir     string              // working directory
	logPath string              // receives stdout and stderr, appended
	stopSig syscall.Signal      // asks the program to shut down cleanly
	cred    *syscall.Credential // nil means the current user
}

// process is a started child. Its own goroutine reaps it; Close of the Stack
// stops it. Children get their own process group, so stop can kill
// whatever they forked, and a parent-death signal where the OS has one.
type process struct {
	cmd     *exec.Cmd
	stopSig syscall.Signal
	done    chan struct{} // closed once the child has been reaped
	err     error         // from cmd.Wait; read only after done is closed
}

func launch(spec procSpec) (*process, error) {
	f, err := os.OpenFile(spec.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	defer f.Close() // the child has its own copy
	fmt.Fprintf(f, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339), spec.path, strings.Join(spec.args, " "))

	cmd := exec.Command(spec.path, spec.args...)
	cmd.Dir = spec.dir
	cmd.Env = spec.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr(spec.stopSig)
	cmd.SysProcAttr.Credential = spec.cred
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, stopSig: spec.stopSig, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exitErr describes how p exited, or returns nil if it is still running.
func (p *process) exitErr() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// stop sends p its stop signal and waits up to timeout for it to exit; then
// it kills p's process group, so nothing p started survives.
func (p *process) stop(timeout time.Duration) error {
	pgid := p.cmd.Process.Pid
	defer syscall.Kill(-pgid, syscall.SIGKILL) // stragglers; ESRCH when none

	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(p.stopSig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	t.Reset(10 * time.Second)
	select {
	case <-p.done:
		return fmt.Errorf("killed after %v without exiting", timeout)
	case <-t.C:
		return fmt.Errorf("pid %d still running after SIGKILL", pgid)
	}
}

// readyPoll is how often await checks readiness.
const readyPoll = 100 * time.Millisecond

// await calls ready every readyPoll until it succeeds, p exits, timeout
// passes or ctx ends.
func await(ctx context.Context, p *process, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before ready: %v", p.exitErr())
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %v: %w", timeout, err)
			}
			return fmt.Errorf("not ready: %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// dialReady reports whether something accepts TCP connections on addr.
func dialReady(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// httpReady reports whether GET url answers with a 2xx status.
func httpReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// pickPorts sets every zero port to a distinct free loopback port. All
// listeners stay open until every port is chosen, so the picks differ.
func pickPorts(ports []*int) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, p := range ports {
		if *p != 0 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		*p = l.Addr().(*net.TCPAddr).Port
	}
	return nil
}

// portsFree reports the first of ports on which something already listens
// on 127.0.0.1.
func portsFree(ports []int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("port %d is in use: %w", p, err)
		}
		l.Close()
	}
	return nil
}

// environ returns the current environment without the variables for which
// drop returns true, plus extra.
func environ(drop func(key string) bool, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop == nil || !drop(k) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// tail returns at most the last n bytes of the file at path, from a line
// start.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return err.Error()
	}
	if off > 0 {
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
