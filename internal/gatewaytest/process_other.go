//go:build !linux

package gatewaytest

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; gateway
// processes are still stopped by t.Cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
