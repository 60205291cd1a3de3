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
// instances) for a few seconds and judges the count by the store's own
// clock (Redis TIME for Redis), read before the first attempt and after
// the last answer:
//
//   - at most burst + elapsed/interval: exact, whatever the load, since
//     the GCRA cannot admit more in that span of its clock;
//   - at least 95% of burst + the rate times the span over which the
//     workers kept asking. Admitting too few is only the store's fault
//     if they kept asking often enough: the burst absorbs pauses up to
//     (burst-1) intervals, and a run in which the machine stalled longer
//     is measured again.
func testRateAccuracy(t *testing.T, open Open) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	const runs = 3
	clients := []store.Store{open(t), open(t)}
	for run := 1; ; run++ {
		m := measureRate(t, clients, fmt.Sprint("shared-", run))
		t.Logf("run %d: admitted %d; store clock %v, at most %d; asked over %v, at least %.0f; longest pause %v",
			run, m.admitted, m.storeElapsed, m.most, m.asking, m.least, m.maxGap)
		if m.admitted > m.most {
			t.Fatalf("admitted %d in %v of the store's clock, want at most %d", m.admitted, m.storeElapsed, m.most)
		}
		if m.maxGap <= m.tolerated {
			if float64(m.admitted) < m.least {
				t.Errorf("admitted %d while asking for %v, want at least %.0f", m.admitted, m.asking, m.least)
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
	admitted, most    int64
	least             float64
	storeElapsed      time.Duration // by the store's clock, first attempt to last answer
	asking            time.Duration // first attempt to last attempt, local clock
	maxGap, tolerated time.Duration
}

// storeNow reads the clock the store decides by.
func storeNow(t *testing.T, s store.Store) time.Time {
	t.Helper()
	c, ok := s.(interface {
		Now(context.Context) (time.Time, error)
	})
	if !ok {
		t.Fatalf("%T does not tell its clock (Now)", s)
	}
	now, err := c.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return now
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
	before := storeNow(t, clients[0])
	start := time.Now()
	gaps.start(start)
	stop := start.Add(duration)
	for _, s := range clients {
		for range workers {
			wg.Go(func() { hammer(t, s, a, stop, &allowed, &gaps) })
		}
	}
	wg.Wait()
	after := storeNow(t, clients[0])
	interval := time.Duration(l.IntervalMicros()) * time.Microsecond
	asking := gaps.span()
	// In whole microseconds, as both stores count.
	storeMicros := after.UnixMicro() - before.UnixMicro()
	return rateRun{
		admitted:     allowed.Load(),
		most:         burst + storeMicros/l.IntervalMicros(),
		least:        0.95 * (burst + rate*asking.Seconds()),
		storeElapsed: after.Sub(before),
		asking:       asking,
		maxGap:       time.Duration(gaps.max.Load()),
		tolerated:    time.Duration(burst-1) * interval,
	}
}

// hammer admits until stop, pausing between attempts: while the bucket
// is saturated the GCRA loses nothing to late arrivals, so the count
// does not depend on how hard the store is pushed.
func hammer(t *testing.T, s store.Store, a store.Admission, stop time.Time, allowed *atomic.Int64, gaps *gapMeter) {
	for {
		now := time.Now()
		if !now.Before(stop) {
			gaps.observe(now)
			return
		}
		gaps.attempt(now)
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

// gapMeter records the longest time no worker made an attempt, and
// when the first and the last attempt were made.
type gapMeter struct {
	last, max   atomic.Int64 // Unix ns; ns
	first, tail atomic.Int64 // Unix ns of the first and the last attempt
}

func (g *gapMeter) start(at time.Time) { g.last.Store(at.UnixNano()) }

// attempt notes an attempt about to be made.
func (g *gapMeter) attempt(now time.Time) {
	n := now.UnixNano()
	g.first.CompareAndSwap(0, n)
	for {
		t := g.tail.Load()
		if n <= t || g.tail.CompareAndSwap(t, n) {
			break
		}
	}
	g.observe(now)
}

// span is the time from the first attempt to the last.
func (g *gapMeter) span() time.Duration {
	return time.Duration(g.tail.Load() - g.first.Load())
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
