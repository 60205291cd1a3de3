//go:build !linux

package testredis

import (
	"errors"
	"syscall"
	"time"
)

// sysProcAttr: outside Linux there is no parent-death signal; servers
// are still stopped by t.Cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// CPUTime needs /proc, which only Linux has.
func (s *Server) CPUTime() (time.Duration, error) {
	return 0, errors.New("testredis: CPUTime needs Linux's /proc")
}
