package store

import (
	"errors"
	"time"
)

// maxWindow bounds Burst × interval so that every sum the GCRA makes
// (Unix microseconds plus the window) stays below 2^53, where Lua's
// doubles are still exact integers and Redis agrees with Go.
const maxWindow = 1 << 52

// Limit is a GCRA (generic cell rate algorithm) limit: Count events per
// Period, evenly spaced, with up to Burst of them at once.
//
// The emission interval is Period/Count, truncated to the microsecond
// (the resolution of Redis TIME), so both stores compute the same
// schedule.
type Limit struct {
	Count  int64
	Period time.Duration
	// Burst is how many events may arrive at once after a quiet spell
	// (the bucket's capacity). 0 means Count: a full period's worth.
	Burst int64
}

// Validate reports a limit the GCRA cannot pace.
func (l Limit) Validate() error {
	switch {
	case l.Count <= 0:
		return errors.New("limit count must be positive")
	case l.Period <= 0:
		return errors.New("limit period must be positive")
	case l.Burst < 0:
		return errors.New("limit burst must not be negative")
	case l.IntervalMicros() < 1:
		return errors.New("limit too fast: more than one event per microsecond")
	case l.Capacity() > maxWindow/l.IntervalMicros():
		return errors.New("limit window (burst × interval) too large")
	}
	return nil
}

// Capacity is the effective burst.
func (l Limit) Capacity() int64 {
	if l.Burst == 0 {
		return l.Count
	}
	return l.Burst
}

// IntervalMicros is the emission interval in microseconds.
func (l Limit) IntervalMicros() int64 {
	return l.Period.Microseconds() / l.Count
}

// Decision is a rate-limit outcome with what the handler needs for
// Retry-After and the RateLimit-Limit/-Remaining/-Reset headers.
type Decision struct {
	Allowed bool
	// Limit is the capacity (Limit.Capacity): the most events that can
	// be admitted at once. 0 when no limit applied.
	Limit int64
	// Remaining is how many more events would be admitted right now.
	Remaining int64
	// RetryAfter is, when refused, how long until one event would be
	// admitted.
	RetryAfter time.Duration
	// Reset is how long until the full capacity is available again.
	Reset time.Duration
}

// GCRA decides one event at now, given the stored theoretical arrival
// time tat (both in Unix microseconds; tat 0 when nothing is stored).
// It returns whether the event is admitted and the TAT to report to
// Decide; when allowed that is also the TAT to store, and when refused
// nothing must be written. The Redis script implements exactly this, so
// keep the two in step.
func GCRA(l Limit, now, tat int64) (allowed bool, newTAT int64) {
	interval := l.IntervalMicros()
	if tat < now {
		tat = now
	}
	next := tat + interval
	if next-now > l.Capacity()*interval {
		return false, tat
	}
	return true, next
}

// Decide turns the GCRA outcome into the numbers reported to the
// client. Both stores call it with what GCRA (or the script) returned,
// so their headers agree to the microsecond.
func (l Limit) Decide(allowed bool, now, tat int64) Decision {
	interval, capacity := l.IntervalMicros(), l.Capacity()
	d := Decision{Allowed: allowed, Limit: capacity, Reset: micros(tat - now)}
	if allowed {
		d.Remaining = max(0, min(capacity-1, (now+capacity*interval-tat)/interval))
	} else {
		d.RetryAfter = micros(tat + interval - capacity*interval - now)
	}
	return d
}

// ResendTAT is the TAT reported when a claim's owner resends its
// admission: the first send was already charged, so nothing is charged
// again, and at least one interval is shown as used. stored is 0 when
// the rate key has expired.
func ResendTAT(l Limit, now, stored int64) int64 {
	return max(stored, now+l.IntervalMicros())
}

func micros(us int64) time.Duration {
	return time.Duration(max(us, 0)) * time.Microsecond
}
