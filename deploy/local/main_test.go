package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStopAfterExit: a child whose exit the demo already noticed (the
// simulator dying, say) is stopped at once. stop used to wait for an exit
// status that had already been taken, and the demo hung on Ctrl-C.
func TestStopAfterExit(t *testing.T) {
	c, err := startChild("/bin/sh", os.Environ(), filepath.Join(t.TempDir(), "child.log"), "-c", "exit 3")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("child did not exit")
	}
	if c.err == nil {
		t.Error("exit status 3 not reported")
	}
	stopped := make(chan struct{})
	go func() { c.stop("sh", time.Second); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop of a child that had exited did not return")
	}
}
