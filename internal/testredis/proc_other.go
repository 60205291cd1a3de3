//go:build !linux

package testredis

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; servers
// are still stopped by t.Cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
