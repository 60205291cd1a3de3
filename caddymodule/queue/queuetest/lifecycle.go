package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// An event goes from intake to a lease to delivered, once.
func testDeliver(t *testing.T, s *suite) {
	e := s.env(t)
	ev := e.event(`{"n":1}`, "")
	e.enqueue(ev)
	stored := e.get(ev.ID)
	same(t, stored, ev, true)
	e.check(stored, queue.StatusQueued, 0)

	l := e.lease(ev)
	same(t, l.Event, ev, true)
	if l.Ref == "" {
		t.Fatal("lease without a ref")
	}
	e.receiveNone("an event leased and not settled")

	before := time.Now()
	e.mustSettle(l, queue.Delivered, time.Time{})
	got := e.get(ev.ID)
	e.check(got, queue.StatusDelivered, 1)
	if got.DoneAt.Before(before.Add(-time.Second)) || got.DoneAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("done at %v, settled at %v", got.DoneAt, before)
	}
	if len(got.Log) != 1 || got.Log[0].N != 1 || got.Log[0].Status != 200 || got.Log[0].Outcome != queue.Delivered {
		t.Fatalf("log %+v, want the one delivered attempt", got.Log)
	}
	isErr(t, "settling a settled lease", e.settle(l, queue.Delivered, time.Time{}), queue.ErrLeaseLost)
	e.receiveNone("a delivered event")
}

// Receive leases at most max, and every event once.
func testReceiveMax(t *testing.T, s *suite) {
	e := s.env(t)
	var evs []*queue.Event
	for i := range 5 {
		evs = append(evs, e.event(`{}`, string(rune('a'+i))))
	}
	e.enqueue(evs...)
	first := e.receive("c1", 2, patience)
	if len(first) == 0 {
		t.Fatal("nothing leased from a queue of 5")
	}
	rest := e.receiveN(5 - len(first))
	sameIDs(t, leaseIDs(append(first, rest...)), evs...)
	e.receiveNone("every event leased")
}

// A waiting Receive returns as soon as an event is taken in.
func testReceiveWakes(t *testing.T, s *suite) {
	e := s.env(t)
	ev := e.event(`{}`, "")
	type result struct {
		ls  []*queue.Lease
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		ls, err := e.b.Receive(e.ctx, e.q, "c1", 1, 2*patience)
		done <- result{ls, err}
	}()
	time.Sleep(100 * time.Millisecond)
	e.enqueue(ev)
	r := <-done
	if r.err != nil || len(r.ls) != 1 || r.ls[0].Event.ID != ev.ID {
		t.Fatalf("receive = %v, %v; want %s", leaseIDs(r.ls), r.err, ev.ID)
	}
	if d := time.Since(start); d > patience {
		t.Fatalf("the waiting receive took %v to see the event", d)
	}
}

// A waiting Receive ends when its context does.
func testReceiveCancel(t *testing.T, s *suite) {
	e := s.env(t)
	ctx, cancel := context.WithCancel(e.ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	ls, err := e.b.Receive(ctx, e.q, "c1", 1, time.Minute)
	if len(ls) != 0 || (err != nil && !errors.Is(err, context.Canceled)) {
		t.Fatalf("receive = %v, %v; want nothing", leaseIDs(ls), err)
	}
	if d := time.Since(start); d > patience {
		t.Fatalf("receive returned %v after its context ended", d)
	}
}

// Receive with wait 0 looks once, without blocking.
func testReceiveNoWait(t *testing.T, s *suite) {
	e := s.env(t)
	start := time.Now()
	if ls := e.receive("c1", 1, 0); len(ls) != 0 {
		t.Fatalf("an empty queue leased %v", leaseIDs(ls))
	}
	if d := time.Since(start); d > patience {
		t.Fatalf("receive without wait took %v", d)
	}
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	var got []*queue.Lease
	e.within("a receive without wait to lease", func() bool {
		got = e.receive("c1", 1, 0)
		return len(got) > 0
	})
	if got[0].Event.ID != ev.ID {
		t.Fatalf("leased %s, want %s", got[0].Event.ID, ev.ID)
	}
}

// A retry is due at the time Settle names, not before.
func testRetrySchedule(t *testing.T, s *suite) {
	e := s.env(t)
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	at := time.Now().Add(700 * time.Millisecond)
	e.mustSettle(e.lease(ev), queue.Retry, at)

	got := e.get(ev.ID)
	e.check(got, queue.StatusRetrying, 1)
	if got.NextAt.Sub(at).Abs() > slack {
		t.Fatalf("next at %v, want %v", got.NextAt, at)
	}
	if len(got.Log) != 1 || got.Log[0].Outcome != queue.Retry || got.Log[0].Status != 503 {
		t.Fatalf("log %+v, want the one failed attempt", got.Log)
	}
	ls := e.receive("c2", 1, 50*time.Millisecond)
	if len(ls) == 0 {
		// One waiting Receive must wake when the retry falls due.
		start := time.Now()
		ls = e.receive("c2", 1, 2*patience)
		if d := time.Since(start); d > patience {
			t.Fatalf("a waiting receive woke %v later, not when the retry fell due", d)
		}
	}
	if len(ls) != 1 || ls[0].Event.ID != ev.ID {
		t.Fatalf("leased %v, want %s", leaseIDs(ls), ev.ID)
	}
	if time.Now().Before(at.Add(-slack)) {
		t.Fatalf("a retry due at %v was leased at %v", at, time.Now())
	}
	l := ls[0]
	if l.Event.Attempts != 1 {
		t.Fatalf("the second lease says %d attempts, want 1", l.Event.Attempts)
	}
	e.mustSettle(l, queue.Delivered, time.Time{})
	e.check(e.get(ev.ID), queue.StatusDelivered, 2)
}

// A Retry with the budget spent makes the event dead.
func testBudgetSpent(t *testing.T, s *suite) {
	e := s.env(t, attempts(2))
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	e.mustSettle(e.lease(ev), queue.Retry, time.Now())
	e.check(e.get(ev.ID), queue.StatusRetrying, 1)
	e.mustSettle(e.lease(ev), queue.Retry, time.Now())

	got := e.get(ev.ID)
	e.check(got, queue.StatusDead, 2)
	if got.DoneAt.IsZero() || !got.NextAt.IsZero() {
		t.Fatalf("done at %v, next at %v; want done and nothing next", got.DoneAt, got.NextAt)
	}
	if len(got.Log) != 2 || got.Log[0].N != 1 || got.Log[1].N != 2 {
		t.Fatalf("log %+v, want attempts 1 and 2", got.Log)
	}
	e.receiveNone("a dead event")
	if st := e.stats(); st.Dead != 1 || st.Queued != 0 {
		t.Fatalf("stats %+v, want 1 dead and nothing queued", st)
	}
}

// Dead ends delivery whatever budget is left.
func testDeadOutcome(t *testing.T, s *suite) {
	e := s.env(t, attempts(5))
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	e.mustSettle(e.lease(ev), queue.Dead, time.Time{})
	got := e.get(ev.ID)
	e.check(got, queue.StatusDead, 1)
	if len(got.Log) != 1 || got.Log[0].Status != 410 {
		t.Fatalf("log %+v, want the 410", got.Log)
	}
	e.receiveNone("a dead event")
}

// Defer makes the event due later without counting an attempt.
func testDefer(t *testing.T, s *suite) {
	e := s.env(t, attempts(1))
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	at := time.Now().Add(300 * time.Millisecond)
	e.mustSettle(e.lease(ev), queue.Defer, at)
	got := e.get(ev.ID)
	e.check(got, queue.StatusQueued, 0)
	if len(got.Log) != 0 || got.NextAt.Sub(at).Abs() > slack {
		t.Fatalf("a deferred lease logged %+v, next at %v; want no log, next at %v", got.Log, got.NextAt, at)
	}
	l := e.lease(ev)
	if time.Now().Before(at.Add(-slack)) {
		t.Fatalf("an event deferred to %v was leased at %v", at, time.Now())
	}
	// The budget of 1 is whole: a failure now is the first attempt.
	e.mustSettle(l, queue.Delivered, time.Time{})
	e.check(e.get(ev.ID), queue.StatusDelivered, 1)
}

// The log keeps the last MaxLog attempts.
func testLogCap(t *testing.T, s *suite) {
	e := s.env(t, attempts(queue.MaxLog+10))
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	n := queue.MaxLog + 1
	for range n {
		e.mustSettle(e.lease(ev), queue.Retry, time.Now())
	}
	got := e.get(ev.ID)
	e.check(got, queue.StatusRetrying, n)
	if len(got.Log) != queue.MaxLog || got.Log[0].N != 2 || got.Log[queue.MaxLog-1].N != n {
		t.Fatalf("log of %d from %d, want %d from 2 to %d", len(got.Log), got.Log[0].N, queue.MaxLog, n)
	}
}

// A lease left unsettled for ReclaimAfter goes to another consumer; the
// first one's settle then changes nothing.
func testReclaim(t *testing.T, s *suite) {
	e := s.env(t, func(q *queue.Spec) { q.ReclaimAfter = 300 * time.Millisecond })
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	start := time.Now()
	stale := e.lease(ev)
	if ls := e.receive("c2", 1, 50*time.Millisecond); len(ls) > 0 && time.Since(start) < e.q.ReclaimAfter-slack {
		t.Fatal("a lease was taken over before ReclaimAfter")
	}
	var taken *queue.Lease
	e.within("take-over", func() bool {
		ls := e.receive("c2", 1, 200*time.Millisecond)
		if len(ls) > 0 {
			taken = ls[0]
		}
		return taken != nil
	})
	if d := time.Since(start); d < e.q.ReclaimAfter-slack {
		t.Fatalf("taken over after %v, before ReclaimAfter", d)
	}
	if taken.Event.ID != ev.ID || taken.Ref == stale.Ref {
		t.Fatalf("took over %s ref %q; want %s under a new ref (old %q)", taken.Event.ID, taken.Ref, ev.ID, stale.Ref)
	}
	isErr(t, "settling the stale lease", e.settle(stale, queue.Delivered, time.Time{}), queue.ErrLeaseLost)
	got := e.get(ev.ID)
	e.check(got, queue.StatusQueued, 0)
	if len(got.Log) != 0 {
		t.Fatalf("the stale settle logged %+v", got.Log)
	}
	e.mustSettle(taken, queue.Delivered, time.Time{})
	e.check(e.get(ev.ID), queue.StatusDelivered, 1)
	time.Sleep(e.q.ReclaimAfter)
	e.receiveNone("a settled lease after ReclaimAfter")
}

// Pause holds delivery, not intake; resuming wakes a waiting Receive.
func testPause(t *testing.T, s *suite) {
	e := s.env(t)
	if err := e.b.SetPaused(e.ctx, e.q, true); err != nil {
		t.Fatal(err)
	}
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	if !e.stats().Paused {
		t.Fatal("stats do not say paused")
	}
	e.receiveNone("a paused queue")
	done := make(chan []*queue.Lease, 1)
	go func() {
		ls, _ := e.b.Receive(e.ctx, e.q, "c1", 1, 2*patience)
		done <- ls
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := e.b.SetPaused(e.ctx, e.q, false); err != nil {
		t.Fatal(err)
	}
	if ls := <-done; len(ls) != 1 || ls[0].Event.ID != ev.ID {
		t.Fatalf("after resuming, leased %v; want %s", leaseIDs(ls), ev.ID)
	}
	if d := time.Since(start); d > patience {
		t.Fatalf("resuming took %v to reach a waiting receive", d)
	}
	if e.stats().Paused {
		t.Fatal("stats still say paused")
	}
}

// Events, leases and copies handed out are the caller's: changing them
// changes nothing stored.
func testCopies(t *testing.T, s *suite) {
	e := s.env(t)
	ev := e.event(`{"a":1}`, "")
	want := *ev
	want.Body = []byte(`{"a":1}`)
	want.Header = ev.Header.Clone()
	e.enqueue(ev)
	ev.Body[0] = 'X'
	ev.Header.Set("Content-Type", "text/evil")

	got := e.get(want.ID)
	got.Body[0] = 'Y'
	got.Header.Set("X-Added", "1")
	l := e.lease(&want)
	same(t, l.Event, &want, true)
	l.Event.Body[0] = 'Z'
	l.Event.Header.Del("Content-Type")
	l.Event.Attempts = 40
	e.mustSettle(l, queue.Retry, time.Now().Add(longTime))
	got = e.get(want.ID)
	got.Log[0].Status = 1
	final := e.get(want.ID)
	same(t, final, &want, true)
	if final.Attempts != 1 || final.Log[0].Status != 503 {
		t.Fatalf("stored state changed through a copy: %+v", final)
	}
}

// Enqueue fills in what an event left unset: its queue, status queued,
// the queue's budget and the time of intake; the budget is then spent
// by attempts, not ended by the first failure.
func testEnqueueFillsIn(t *testing.T, s *suite) {
	e := s.env(t)
	ev := e.event(`{}`, "")
	ev.Queue, ev.Status, ev.Budget, ev.ReceivedAt = "", "", 0, time.Time{}
	before := time.Now()
	e.enqueue(ev)
	got := e.get(ev.ID)
	e.check(got, queue.StatusQueued, 0)
	if got.Queue != e.q.Name || got.Budget != e.q.Attempts {
		t.Fatalf("stored queue %q, budget %d; want %q, %d", got.Queue, got.Budget, e.q.Name, e.q.Attempts)
	}
	if got.ReceivedAt.Before(before.Add(-time.Second)) || got.ReceivedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("received at %v, enqueued at %v", got.ReceivedAt, before)
	}
	e.mustSettle(e.lease(ev), queue.Retry, time.Now())
	e.check(e.get(ev.ID), queue.StatusRetrying, 1)
}

// testDedupKey: an event enqueued again under the dedup key of one still
// kept (the provider's retry after a gateway died between storing the
// event and recording its answer) is not stored twice: Enqueue hands
// back the first event's id, before and after delivery. Other keys, and
// no key, are stored.
func testDedupKey(t *testing.T, s *suite) {
	e := s.env(t)
	first, again := e.event(`{"n":1}`, ""), e.event(`{"n":1}`, "")
	first.DedupKey, again.DedupKey = "evt_1", "evt_1"
	firstID, againID := first.ID, again.ID
	e.enqueue(first, again)
	if again.ID != firstID {
		t.Fatalf("the resent event got id %s, want the first event's %s", again.ID, firstID)
	}
	e.gone(againID)
	if got := e.stats().Queued; got != 1 {
		t.Fatalf("%d queued, want 1: the resent event is stored once", got)
	}
	e.mustSettle(e.lease(first), queue.Delivered, time.Time{})
	resent, other, keyless := e.event(`{"n":1}`, ""), e.event(`{"n":2}`, ""), e.event(`{"n":3}`, "")
	resent.DedupKey, other.DedupKey = "evt_1", "evt_2"
	e.enqueue(resent, other, keyless)
	if resent.ID != firstID {
		t.Fatalf("after delivery the resent event got id %s, want %s", resent.ID, firstID)
	}
	if got := e.stats().Queued; got != 2 {
		t.Fatalf("%d queued, want 2: another key and no key are stored", got)
	}
}
