// Package queuetest is the conformance suite of queue.Backend: every
// backend runs it, so that the memory and Redis backends keep the same
// semantics. It uses real time, in short durations, and unique queue
// names, so that one shared Redis serves every subtest.
//
// Where queue.Backend's documentation leaves a choice, the suite pins it:
//   - Defer leaves Status as it was and sets NextAt to Settlement.At.
//   - Retry (and Replay of a retrying or dead event) sets Status queued
//     and clears NextAt and DoneAt; a dead event's budget becomes its
//     attempts made plus Spec.Attempts.
//   - ErrFull: an event is refused when the events not done would exceed
//     MaxQueued, or their bytes MaxQueuedBytes, counting the event.
//   - Receive with wait 0 looks once and returns.
//   - A lease has a new Ref each time an event is leased, reclaims too.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// Options shape the queues the suite makes.
type Options struct {
	// Partitions is every queue's Spec.Partitions, for backends that
	// spread a queue; the bounds of the ErrFull tests are scaled so that
	// each partition's share is what the test means. Default: 1.
	Partitions int
}

// Run runs the suite; open returns the backend under test, fresh or
// shared (every subtest uses queues of its own).
func Run(t *testing.T, open func(t *testing.T) queue.Backend, opts Options) {
	if opts.Partitions < 1 {
		opts.Partitions = 1
	}
	s := &suite{open: open, opts: opts}
	for _, c := range []struct {
		name string
		run  func(*testing.T, *suite)
	}{
		{"deliver", testDeliver},
		{"enqueue_fills_in", testEnqueueFillsIn},
		{"dedup_key", testDedupKey},
		{"receive_max", testReceiveMax},
		{"receive_wakes_on_intake", testReceiveWakes},
		{"receive_honours_cancel", testReceiveCancel},
		{"receive_without_wait", testReceiveNoWait},
		{"retry_schedule", testRetrySchedule},
		{"budget_spent_is_dead", testBudgetSpent},
		{"dead_outcome", testDeadOutcome},
		{"defer_not_counted", testDefer},
		{"log_keeps_the_last", testLogCap},
		{"full_by_count", testFullByCount},
		{"full_by_bytes", testFullByBytes},
		{"zero_size", testZeroSize},
		{"ordered_fifo_across_retries", testOrdered},
		{"unordered_queue_ignores_key", testUnordered},
		{"pause_resume", testPause},
		{"reclaim", testReclaim},
		{"retry", testRetry},
		{"replay", testReplay},
		{"list", testList},
		{"stats", testStats},
		{"retention", testRetention},
		{"slots", testSlots},
		{"slot_expiry", testSlotExpiry},
		{"concurrent_consumers", testConcurrent},
		{"queues_apart", testQueuesApart},
		{"copies", testCopies},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, s) })
	}
}

// Timing: bounds generous for a busy machine, and short durations the
// backend must honour to the millisecond.
const (
	patience = 15 * time.Second       // how long to wait for what must happen
	glance   = 300 * time.Millisecond // how long to watch for what must not
	slack    = 5 * time.Millisecond   // a store's rounding to milliseconds
	longTime = time.Hour              // a due time never reached in a test
)

type suite struct {
	open func(t *testing.T) queue.Backend
	opts Options
}

// env is one subtest's backend and queue.
type env struct {
	t   *testing.T
	b   queue.Backend
	q   *queue.Spec
	ctx context.Context
}

// env opens the backend with a queue of the subtest's own, shaped by
// mods.
func (s *suite) env(t *testing.T, mods ...func(*queue.Spec)) *env {
	t.Helper()
	e := &env{t: t, b: s.open(t), ctx: t.Context()}
	e.q = s.spec(t, "", mods...)
	return e
}

// spec is a queue named after the subtest (and suffix), unique per run.
func (s *suite) spec(t *testing.T, suffix string, mods ...func(*queue.Spec)) *queue.Spec {
	id := queue.NewID(time.Now())
	q := &queue.Spec{
		Name:           queueName(t.Name()+suffix) + "-" + id[len(id)-8:],
		Partitions:     s.opts.Partitions,
		Attempts:       3,
		ReclaimAfter:   time.Minute,
		Retention:      time.Minute,
		DeadRetention:  time.Minute,
		MaxQueued:      1000,
		MaxQueuedBytes: 1 << 20,
	}
	for _, mod := range mods {
		mod(q)
	}
	return q
}

// queueName keeps the letters, digits and dashes of a test's name.
func queueName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-':
			return r
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, name)
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return name
}

func ordered(q *queue.Spec) { q.Ordered = true }

func attempts(n int) func(*queue.Spec) {
	return func(q *queue.Spec) { q.Attempts = n }
}

// event is a new event of e's queue, received now, under order key.
func (e *env) event(body, key string) *queue.Event {
	return e.eventAt(time.Now(), body, key)
}

func (e *env) eventAt(at time.Time, body, key string) *queue.Event {
	at = at.Truncate(time.Millisecond)
	id := queue.NewID(at)
	return &queue.Event{
		ID:        id,
		Queue:     e.q.Name,
		Provider:  "test",
		EventID:   "evt_" + id,
		EventType: "thing.happened",
		Method:    http.MethodPost,
		Header: http.Header{
			"Content-Type":                {"application/json"},
			"Webhook-Gateway-Delivery-Id": {id},
		},
		Body:       []byte(body),
		OrderKey:   key,
		ReceivedAt: at,
		Status:     queue.StatusQueued,
		Budget:     e.q.Attempts,
	}
}

func (e *env) enqueue(evs ...*queue.Event) {
	e.t.Helper()
	for _, ev := range evs {
		if err := e.b.Enqueue(e.ctx, e.q, ev); err != nil {
			e.t.Fatalf("enqueue %s: %v", ev.ID, err)
		}
	}
}

func (e *env) receive(consumer string, max int, wait time.Duration) []*queue.Lease {
	e.t.Helper()
	ls, err := e.b.Receive(e.ctx, e.q, consumer, max, wait)
	if err != nil {
		e.t.Fatalf("receive: %v", err)
	}
	if len(ls) > max {
		e.t.Fatalf("receive(max %d) leased %d", max, len(ls))
	}
	return ls
}

// receiveN leases n events, in as many calls as it takes.
func (e *env) receiveN(n int) []*queue.Lease {
	e.t.Helper()
	var got []*queue.Lease
	deadline := time.Now().Add(patience)
	for len(got) < n && time.Now().Before(deadline) {
		got = append(got, e.receive("c1", n-len(got), 500*time.Millisecond)...)
	}
	if len(got) != n {
		e.t.Fatalf("leased %d events (%v), want %d", len(got), leaseIDs(got), n)
	}
	return got
}

// receiveNone fails if anything is leased within glance.
func (e *env) receiveNone(why string) {
	e.t.Helper()
	if ls := e.receive("c2", 10, glance); len(ls) > 0 {
		e.t.Fatalf("%s: leased %v", why, leaseIDs(ls))
	}
}

// lease leases the one event ev.
func (e *env) lease(ev *queue.Event) *queue.Lease {
	e.t.Helper()
	l := e.receiveN(1)[0]
	if l.Event.ID != ev.ID {
		e.t.Fatalf("leased %s, want %s", l.Event.ID, ev.ID)
	}
	return l
}

// settle ends l with outcome, due again at at, recording an attempt
// for every outcome but Defer.
func (e *env) settle(l *queue.Lease, outcome queue.Outcome, at time.Time) error {
	s := queue.Settlement{Outcome: outcome, At: at}
	if outcome != queue.Defer {
		status := map[queue.Outcome]int{queue.Delivered: 200, queue.Retry: 503, queue.Dead: 410}[outcome]
		s.Attempt = &queue.Attempt{
			N: l.Event.Attempts + 1, At: time.Now(), Duration: 3 * time.Millisecond,
			Status: status, Outcome: outcome,
		}
	}
	return e.b.Settle(e.ctx, e.q, l, s)
}

func (e *env) mustSettle(l *queue.Lease, outcome queue.Outcome, at time.Time) {
	e.t.Helper()
	if err := e.settle(l, outcome, at); err != nil {
		e.t.Fatalf("settle %s %s: %v", l.Event.ID, outcome, err)
	}
}

func (e *env) get(id string) *queue.Event {
	e.t.Helper()
	ev, err := e.b.Get(e.ctx, e.q, id)
	if err != nil {
		e.t.Fatalf("get %s: %v", id, err)
	}
	return ev
}

func (e *env) gone(id string) {
	e.t.Helper()
	if ev, err := e.b.Get(e.ctx, e.q, id); !errors.Is(err, queue.ErrNotFound) {
		e.t.Fatalf("get %s = %+v, %v; want ErrNotFound", id, ev, err)
	}
}

func (e *env) stats() queue.Stats {
	e.t.Helper()
	st, err := e.b.Stats(e.ctx, e.q)
	if err != nil {
		e.t.Fatalf("stats: %v", err)
	}
	return st
}

func (e *env) list(f queue.Filter) []string {
	e.t.Helper()
	evs, err := e.b.List(e.ctx, e.q, f)
	if err != nil {
		e.t.Fatalf("list %+v: %v", f, err)
	}
	var ids []string
	for _, ev := range evs {
		if ev.Body != nil {
			e.t.Fatalf("list returned %s with its body", ev.ID)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// within waits until cond holds, failing after patience.
func (e *env) within(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check fails with the fields of ev that are not as want.
func (e *env) check(ev *queue.Event, status queue.Status, attempts int) {
	e.t.Helper()
	if ev.Status != status || ev.Attempts != attempts {
		e.t.Fatalf("%s: status %s, attempts %d; want %s, %d", ev.ID, ev.Status, ev.Attempts, status, attempts)
	}
}

// same fails unless got is want as stored (the body only if withBody).
func same(t *testing.T, got, want *queue.Event, withBody bool) {
	t.Helper()
	diffs := []struct {
		field string
		ok    bool
	}{
		{"id", got.ID == want.ID},
		{"queue", got.Queue == want.Queue},
		{"provider", got.Provider == want.Provider},
		{"event id", got.EventID == want.EventID},
		{"event type", got.EventType == want.EventType},
		{"method", got.Method == want.Method},
		{"header", fmt.Sprint(got.Header) == fmt.Sprint(want.Header)},
		{"body", !withBody || string(got.Body) == string(want.Body)},
		{"order key", got.OrderKey == want.OrderKey},
		{"replay of", got.ReplayOf == want.ReplayOf},
		{"received at", got.ReceivedAt.Equal(want.ReceivedAt)},
		{"budget", got.Budget == want.Budget},
	}
	for _, d := range diffs {
		if !d.ok {
			t.Fatalf("%s differs:\n got %+v\nwant %+v", d.field, got, want)
		}
	}
}

func leaseIDs(ls []*queue.Lease) []string {
	var ids []string
	for _, l := range ls {
		ids = append(ids, l.Event.ID)
	}
	return ids
}

// sameIDs fails unless got holds the ids of want, in any order.
func sameIDs(t *testing.T, got []string, want ...*queue.Event) {
	t.Helper()
	var w []string
	for _, ev := range want {
		w = append(w, ev.ID)
	}
	slices.Sort(w)
	g := slices.Sorted(slices.Values(got))
	if !slices.Equal(g, w) {
		t.Fatalf("ids %v, want %v", g, w)
	}
}

func isErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}
