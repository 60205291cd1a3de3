package queuetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// One order key keeps the events of these tests in one partition, whose
// share of the bound is the bound divided by the partitions.

// At MaxQueued, Enqueue and Replay fail with ErrFull and store nothing.
func testFullByCount(t *testing.T, s *suite) {
	p := int64(s.opts.Partitions)
	e := s.env(t, ordered, func(q *queue.Spec) { q.MaxQueued = 2 * p })
	e1, e2, e3 := e.event(`{}`, "k"), e.event(`{}`, "k"), e.event(`{}`, "k")
	e.enqueue(e1, e2)
	e.full(e3)
	if st := e.stats(); st.Queued != 2 {
		t.Fatalf("stats say %d queued, want 2", st.Queued)
	}
	if ids := e.list(queue.Filter{}); len(ids) != 2 {
		t.Fatalf("list %v, want the 2 stored", ids)
	}

	// Delivering one makes room for one.
	e.mustSettle(e.lease(e1), queue.Delivered, time.Time{})
	e.enqueue(e3)
	newID := queue.NewID(time.Now())
	_, err := e.b.Replay(e.ctx, e.q, e1.ID, newID)
	isErr(t, "replay into a full queue", err, queue.ErrFull)
	e.gone(newID)
}

// At MaxQueuedBytes, Enqueue fails with ErrFull and stores nothing.
func testFullByBytes(t *testing.T, s *suite) {
	p := int64(s.opts.Partitions)
	e := s.env(t, ordered)
	body := strings.Repeat("b", 200)
	e1, e2, e3 := e.event(body, "k"), e.event(body, "k"), e.event(body, "k")
	size := e1.Size()
	// Two fit, and half of a third: the third does not.
	e.q.MaxQueuedBytes = p * (2*size + size/2)
	e.enqueue(e1, e2)
	e.full(e3)
	if st := e.stats(); st.Bytes != 2*size {
		t.Fatalf("stats say %d bytes, want %d", st.Bytes, 2*size)
	}
	e.mustSettle(e.lease(e1), queue.Delivered, time.Time{})
	e.enqueue(e3)
}

func (e *env) full(ev *queue.Event) {
	e.t.Helper()
	isErr(e.t, "enqueue into a full queue", e.b.Enqueue(e.ctx, e.q, ev), queue.ErrFull)
	e.gone(ev.ID)
}

// An ordered queue delivers one event of a key at a time, in the order
// of intake, even while the first is retrying; other keys, and the
// empty key, go on meanwhile.
func testOrdered(t *testing.T, s *suite) {
	e := s.env(t, ordered, attempts(5))
	a1, a2, a3 := e.event(`{"a":1}`, "a"), e.event(`{"a":2}`, "a"), e.event(`{"a":3}`, "a")
	b1, x1, x2 := e.event(`{"b":1}`, "b"), e.event(`{}`, ""), e.event(`{}`, "")
	e.enqueue(a1, a2, b1, x1, a3, x2)

	first := e.receiveN(4)
	sameIDs(t, leaseIDs(first), a1, b1, x1, x2)
	e.receiveNone("later events of a leased key")
	if st := e.stats(); st.Waiting != 2 || st.InFlight != 4 {
		t.Fatalf("stats %+v, want 2 waiting and 4 in flight", st)
	}
	for _, l := range first {
		if l.Event.ID != a1.ID {
			e.mustSettle(l, queue.Delivered, time.Time{})
		}
	}
	lease := func(ls []*queue.Lease, id string) *queue.Lease {
		for _, l := range ls {
			if l.Event.ID == id {
				return l
			}
		}
		return nil
	}

	// a1 retries: a2 still waits behind it.
	e.mustSettle(lease(first, a1.ID), queue.Retry, time.Now().Add(500*time.Millisecond))
	var again *queue.Lease
	e.within("a1's retry", func() bool {
		ls := e.receive("c1", 10, 200*time.Millisecond)
		for _, l := range ls {
			if l.Event.ID != a1.ID {
				t.Fatalf("leased %s while a1 was retrying", l.Event.ID)
			}
		}
		again = lease(ls, a1.ID)
		return again != nil
	})
	e.mustSettle(again, queue.Delivered, time.Time{})

	// Delivered, a1 lets a2 go; dead, a2 lets a3 go.
	e.mustSettle(e.lease(a2), queue.Dead, time.Time{})
	e.mustSettle(e.lease(a3), queue.Delivered, time.Time{})
	if st := e.stats(); st.Queued != 0 || st.Waiting != 0 {
		t.Fatalf("stats %+v, want nothing left", st)
	}
}

// A queue that is not ordered ignores order keys.
func testUnordered(t *testing.T, s *suite) {
	e := s.env(t)
	evs := []*queue.Event{e.event(`{}`, "k"), e.event(`{}`, "k"), e.event(`{}`, "k")}
	e.enqueue(evs...)
	sameIDs(t, leaseIDs(e.receiveN(3)), evs...)
}

// AcquireSlot hands out limit slots per queue; a released one is free.
func testSlots(t *testing.T, s *suite) {
	e := s.env(t)
	other := s.spec(t, "-other")
	acquire := func(q *queue.Spec, token string, limit int, want bool) {
		t.Helper()
		got, err := e.b.AcquireSlot(e.ctx, q, token, limit, time.Minute)
		if err != nil || got != want {
			t.Fatalf("acquire %s of %d in %s = %v, %v; want %v", token, limit, q.Name, got, err, want)
		}
	}
	acquire(e.q, "t1", 2, true)
	acquire(e.q, "t2", 2, true)
	acquire(e.q, "t3", 2, false)
	acquire(other, "t3", 1, true)
	if err := e.b.ReleaseSlot(e.ctx, e.q, "t1"); err != nil {
		t.Fatal(err)
	}
	acquire(e.q, "t3", 2, true)
	acquire(e.q, "t4", 2, false)
	acquire(other, "t4", 1, false)
}

// A slot not released frees itself after its ttl, not before.
func testSlotExpiry(t *testing.T, s *suite) {
	e := s.env(t)
	const ttl = 300 * time.Millisecond
	start := time.Now()
	acquire := func(token string) bool {
		t.Helper()
		ok, err := e.b.AcquireSlot(e.ctx, e.q, token, 1, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !acquire("u1") {
		t.Fatal("the first slot was refused")
	}
	if acquire("u2") && time.Since(start) < ttl-slack {
		t.Fatal("a second slot of one was handed out before the first expired")
	}
	e.within("the slot's expiry", func() bool { return acquire("u2") })
	if d := time.Since(start); d < ttl-slack {
		t.Fatalf("the slot expired after %v, before its ttl", d)
	}
}

// Many consumers at once never hold one event together, and every event
// is delivered once.
func testConcurrent(t *testing.T, s *suite) {
	e := s.env(t, attempts(3))
	const n, consumers = 60, 8
	var evs []*queue.Event
	for i := range n {
		evs = append(evs, e.event(fmt.Sprintf(`{"i":%d}`, i), ""))
	}
	e.enqueue(evs...)

	var (
		mu        sync.Mutex
		held      = map[string]string{} // id → consumer
		delivered = map[string]int{}
		problems  []string
		wg        sync.WaitGroup
	)
	finished := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == n || len(problems) > 0
	}
	deadline := time.Now().Add(2 * patience)
	for c := range consumers {
		name := fmt.Sprintf("c%d", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !finished() && time.Now().Before(deadline) {
				ls, err := e.b.Receive(e.ctx, e.q, name, 3, 200*time.Millisecond)
				mu.Lock()
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: receive: %v", name, err))
				}
				for _, l := range ls {
					if other, ok := held[l.Event.ID]; ok {
						problems = append(problems, fmt.Sprintf("%s leased %s held by %s", name, l.Event.ID, other))
					}
					held[l.Event.ID] = name
				}
				mu.Unlock()
				for i, l := range ls {
					time.Sleep(time.Millisecond)
					// Every other event fails once first.
					outcome := queue.Delivered
					if l.Event.Attempts == 0 && i%2 == 1 {
						outcome = queue.Retry
						// Due at once: another consumer may lease it
						// again before this Settle returns, rightly.
						mu.Lock()
						delete(held, l.Event.ID)
						mu.Unlock()
					}
					err := e.settle(l, outcome, time.Now())
					mu.Lock()
					delete(held, l.Event.ID)
					if err != nil {
						problems = append(problems, fmt.Sprintf("%s: settle %s: %v", name, l.Event.ID, err))
					} else if outcome == queue.Delivered {
						delivered[l.Event.ID]++
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d problems, first: %s", len(problems), problems[0])
	}
	for _, ev := range evs {
		if delivered[ev.ID] != 1 {
			t.Fatalf("%s delivered %d times, want once", ev.ID, delivered[ev.ID])
		}
	}
	if st := e.stats(); st.Queued != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v, want nothing left", st)
	}
}

// One queue's events, pause and figures are its own.
func testQueuesApart(t *testing.T, s *suite) {
	e := s.env(t)
	o := &env{t: t, b: e.b, ctx: e.ctx, q: s.spec(t, "-other")}
	ev := e.event(`{}`, "")
	e.enqueue(ev)
	if err := o.b.SetPaused(o.ctx, o.q, true); err != nil {
		t.Fatal(err)
	}
	o.receiveNone("another queue")
	o.gone(ev.ID)
	isErr(t, "retry in another queue", o.b.Retry(o.ctx, o.q, ev.ID), queue.ErrNotFound)
	if ids := o.list(queue.Filter{}); len(ids) != 0 {
		t.Fatalf("another queue lists %v", ids)
	}
	if st := o.stats(); st.Queued != 0 || st.Queue != o.q.Name || !st.Oldest.IsZero() {
		t.Fatalf("another queue's stats %+v", st)
	}
	e.lease(ev)
	if st := e.stats(); st.Paused || st.InFlight != 1 {
		t.Fatalf("stats %+v: paused by another queue, or not in flight", st)
	}
}

// An event of size zero (no header, no body) ends like any other, and
// lets the next event of its order key go.
func testZeroSize(t *testing.T, s *suite) {
	for _, outcome := range []queue.Outcome{queue.Delivered, queue.Dead} {
		t.Run(string(outcome), func(t *testing.T) {
			e := s.env(t, ordered)
			first, next := e.event("", "k"), e.event(`{}`, "k")
			first.Header = nil
			if first.Size() != 0 {
				t.Fatalf("size %d, want 0", first.Size())
			}
			e.enqueue(first, next)
			e.mustSettle(e.lease(first), outcome, time.Time{})
			e.check(e.get(first.ID), map[queue.Outcome]queue.Status{queue.Delivered: queue.StatusDelivered, queue.Dead: queue.StatusDead}[outcome], 1)
			e.mustSettle(e.lease(next), queue.Delivered, time.Time{})
			if st := e.stats(); st.Queued != 0 || st.Bytes != 0 || st.Waiting != 0 {
				t.Fatalf("stats %+v, want nothing left", st)
			}
		})
	}
}
