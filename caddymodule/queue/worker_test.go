package queue

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fixture is a queue on the Memory backend, with the pools a test
// starts on it.
type fixture struct {
	t        *testing.T
	backend  Backend
	memory   *Memory
	spec     *Spec
	config   *Config
	logs     *observer.ObservedLogs
	logger   *zap.Logger
	observed *observed
}

func newFixture(t *testing.T, c Config) *fixture {
	t.Helper()
	c.Provision()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	m := &Memory{}
	return &fixture{t: t, backend: m, memory: m, spec: c.Spec("q"), config: &c,
		logs: logs, logger: zap.New(core), observed: &observed{}}
}

// start starts a pool, stopped when the test ends.
func (f *fixture) start(edit ...func(*PoolOptions)) *Pool {
	f.t.Helper()
	o := PoolOptions{Backend: f.backend, Spec: f.spec, Config: f.config,
		Observer: f.observed, Logger: f.logger}
	for _, e := range edit {
		e(&o)
	}
	p, err := NewPool(o)
	if err != nil {
		f.t.Fatal(err)
	}
	p.Start()
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	return p
}

// enqueue stores ev (a copy of testEvent by default) as intake would.
func (f *fixture) enqueue(ev *Event) string {
	f.t.Helper()
	if ev == nil {
		ev = testEvent()
		ev.Attempts = 0
	}
	ev.ID = NewID(time.Now())
	ev.Queue, ev.ReceivedAt = f.spec.Name, time.Now()
	ev.Status, ev.Budget = StatusQueued, f.spec.Attempts
	if err := f.backend.Enqueue(context.Background(), f.spec, ev); err != nil {
		f.t.Fatal(err)
	}
	return ev.ID
}

func (f *fixture) get(id string) *Event {
	f.t.Helper()
	ev, err := f.backend.Get(context.Background(), f.spec, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return ev
}

// await polls until the event is in status, and returns it.
func (f *fixture) await(id string, status Status) *Event {
	f.t.Helper()
	var ev *Event
	waitFor(f.t, 15*time.Second, func() bool {
		ev = f.get(id)
		return ev.Status == status
	}, func() string { return "event in status " + string(ev.Status) + ", want " + string(status) })
	return ev
}

// attemptLines are the pool's attempt log lines.
func (f *fixture) attemptLines() []observer.LoggedEntry {
	return f.logs.FilterMessage("attempt").AllUntimed()
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// observed records what an Observer is told.
type observed struct {
	mu        sync.Mutex
	attempts  []Outcome
	delivered []time.Duration
}

func (o *observed) Attempted(queue string, a Attempt, outcome Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if queue == "q" && a.Outcome == outcome {
		o.attempts = append(o.attempts, outcome)
	}
}

func (o *observed) Delivered(queue string, sinceIntake time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if queue == "q" {
		o.delivered = append(o.delivered, sinceIntake)
	}
}

func (o *observed) outcomes() ([]Outcome, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Outcome(nil), o.attempts...), len(o.delivered)
}

// perDelivery counts the requests the app got by delivery id.
func perDelivery(a *app) map[string]int {
	n := map[string]int{}
	for _, r := range a.requests() {
		n[r.Header.Get(HeaderDeliveryID)]++
	}
	return n
}

func fast(c Config) Config {
	c.FirstDelay = caddy.Duration(50 * time.Millisecond)
	c.MaxDelay = caddy.Duration(200 * time.Millisecond)
	c.Timeout = caddy.Duration(5 * time.Second)
	return c
}

// A queued event reaches the app byte for byte, with the gateway's
// headers and none of the provider's connection or a spoofed copy.
func TestPoolDelivers(t *testing.T) {
	a := newApp(t, nil)
	f := newFixture(t, fast(Config{To: a.URL + "/in?x=1"}))
	ev := testEvent()
	ev.Attempts = 0
	ev.Header["Connection"] = []string{"X-Hop"}
	ev.Header["X-Hop"] = []string{"1"}
	ev.Header["Proxy-Authorization"] = []string{"Basic c2VjcmV0"}
	ev.Header["Keep-Alive"] = []string{"timeout=5"}
	ev.Header[HeaderDeliveryID] = []string{"spoofed"}
	ev.Header[HeaderAttempt] = []string{"7"}
	ev.Header[HeaderReplayOf] = []string{"spoofed"}
	body := append([]byte(nil), ev.Body...)
	id := f.enqueue(ev)
	f.start()

	done := f.await(id, StatusDelivered)
	got := onlyRequest(t, a)
	if got.Method != "POST" || got.RequestURI != "/in?x=1" || !bytes.Equal(got.Body, body) || got.ContentLength != int64(len(body)) {
		t.Errorf("the app got %s %s %q (%d)", got.Method, got.RequestURI, got.Body, got.ContentLength)
	}
	want := map[string]string{
		HeaderDeliveryID: id, HeaderAttempt: "1", HeaderIdempotencyKey: id, HeaderReplayOf: "",
		"Stripe-Signature": "t=1,v1=abc", "X-Hop": "", "Proxy-Authorization": "", "Keep-Alive": "",
	}
	for name, v := range want {
		if g := got.Header.Get(name); g != v {
			t.Errorf("%s: %q, want %q", name, g, v)
		}
	}
	if done.Attempts != 1 || len(done.Log) != 1 || done.Log[0].Status != 200 || done.Log[0].Outcome != Delivered || done.Log[0].N != 1 {
		t.Errorf("record: %d attempts, log %+v", done.Attempts, done.Log)
	}
	waitFor(t, 5*time.Second, func() bool { _, n := f.observed.outcomes(); return n == 1 }, func() string { return "observer not told" })
	if outcomes, _ := f.observed.outcomes(); len(outcomes) != 1 || outcomes[0] != Delivered {
		t.Errorf("observer told %v", outcomes)
	}
	line := f.attemptLines()
	if len(line) != 1 {
		t.Fatalf("%d attempt lines", len(line))
	}
	fields := line[0].ContextMap()
	for _, k := range []string{"queue", "delivery_id", "event_id", "event_type", "provider", "attempt", "status", "duration", "outcome"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("attempt line without %s: %v", k, fields)
		}
	}
	for k, v := range fields {
		if s, ok := v.(string); ok && (bytes.Contains(body, []byte(s)) && s != "" || s == "t=1,v1=abc") {
			t.Errorf("attempt line field %s carries %q", k, s)
		}
	}
}

// The app down for a while: the event comes back on the schedule by
// itself, and its record has every attempt.
func TestPoolResumesWhenTheAppIsBack(t *testing.T) {
	var calls atomic.Int32
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 {
			panic(http.ErrAbortHandler) // the connection drops: no answer
		}
	})
	f := newFixture(t, fast(Config{To: a.URL, Attempts: 10}))
	id := f.enqueue(nil)
	f.start()

	ev := f.await(id, StatusDelivered)
	if ev.Attempts != 4 || len(ev.Log) != 4 {
		t.Fatalf("%d attempts, log %+v", ev.Attempts, ev.Log)
	}
	for i, at := range ev.Log {
		want := Retry
		if i == 3 {
			want = Delivered
		}
		if at.N != i+1 || at.Outcome != want || (want == Retry) != (at.Status == 0 && at.Error != "") {
			t.Errorf("attempt %d: %+v", i+1, at)
		}
		if i == 0 {
			continue
		}
		// No attempt before its time: the delay after attempt n is at
		// least 80% of 50ms·2^(n-1), capped at 200ms.
		least := time.Duration(float64(min(50*time.Millisecond<<(i-1), 200*time.Millisecond)) * 0.8)
		if gap := at.At.Sub(ev.Log[i-1].At); gap < least {
			t.Errorf("attempt %d came %v after the one before, want at least %v", i+1, gap, least)
		}
	}
	for i, r := range a.requests() {
		if r.Header.Get(HeaderAttempt) != strconv.Itoa(i+1) || r.Header.Get(HeaderDeliveryID) != id {
			t.Errorf("request %d: attempt %q, delivery id %q", i+1, r.Header.Get(HeaderAttempt), r.Header.Get(HeaderDeliveryID))
		}
	}
}

// Answers that end delivery do so at once; the others are retried.
func TestPoolDeadAtOnce(t *testing.T) {
	cases := []struct {
		name   string
		status int
		want   Status
	}{
		{"410 gone", 410, StatusDead},
		{"dead_on", 422, StatusDead},
		{"404 retried", 404, StatusRetrying},
		{"302 retried", 302, StatusRetrying},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newApp(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(c.status) })
			cfg := fast(Config{To: a.URL, DeadOn: []int{422}})
			cfg.FirstDelay, cfg.MaxDelay = caddy.Duration(time.Hour), caddy.Duration(time.Hour)
			f := newFixture(t, cfg)
			id := f.enqueue(nil)
			f.start()
			ev := f.await(id, c.want)
			if len(a.requests()) != 1 || ev.Attempts != 1 || len(ev.Log) != 1 || ev.Log[0].Status != c.status {
				t.Fatalf("%d requests, %d attempts, log %+v", len(a.requests()), ev.Attempts, ev.Log)
			}
			if c.want == StatusDead && (ev.Log[0].Outcome != Dead || ev.Log[0].Error == "") {
				t.Fatalf("dead without its reason: %+v", ev.Log[0])
			}
			if c.want == StatusRetrying && ev.NextAt.Before(ev.Log[0].At.Add(48*time.Minute)) {
				t.Fatalf("next attempt at %v, an hour (±20%%) after %v expected", ev.NextAt, ev.Log[0].At)
			}
		})
	}
}

// A failing app gets exactly the budget, then the event is dead.
func TestPoolBudgetSpent(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	f := newFixture(t, fast(Config{To: a.URL, Attempts: 3}))
	id := f.enqueue(nil)
	f.start()
	ev := f.await(id, StatusDead)
	if ev.Attempts != 3 || len(ev.Log) != 3 || ev.Log[2].Outcome != Dead || ev.Log[1].Outcome != Retry {
		t.Fatalf("%d attempts, log %+v", ev.Attempts, ev.Log)
	}
	waitFor(t, 5*time.Second, func() bool { o, _ := f.observed.outcomes(); return len(o) == 3 }, func() string { return "observer not told thrice" })
	if o, _ := f.observed.outcomes(); o[2] != Dead {
		t.Fatalf("observer told %v", o)
	}
	if n := len(a.requests()); n != 3 {
		t.Fatalf("the app got %d requests, want 3", n)
	}
}

// Retry-After is honoured within the first and the largest delay.
func TestPoolRetryAfter(t *testing.T) {
	cases := []struct {
		name        string
		retryAfter  string
		first, most time.Duration
		want        time.Duration // before the upward jitter of up to 20%
		capped      bool
	}{
		{"honoured", "1", 50 * time.Millisecond, 5 * time.Second, time.Second, false},
		{"clamped to the largest", "3600", 50 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond, true},
		{"clamped to the first", "0", 300 * time.Millisecond, 5 * time.Second, 300 * time.Millisecond, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					w.Header().Set("Retry-After", c.retryAfter)
					w.WriteHeader(503)
				}
			})
			cfg := fast(Config{To: a.URL})
			cfg.FirstDelay, cfg.MaxDelay = caddy.Duration(c.first), caddy.Duration(c.most)
			f := newFixture(t, cfg)
			id := f.enqueue(nil)
			f.start()
			ev := f.await(id, StatusDelivered)
			if len(ev.Log) != 2 {
				t.Fatalf("log %+v", ev.Log)
			}
			first := ev.Log[0]
			var next time.Time
			for _, l := range f.attemptLines() {
				if l.ContextMap()["attempt"] == int64(1) {
					next = l.ContextMap()["next_at"].(time.Time)
				}
			}
			// next_at is set after the answer, so it is the delay past
			// the attempt's end, give or take the time to log it.
			delay := next.Sub(first.At.Add(first.Duration))
			most := c.want + c.want/5
			if c.capped {
				most = c.want
			}
			if delay < c.want || delay > most+500*time.Millisecond {
				t.Fatalf("delay %v after Retry-After %s, want %v to %v", delay, c.retryAfter, c.want, most)
			}
			if second := ev.Log[1].At; second.Before(next) {
				t.Fatalf("second attempt at %v, before its time %v", second, next)
			}
		})
	}
}

// The in-flight attempts never exceed the concurrency, here or across
// the processes that share the backend, and waiting for a slot costs
// no attempt.
func TestPoolConcurrency(t *testing.T) {
	cases := []struct {
		name        string
		pools       int
		concurrency int
		unshared    bool // the backend grants every slot: the local bound alone
	}{
		{"one process", 1, 3, false},
		{"two processes share the limit", 2, 2, false},
		{"the local bound", 1, 3, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var now, most atomic.Int32
			a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
				n := now.Add(1)
				defer now.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(40 * time.Millisecond)
			})
			f := newFixture(t, fast(Config{To: a.URL, Concurrency: c.concurrency}))
			if c.unshared {
				f.backend = &flaky{Memory: f.memory, anySlot: true}
			}
			var ids []string
			for range 16 {
				ids = append(ids, f.enqueue(nil))
			}
			for i := range c.pools {
				f.start(func(o *PoolOptions) { o.Consumer = "p" + strconv.Itoa(i) })
			}
			for _, id := range ids {
				if ev := f.await(id, StatusDelivered); ev.Attempts != 1 || len(ev.Log) != 1 {
					t.Errorf("%s: %d attempts, log %+v", id, ev.Attempts, ev.Log)
				}
			}
			if m := most.Load(); m > int32(c.concurrency) || m < 2 {
				t.Fatalf("at most %d in flight, want 2 to %d", m, c.concurrency)
			}
			for id, n := range perDelivery(a) {
				if n != 1 {
					t.Errorf("%s reached the app %d times", id, n)
				}
			}
		})
	}
}

// limiter refuses its first refusals calls, then allows.
type limiter struct {
	calls, refusals atomic.Int32
	err             error
}

func (l *limiter) Allow(ctx context.Context) (bool, time.Duration, error) {
	if l.calls.Add(1) > l.refusals.Load() {
		return true, 0, nil
	}
	return false, 20 * time.Millisecond, l.err
}

// A refused rate defers the lease without spending an attempt.
func TestPoolRateDefers(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"refused", nil},
		{"store failing", errors.New("store down")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newApp(t, nil)
			f := newFixture(t, fast(Config{To: a.URL, Attempts: 2}))
			l := &limiter{err: c.err}
			l.refusals.Store(2)
			id := f.enqueue(nil)
			f.start(func(o *PoolOptions) { o.Limiter = l })
			ev := f.await(id, StatusDelivered)
			if ev.Attempts != 1 || len(ev.Log) != 1 || l.calls.Load() != 3 || len(a.requests()) != 1 {
				t.Fatalf("%d attempts, log %+v, limiter asked %d times, app got %d", ev.Attempts, ev.Log, l.calls.Load(), len(a.requests()))
			}
			if r := a.requests()[0].Header.Get(HeaderAttempt); r != "1" {
				t.Fatalf("attempt header %q after deferrals", r)
			}
		})
	}
}

// A paused queue delivers nothing; resumed, it delivers what waited.
func TestPoolPaused(t *testing.T) {
	a := newApp(t, nil)
	f := newFixture(t, fast(Config{To: a.URL}))
	ctx := context.Background()
	if err := f.backend.SetPaused(ctx, f.spec, true); err != nil {
		t.Fatal(err)
	}
	ids := []string{f.enqueue(nil), f.enqueue(nil), f.enqueue(nil)}
	f.start()
	time.Sleep(300 * time.Millisecond)
	if n := len(a.requests()); n != 0 {
		t.Fatalf("a paused queue delivered %d events", n)
	}
	if err := f.backend.SetPaused(ctx, f.spec, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		f.await(id, StatusDelivered)
	}
	if n := len(a.requests()); n != 3 {
		t.Fatalf("the app got %d requests, want 3", n)
	}
}

// Stop lets the attempts in flight finish, and a lease not yet
// attempted goes back to the queue: nothing reaches the app twice.
func TestPoolStopDrains(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 8)
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	f := newFixture(t, fast(Config{To: a.URL, Concurrency: 2}))
	ids := []string{f.enqueue(nil), f.enqueue(nil), f.enqueue(nil)}
	p := f.start()
	<-arrived
	<-arrived

	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with two attempts in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	delivered := 0
	for _, id := range ids {
		switch ev := f.get(id); {
		case ev.Status == StatusDelivered && ev.Attempts == 1:
			delivered++
		case ev.Status != StatusQueued || ev.Attempts != 0:
			t.Fatalf("%s after Stop: %s, %d attempts", id, ev.Status, ev.Attempts)
		}
	}
	if delivered != 2 {
		t.Fatalf("%d delivered by Stop, want the 2 in flight", delivered)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	f.start()
	for _, id := range ids {
		f.await(id, StatusDelivered)
	}
	for id, n := range perDelivery(a) {
		if n != 1 {
			t.Errorf("%s reached the app %d times", id, n)
		}
	}
	if len(perDelivery(a)) != 3 {
		t.Errorf("the app got %v", perDelivery(a))
	}
}

// When Stop's ctx ends first, the attempt in flight is cancelled and
// its lease handed back, due at once, with no attempt counted.
func TestPoolStopCancels(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	cfg := fast(Config{To: a.URL})
	cfg.Timeout = caddy.Duration(time.Minute)
	f := newFixture(t, cfg)
	id := f.enqueue(nil)
	p := f.start()
	waitFor(t, 5*time.Second, func() bool { return len(a.requests()) == 1 }, func() string { return "no attempt" })

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v, want the deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Stop took %v", took)
	}
	ev := f.get(id)
	st, err := f.backend.Stats(context.Background(), f.spec)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Status != StatusQueued || ev.Attempts != 0 || len(ev.Log) != 0 || st.InFlight != 0 || st.Ready != 1 {
		t.Fatalf("after Stop: %s, %d attempts, log %+v, stats %+v", ev.Status, ev.Attempts, ev.Log, st)
	}
}

// A lease received while Stop begins is handed back unattempted.
func TestPoolStopHandsBackUnstarted(t *testing.T) {
	a := newApp(t, nil)
	f := newFixture(t, fast(Config{To: a.URL}))
	id := f.enqueue(nil)
	entered, proceed := make(chan struct{}), make(chan struct{})
	l := &blockingLimiter{entered: entered, proceed: proceed}
	p := f.start(func(o *PoolOptions) { o.Limiter = l })
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	waitFor(t, 5*time.Second, p.stopped, func() string { return "Stop did not begin" })
	close(proceed)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if ev := f.get(id); ev.Status != StatusQueued || ev.Attempts != 0 || len(a.requests()) != 0 {
		t.Fatalf("after Stop: %s, %d attempts, app got %d", ev.Status, ev.Attempts, len(a.requests()))
	}
}

type blockingLimiter struct{ entered, proceed chan struct{} }

func (l *blockingLimiter) Allow(ctx context.Context) (bool, time.Duration, error) {
	close(l.entered)
	<-l.proceed
	return true, 0, nil
}

func TestPoolStopBeforeStart(t *testing.T) {
	f := newFixture(t, fast(Config{To: "http://127.0.0.1:1"}))
	p, err := NewPool(PoolOptions{Backend: f.backend, Spec: f.spec, Config: f.config})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	p.Start() // after Stop: nothing
	if p.started {
		t.Fatal("started after Stop")
	}
}

// flaky is the Memory backend with calls that fail while told to.
type flaky struct {
	*Memory
	receiveFails, settleFails, settleLost atomic.Int32
	receives, settles                     atomic.Int32
	anySlot                               bool
}

func (b *flaky) AcquireSlot(ctx context.Context, q *Spec, token string, limit int, ttl time.Duration) (bool, error) {
	if b.anySlot {
		return true, nil
	}
	return b.Memory.AcquireSlot(ctx, q, token, limit, ttl)
}

func (b *flaky) Receive(ctx context.Context, q *Spec, consumer string, max int, wait time.Duration) ([]*Lease, error) {
	b.receives.Add(1)
	if b.receiveFails.Add(-1) >= 0 {
		return nil, errors.New("store down")
	}
	return b.Memory.Receive(ctx, q, consumer, max, wait)
}

func (b *flaky) Settle(ctx context.Context, q *Spec, l *Lease, s Settlement) error {
	b.settles.Add(1)
	if b.settleLost.Add(-1) >= 0 {
		return ErrLeaseLost
	}
	if b.settleFails.Add(-1) >= 0 {
		return errors.New("store down")
	}
	return b.Memory.Settle(ctx, q, l, s)
}

// A failing backend is retried with backoff, logged once, and the
// event is delivered once it is back.
func TestPoolBackendFailures(t *testing.T) {
	a := newApp(t, nil)
	f := newFixture(t, fast(Config{To: a.URL}))
	b := &flaky{Memory: f.memory}
	b.receiveFails.Store(5)
	b.settleFails.Store(2)
	f.backend = b
	id := f.enqueue(nil)
	start := time.Now()
	f.start()
	ev := f.await(id, StatusDelivered)
	// 5 failures back off 100+200+400+800+1600ms: no hot loop.
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("delivered %v after 5 failed receives: no backoff", took)
	}
	if ev.Attempts != 1 || len(a.requests()) != 1 {
		t.Fatalf("%d attempts, app got %d", ev.Attempts, len(a.requests()))
	}
	if n := f.logs.FilterMessageSnippet("receiving from the queue failed").Len(); n != 1 {
		t.Errorf("%d lines for one failing state", n)
	}
	if n := f.logs.FilterMessage("receiving from the queue again").Len(); n != 1 {
		t.Errorf("%d lines for the recovery", n)
	}
}

// A lost lease is logged and left to the consumer that took it over;
// the pool goes on.
func TestPoolLeaseLost(t *testing.T) {
	a := newApp(t, nil)
	f := newFixture(t, fast(Config{To: a.URL, Concurrency: 1}))
	b := &flaky{Memory: f.memory}
	b.settleLost.Store(1)
	f.backend = b
	first, second := f.enqueue(nil), f.enqueue(nil)
	f.start()
	f.await(second, StatusDelivered)
	if ev := f.get(first); ev.Status != StatusQueued || ev.Attempts != 0 {
		t.Fatalf("the lost one: %s, %d attempts", ev.Status, ev.Attempts)
	}
	if n := b.settles.Load(); n != 2 {
		t.Fatalf("%d settles, want 2: a lost lease is not settled again", n)
	}
	if n := f.logs.FilterMessageSnippet("lease lost").Len(); n != 1 {
		t.Fatalf("%d lease-lost lines", n)
	}
}
