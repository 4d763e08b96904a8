package localstack

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel send
// it sig if the thread that started it dies, so a killed test binary does
// not leave the child running.
func sysProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}
