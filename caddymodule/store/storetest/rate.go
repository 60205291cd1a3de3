package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

func testRate(t *testing.T, open Open) {
	tests := []struct {
		name  string
		limit store.Limit
		burst int64 // expected admissions at once
	}{
		// Intervals of half a second leave room for a loaded machine.
		{"explicit burst", store.Limit{Count: 2, Period: time.Second, Burst: 3}, 3},
		{"default burst is count", store.Limit{Count: 4, Period: 2 * time.Second}, 4},
		{"burst of one", store.Limit{Count: 2, Period: time.Second, Burst: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			for run := 1; !burstThenPace(t, s, tt.limit, tt.burst, run); run++ {
				if run == 3 {
					t.Fatal("every burst took half an interval or more: machine too loaded")
				}
			}
		})
	}
	t.Run("keys are independent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a := store.Admission{Source: t.Name(), RateKey: "a", Limit: store.Limit{Count: 1, Period: time.Hour}}
		admit(t, s, a)
		if res := admit(t, s, a); res.Rate.Allowed {
			t.Fatal("second event on a 1/h limit allowed")
		}
		a.RateKey = "b"
		if res := admit(t, s, a); !res.Rate.Allowed {
			t.Error("first event on another key refused")
		}
	})
}

// burstThenPace checks that a quiet bucket lets burst events through
// at once, then refuses with a Retry-After after which exactly one more
// event is admitted. It returns false, to be run again on a fresh key,
// if the burst itself took half an interval or more.
//
// Bounds come from the local clock read around the calls, so that a
// stalled test process (a loaded CI machine) cannot fail a correct
// store: the first event was charged no earlier than start, and each
// reply was computed no later than the clock read after it.
func burstThenPace(t *testing.T, s store.Store, l store.Limit, burst int64, run int) bool {
	interval := time.Duration(l.IntervalMicros()) * time.Microsecond
	const slack = 2 * time.Millisecond // Redis TIME vs the local clock
	a := store.Admission{Source: t.Name(), RateKey: fmt.Sprint("k", run), Limit: l}
	start := time.Now()
	for i := range burst {
		d := admit(t, s, a).Rate
		if took := time.Since(start); took >= interval/2 {
			t.Logf("burst took %v, too much of the %v interval; again", took, interval)
			return false
		}
		if !d.Allowed || d.Limit != burst || d.Remaining != burst-1-i || d.RetryAfter != 0 {
			t.Fatalf("event %d of the burst: %+v, want allowed, limit %d, remaining %d", i, d, burst, burst-1-i)
		}
		if d.Reset <= 0 || d.Reset > time.Duration(i+1)*interval {
			t.Errorf("event %d: reset %v, want in (0, %v]", i, d.Reset, time.Duration(i+1)*interval)
		}
	}
	d := admit(t, s, a).Rate
	elapsed := time.Since(start)
	if d.Allowed || d.Remaining != 0 {
		t.Fatalf("event past the burst: %+v, want refused with 0 remaining", d)
	}
	// One interval after the first event, which was at most elapsed ago.
	if d.RetryAfter > interval || d.RetryAfter < interval-elapsed-slack {
		t.Fatalf("retry after %v, want in [%v, %v]", d.RetryAfter, interval-elapsed, interval)
	}
	if full := time.Duration(burst) * interval; d.Reset > full || d.Reset < full-elapsed-slack {
		t.Errorf("reset %v, want in [%v, %v]", d.Reset, full-elapsed, full)
	}
	if early := admit(t, s, a).Rate; early.Allowed && time.Since(start) < interval-slack {
		t.Fatalf("event before Retry-After allowed: %+v", early)
	}
	time.Sleep(d.RetryAfter + 5*time.Millisecond)
	if res := admit(t, s, a); !res.Rate.Allowed {
		t.Fatalf("event after Retry-After refused: %+v", res.Rate)
	}
	// The next interval starts one interval after the previous one.
	if res := admit(t, s, a); res.Rate.Allowed && time.Since(start) < 2*interval-slack {
		t.Fatalf("second event after Retry-After allowed: %+v", res.Rate)
	}
	return true
}

func testRateLimitedNoClaim(t *testing.T, open Open) {
	s := open(t)
	a := store.Admission{
		Source: t.Name(), RateKey: "k", Limit: store.Limit{Count: 1, Period: time.Hour},
		IdemKey: "first", Fingerprint: "f", Owner: "A", Lease: defaultLease,
	}
	admit(t, s, a)
	a.IdemKey, a.Owner = "second", "B"
	res := admit(t, s, a)
	if res.Rate.Allowed || res.State != store.ClaimNone {
		t.Fatalf("over the limit: %+v, want refused with no claim", res)
	}
	a.RateKey, a.Owner = "", "C"
	if res := admit(t, s, a); res.State != store.ClaimAcquired {
		t.Errorf("refused admission left a claim behind: state %v, want acquired", res.State)
	}
}

// testResendNotCharged: a resend of the same admission (a client retry
// after a lost reply) must not use up the rate a second time.
func testResendNotCharged(t *testing.T, open Open) {
	s := open(t)
	a := store.Admission{
		Source: t.Name(), RateKey: "k", Limit: store.Limit{Count: 2, Period: time.Hour},
		IdemKey: "e", Fingerprint: "f", Owner: "A", Lease: defaultLease,
	}
	for i := range 3 {
		res := admit(t, s, a)
		if !res.Rate.Allowed || res.State != store.ClaimAcquired || res.Rate.Remaining != 1 {
			t.Fatalf("send %d: %+v, want allowed, acquired, 1 remaining", i, res)
		}
	}
	a.IdemKey, a.Owner = "other", "B"
	if res := admit(t, s, a); !res.Rate.Allowed {
		t.Errorf("second distinct event refused: resends were charged")
	}
}

// testDuplicatesNotCharged: redeliveries of a claimed event never reach
// the upstream, so a full bucket must not turn their replay, 409 or 422
// into a 429, nor may they use up what is left.
func testDuplicatesNotCharged(t *testing.T, open Open) {
	s := open(t)
	a := store.Admission{
		Source: t.Name(), RateKey: "k", Limit: store.Limit{Count: 2, Period: time.Hour},
		IdemKey: "done", Fingerprint: "f", Owner: "A", Lease: defaultLease,
	}
	if res := admit(t, s, a); res.State != store.ClaimAcquired {
		t.Fatalf("first delivery: %+v", res)
	}
	if err := s.Complete(context.Background(), a.Source, "done", "A", store.Response{Status: 200}, time.Hour); err != nil {
		t.Fatal(err)
	}
	busy := a
	busy.IdemKey, busy.Owner = "busy", "B"
	if res := admit(t, s, busy); res.State != store.ClaimAcquired {
		t.Fatalf("second event: %+v", res)
	}
	// The bucket (2 per hour) is now empty.
	cases := []struct {
		name  string
		key   string
		fp    string
		state store.ClaimState
	}{
		{"completed_is_replayed", "done", "f", store.ClaimCompleted},
		{"in_flight_is_409", "busy", "f", store.ClaimInFlight},
		{"other_payload_is_422", "done", "g", store.ClaimConflict},
	}
	for _, c := range cases {
		for i := range 3 {
			dup := a
			dup.IdemKey, dup.Fingerprint, dup.Owner = c.key, c.fp, "dup"
			res := admit(t, s, dup)
			if !res.Rate.Allowed || res.State != c.state {
				t.Fatalf("%s, try %d: %+v, want allowed and %v", c.name, i, res, c.state)
			}
		}
	}
	fresh := a
	fresh.IdemKey, fresh.Owner = "fresh", "C"
	if res := admit(t, s, fresh); res.Rate.Allowed || res.State != store.ClaimNone {
		t.Errorf("a new event past the limit: %+v, want refused without a claim", res)
	}
}

// testRateAccuracy drives one limit from two clients (two gateway
// instances) for a few seconds: the total admitted must be the burst
// plus the rate times the elapsed time, within 2%.
//
// Admitting too many is always a failure. Admitting too few is only
// the store's fault if the workers kept asking: the burst absorbs
// pauses up to (burst-1) intervals, and a run in which the machine
// stalled longer is measured again.
func testRateAccuracy(t *testing.T, open Open) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	const runs = 3
	clients := []store.Store{open(t), open(t)}
	for run := 1; ; run++ {
		m := measureRate(t, clients, fmt.Sprint("shared-", run))
		if m.admitted > 1.02*m.want {
			t.Fatalf("admitted %v in %v, want at most %.0f + 2%%", m.admitted, m.elapsed, m.want)
		}
		if m.maxGap <= m.tolerated {
			if m.admitted < 0.98*m.want {
				t.Errorf("admitted %v in %v, want %.0f ± 2%%", m.admitted, m.elapsed, m.want)
			}
			return
		}
		if run == runs {
			t.Fatalf("the test process stalled for %v (the burst absorbs %v) in all %d runs; machine too loaded", m.maxGap, m.tolerated, runs)
		}
		t.Logf("run %d: stalled for %v, over the %v the burst absorbs; measuring again", run, m.maxGap, m.tolerated)
	}
}

type rateRun struct {
	admitted, want    float64
	elapsed           time.Duration
	maxGap, tolerated time.Duration
}

func measureRate(t *testing.T, clients []store.Store, key string) rateRun {
	const (
		rate     = 200
		burst    = 50
		duration = 3 * time.Second
		workers  = 4 // per client
	)
	l := store.Limit{Count: rate, Period: time.Second, Burst: burst}
	a := store.Admission{Source: t.Name(), RateKey: key, Limit: l}
	var allowed atomic.Int64
	var gaps gapMeter
	var wg sync.WaitGroup
	start := time.Now()
	gaps.last.Store(start.UnixNano())
	stop := start.Add(duration)
	for _, s := range clients {
		for range workers {
			wg.Go(func() { hammer(t, s, a, stop, &allowed, &gaps) })
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	return rateRun{
		admitted:  float64(allowed.Load()),
		want:      burst + rate*elapsed.Seconds(),
		elapsed:   elapsed,
		maxGap:    time.Duration(gaps.max.Load()),
		tolerated: time.Duration(burst-1) * time.Second / rate,
	}
}

// hammer admits until stop, pausing between attempts: while the bucket
// is saturated the GCRA loses nothing to late arrivals, so the count
// does not depend on how hard the store is pushed.
func hammer(t *testing.T, s store.Store, a store.Admission, stop time.Time, allowed *atomic.Int64, gaps *gapMeter) {
	for {
		now := time.Now()
		gaps.observe(now)
		if !now.Before(stop) {
			return
		}
		res, err := s.Admit(context.Background(), a)
		if err != nil {
			t.Errorf("Admit: %v", err)
			return
		}
		if res.Rate.Allowed {
			allowed.Add(1)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// gapMeter records the longest time no worker made an attempt.
type gapMeter struct {
	last, max atomic.Int64 // Unix ns; ns
}

func (g *gapMeter) observe(now time.Time) {
	n := now.UnixNano()
	gap := n - g.last.Swap(n)
	for {
		m := g.max.Load()
		if gap <= m || g.max.CompareAndSwap(m, gap) {
			return
		}
	}
}
