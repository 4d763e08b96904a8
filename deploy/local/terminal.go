package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeTerminal makes the demo, alone, the foreground process group of its
// controlling terminal, so that Ctrl-C reaches the demo and not the
// programs that started it, and returns the function that gives the
// terminal back to them.
//
// Under `make demo` the terminal sends SIGINT to make as well as to the
// demo, and GNU make, once its child has exited, kills itself with that
// signal: the shell then sees `make demo` fail (status 130, "Interrupt")
// however cleanly the demo stopped. Out of the foreground, make sees only
// the demo's exit status. The demo's children run in process groups of
// their own (startChild, internal/localstack) and are stopped by the demo,
// in order.
//
// It does nothing without a controlling terminal, in the background, or
// when the demo already leads the foreground group (run by an interactive
// shell directly).
func takeTerminal() (giveBack func()) {
	nothing := func() {}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nothing
	}
	fd := int(tty.Fd())
	orig := syscall.Getpgrp()
	if fg, err := tcgetpgrp(fd); err != nil || fg != orig || orig == os.Getpid() {
		tty.Close()
		return nothing
	}
	if err := syscall.Setpgid(0, 0); err != nil {
		tty.Close()
		return nothing
	}
	// The demo's group is now in the background, and a background group
	// changing the foreground is sent SIGTTOU (stopping it) unless it
	// ignores that.
	signal.Ignore(syscall.SIGTTOU)
	err = tcsetpgrp(fd, os.Getpid())
	signal.Reset(syscall.SIGTTOU)
	if err != nil {
		_ = syscall.Setpgid(0, orig)
		tty.Close()
		return nothing
	}
	// Ctrl-Z would stop the demo alone, while the shell waits for make,
	// which is not stopped: the terminal would hang. The demo does not
	// stop; Ctrl-C ends it. (A handler, unlike SIG_IGN, is not inherited
	// by the children.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTSTP)
	return func() {
		signal.Ignore(syscall.SIGTTOU)
		_ = tcsetpgrp(fd, orig)
		tty.Close()
	}
}

func tcgetpgrp(fd int) (int, error) { return unix.IoctlGetInt(fd, unix.TIOCGPGRP) }

func tcsetpgrp(fd, pgid int) error { return unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgid) }
