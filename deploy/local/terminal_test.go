//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestCtrlCUnderMake: Ctrl-C typed at a terminal running the demo under
// make ends make with status 0. The terminal sends SIGINT to its
// foreground process group; were make in it, GNU make would kill itself
// with SIGINT after the demo had exited 0. The demo here is this test
// binary running demo (TestDemoHelper) on a pseudo-terminal, under
// `sh -c 'make ...; echo ...'` as an interactive shell would start it.
func TestCtrlCUnderMake(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make")
	}
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()

	mk := filepath.Join(t.TempDir(), "Makefile")
	recipe := fmt.Sprintf("demo:\n\t%s -test.run=^TestDemoHelper$$\n", os.Args[0])
	if err := os.WriteFile(mk, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("/bin/sh", "-c", `"$0" -s -f "$1" demo; echo "make exited $?"`, makeBin, mk)
	sh.Env = append(os.Environ(), "TAPPROOF_DEMO_HELPER=1")
	sh.Stdin, sh.Stdout, sh.Stderr = slave, slave, slave
	// A session of its own whose controlling terminal is the pty: sh's
	// group is the terminal's foreground, as a shell's job is.
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	read := make(chan struct{})
	go func() {
		defer close(read)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			mu.Lock()
			out.Write(b[:n])
			mu.Unlock()
			if err != nil { // EIO once no process has the terminal open
				return
			}
		}
	}()
	output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	var helper int
	defer func() {
		_ = syscall.Kill(-sh.Process.Pid, syscall.SIGKILL)
		if helper > 0 {
			_ = syscall.Kill(-helper, syscall.SIGKILL)
			_ = syscall.Kill(helper, syscall.SIGKILL)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, rest, ok := strings.Cut(output(), "helper ready, pid "); ok {
			if f := strings.Fields(rest); len(f) > 0 && strings.Contains(rest, "\n") {
				helper, _ = strconv.Atoi(f[0])
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper did not start; output:\n%s", output())
		}
	}
	if _, err := master.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sh.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sh: %v (killed by the SIGINT meant for the demo?)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after Ctrl-C; output:\n%s", output())
	}
	select {
	case <-read:
	case <-time.After(5 * time.Second):
	}
	got := output()
	if !strings.Contains(got, "demo: stopped") {
		t.Errorf("the demo did not report stopping; output:\n%s", got)
	}
	if !strings.Contains(got, "make exited 0") {
		t.Errorf("make did not exit 0 after Ctrl-C; output:\n%s", got)
	}
}

// TestDemoHelper is the demo of TestCtrlCUnderMake: it waits for Ctrl-C
// and exits with the status demo returns.
func TestDemoHelper(t *testing.T) {
	if os.Getenv("TAPPROOF_DEMO_HELPER") == "" {
		t.Skip("run by TestCtrlCUnderMake")
	}
	os.Exit(demo(func(ctx context.Context) error {
		fmt.Printf("helper ready, pid %d\n", os.Getpid())
		<-ctx.Done()
		return nil
	}))
}

// openPTY opens a pseudo-terminal's master and slave.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		master.Close()
		return nil, nil, errno
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		master.Close()
		return nil, nil, errno
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}
