package queue

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// jitter is the share a delay may vary by either way, so that events
// that failed together do not all come back together.
const jitter = 0.2

// maxRetryAfter bounds a Retry-After in seconds (about 31 years), so that
// it fits a Duration; the policy clamps it much lower anyway.
const maxRetryAfter = 1 << 30

// Policy is a queue's retry policy: what an attempt's answer leads to,
// and how long the event waits after a failed attempt.
type Policy struct {
	first    time.Duration
	largest  time.Duration
	schedule []time.Duration
	deadOn   []int
	// random is in [0, 1); it places a delay within its jitter.
	random func() float64
}

// NewPolicy is the retry policy of a provisioned Config.
func NewPolicy(c *Config) *Policy {
	p := &Policy{
		first:   time.Duration(c.FirstDelay),
		largest: time.Duration(c.MaxDelay),
		deadOn:  slices.Clone(c.DeadOn),
		random:  rand.Float64,
	}
	if len(c.Schedule) > 0 {
		p.schedule = make([]time.Duration, len(c.Schedule))
		for i, d := range c.Schedule {
			p.schedule[i] = time.Duration(d)
		}
		p.first, p.largest = p.schedule[0], slices.Max(p.schedule)
	}
	return p
}

// Classify is what an attempt that got status leads to (0: no answer at
// all), with the reason when it ends delivery. Redirects are not
// followed, so a 3xx is a failure like any other: retried.
func (p *Policy) Classify(status int) (Outcome, string) {
	switch {
	case status >= 200 && status <= 299:
		return Delivered, ""
	case status == http.StatusGone:
		return Dead, "410 Gone ends delivery"
	case slices.Contains(p.deadOn, status):
		return Dead, "status " + strconv.Itoa(status) + " is in dead_on"
	}
	return Retry, ""
}

// Delay is how long the event waits after its n-th attempt failed (n ≥
// 1). retryAfter is the answer's Retry-After, "" for none; it is
// honoured, but within the first and the largest delay of the policy,
// so an app can neither hammer itself nor park the queue for a day.
// now is when the answer came, for a Retry-After that is a date.
func (p *Policy) Delay(n int, retryAfter string, now time.Time) time.Duration {
	if d, ok := parseRetryAfter(retryAfter, now); ok {
		// Only ever later than asked, never earlier.
		d += time.Duration(float64(d) * jitter * p.random())
		return min(max(d, p.first), p.largest)
	}
	d := p.base(n)
	d += time.Duration(float64(d) * jitter * (2*p.random() - 1))
	return min(d, p.largest)
}

// base is the delay after the n-th failed attempt, before jitter.
func (p *Policy) base(n int) time.Duration {
	n = max(n, 1)
	if p.schedule != nil {
		return p.schedule[min(n, len(p.schedule))-1]
	}
	d := p.first
	for i := 1; i < n && d < p.largest; i++ {
		d *= 2
	}
	return min(d, p.largest)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP
// date. A date in the past is a delay of zero.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	secs, err := strconv.ParseUint(v, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		secs, err = maxRetryAfter, nil
	}
	if err == nil {
		// Capped before it can overflow; the policy clamps it anyway.
		return time.Duration(min(secs, maxRetryAfter)) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
