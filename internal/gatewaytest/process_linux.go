package gatewaytest

import "syscall"

// sysProcAttr has the kernel kill a gateway process if the test binary
// dies (a panic or -timeout skips t.Cleanup), so none outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
