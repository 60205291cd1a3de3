package caddymodule

import "time"

// SetClock pins the handlers' clock until the returned func is called.
func SetClock(f func() time.Time) (restore func()) {
	testClock.Store(&f)
	return func() { testClock.Store(nil) }
}
