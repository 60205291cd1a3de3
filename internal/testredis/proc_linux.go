package testredis

import "syscall"

// sysProcAttr has the kernel kill redis-server if the test binary dies
// (a panic or -timeout skips t.Cleanup), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
