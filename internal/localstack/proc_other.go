//go:build !linux

package localstack

import "syscall"

// sysProcAttr puts a child in its own process group. Only Linux has a
// parent-death signal.
func sysProcAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
