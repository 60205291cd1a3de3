package queuetest

import (
	"slices"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// inState is an event of e's queue brought to status, with one attempt
// made for every status but queued.
func (e *env) inState(status queue.Status) *queue.Event {
	e.t.Helper()
	ev := e.event(`{"state":"`+string(status)+`"}`, "")
	e.enqueue(ev)
	outcome := map[queue.Status]queue.Outcome{
		queue.StatusRetrying:  queue.Retry,
		queue.StatusDead:      queue.Dead,
		queue.StatusDelivered: queue.Delivered,
	}[status]
	if outcome != "" {
		e.mustSettle(e.lease(ev), outcome, time.Now().Add(longTime))
	}
	e.check(e.get(ev.ID), status, map[bool]int{true: 0, false: 1}[status == queue.StatusQueued])
	return ev
}

// Retry makes a retrying event due now, and a dead one due with a fresh
// budget; nothing else.
func testRetry(t *testing.T, s *suite) {
	for _, c := range []struct {
		status queue.Status
		err    error
	}{
		{queue.StatusRetrying, nil},
		{queue.StatusDead, nil},
		{queue.StatusQueued, queue.ErrState},
		{queue.StatusDelivered, queue.ErrState},
	} {
		t.Run(string(c.status), func(t *testing.T) {
			e := s.env(t)
			ev := e.inState(c.status)
			err := e.b.Retry(e.ctx, e.q, ev.ID)
			isErr(t, "retry", err, c.err)
			if c.err != nil {
				e.check(e.get(ev.ID), c.status, map[bool]int{true: 0, false: 1}[c.status == queue.StatusQueued])
				return
			}
			e.revived(ev, c.status)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		e := s.env(t)
		isErr(t, "retry", e.b.Retry(e.ctx, e.q, queue.NewID(time.Now())), queue.ErrNotFound)
	})
}

// revived checks that ev, retried after one attempt that left it in
// status was, is queued and due now; a dead one with a fresh budget on
// top of the attempt made.
func (e *env) revived(ev *queue.Event, was queue.Status) {
	e.t.Helper()
	got := e.get(ev.ID)
	e.check(got, queue.StatusQueued, 1)
	budget := e.q.Attempts
	if was == queue.StatusDead {
		budget += 1
	}
	if got.Budget != budget || !got.DoneAt.IsZero() || !got.NextAt.IsZero() {
		e.t.Fatalf("budget %d, done at %v, next at %v; want budget %d, not done, due now", got.Budget, got.DoneAt, got.NextAt, budget)
	}
	l := e.lease(ev)
	e.mustSettle(l, queue.Delivered, time.Time{})
	e.check(e.get(ev.ID), queue.StatusDelivered, 2)
}

// Replay copies a delivered event under a new id; it retries a retrying
// or dead one under its own.
func testReplay(t *testing.T, s *suite) {
	for _, c := range []struct {
		status queue.Status
		err    error
	}{
		{queue.StatusDelivered, nil},
		{queue.StatusRetrying, nil},
		{queue.StatusDead, nil},
		{queue.StatusQueued, queue.ErrState},
	} {
		t.Run(string(c.status), func(t *testing.T) {
			e := s.env(t)
			ev := e.inState(c.status)
			newID := queue.NewID(time.Now())
			got, err := e.b.Replay(e.ctx, e.q, ev.ID, newID)
			isErr(t, "replay", err, c.err)
			switch {
			case c.err != nil:
				e.gone(newID)
			case c.status == queue.StatusDelivered:
				if got != newID {
					t.Fatalf("replay returned %q, want the new id %q", got, newID)
				}
				e.replayed(ev, newID)
			default:
				if got != ev.ID {
					t.Fatalf("replay returned %q, want the event's own id %q", got, ev.ID)
				}
				e.gone(newID)
				e.revived(ev, c.status)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		e := s.env(t)
		_, err := e.b.Replay(e.ctx, e.q, queue.NewID(time.Now()), queue.NewID(time.Now()))
		isErr(t, "replay", err, queue.ErrNotFound)
	})
}

// replayed checks the copy newID of the delivered ev.
func (e *env) replayed(ev *queue.Event, newID string) {
	e.t.Helper()
	cp := e.get(newID)
	want := *ev
	want.ID, want.ReplayOf, want.Budget = newID, ev.ID, e.q.Attempts
	want.ReceivedAt = cp.ReceivedAt
	same(e.t, cp, &want, true)
	e.check(cp, queue.StatusQueued, 0)
	if len(cp.Log) != 0 || cp.ReceivedAt.Before(ev.ReceivedAt) || !cp.DoneAt.IsZero() {
		e.t.Fatalf("the copy %+v: want no log, received after the original, not done", cp)
	}
	e.check(e.get(ev.ID), queue.StatusDelivered, 1)
	e.mustSettle(e.lease(cp), queue.Delivered, time.Time{})
	if st := e.stats(); st.Queued != 0 {
		e.t.Fatalf("stats %+v after delivering the copy", st)
	}
}

// List returns the events newest first, filtered, without bodies.
func testList(t *testing.T, s *suite) {
	e := s.env(t)
	base := time.Now().Add(-time.Minute)
	var evs []*queue.Event
	for i := range 4 {
		evs = append(evs, e.eventAt(base.Add(time.Duration(i)*10*time.Millisecond), `{}`, ""))
	}
	e.enqueue(evs...)
	for _, l := range e.receiveN(4) {
		switch l.Event.ID {
		case evs[1].ID:
			e.mustSettle(l, queue.Delivered, time.Time{})
		case evs[2].ID:
			e.mustSettle(l, queue.Dead, time.Time{})
		}
	}
	ids := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, evs[i].ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    queue.Filter
		want []string
	}{
		{"all", queue.Filter{}, ids(3, 2, 1, 0)},
		{"dead", queue.Filter{Status: queue.StatusDead}, ids(2)},
		{"queued", queue.Filter{Status: queue.StatusQueued}, ids(3, 0)},
		{"limit", queue.Filter{Limit: 2}, ids(3, 2)},
		{"since", queue.Filter{Since: evs[2].ReceivedAt}, ids(3, 2)},
		{"since and status", queue.Filter{Since: evs[1].ReceivedAt, Status: queue.StatusDelivered}, ids(1)},
		{"nothing", queue.Filter{Status: queue.StatusRetrying}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := e.list(c.f); !slices.Equal(got, c.want) {
				t.Fatalf("list %+v = %v, want %v", c.f, got, c.want)
			}
		})
	}
}

// Stats count the events by where they are.
func testStats(t *testing.T, s *suite) {
	e := s.env(t, ordered)
	base := time.Now().Add(-time.Minute)
	a := e.eventAt(base, `{"a":1}`, "k")
	b := e.eventAt(base.Add(time.Millisecond), `{"b":2}`, "k")
	c := e.eventAt(base.Add(2*time.Millisecond), `{"c":3}`, "")
	z := e.eventAt(base.Add(3*time.Millisecond), `{"z":4}`, "")
	e.enqueue(a, b, c, z)
	for _, l := range e.receiveN(3) {
		switch l.Event.ID {
		case c.ID:
			e.mustSettle(l, queue.Retry, time.Now().Add(longTime))
		case z.ID:
			e.mustSettle(l, queue.Dead, time.Time{})
		}
	}
	d := e.event(`{"d":5}`, "")
	e.enqueue(d)
	want := queue.Stats{
		Queue:  e.q.Name,
		Queued: 4, Bytes: a.Size() + b.Size() + c.Size() + d.Size(),
		Ready: 1, InFlight: 1, Delayed: 1, Waiting: 1, Dead: 1,
		Oldest: a.ReceivedAt,
	}
	got := e.stats()
	oldest := got.Oldest
	got.Oldest = want.Oldest // times compare with Equal
	if got != want || !oldest.Equal(want.Oldest) {
		t.Fatalf("stats\n got %+v (oldest %v)\nwant %+v", got, oldest, want)
	}
}

// Delivered and dead events are forgotten after their retention, each
// its own.
func testRetention(t *testing.T, s *suite) {
	const short = time.Second
	for _, c := range []struct {
		name       string
		retention  time.Duration
		dead       time.Duration
		expiring   queue.Outcome
		deadFigure int64 // Stats.Dead once the expiring one is gone
	}{
		{"delivered", short, time.Minute, queue.Delivered, 1},
		{"dead", time.Minute, short, queue.Dead, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := s.env(t, func(q *queue.Spec) { q.Retention, q.DeadRetention = c.retention, c.dead })
			delivered, dead := e.event(`{}`, ""), e.event(`{}`, "")
			e.enqueue(delivered, dead)
			start := time.Now()
			for _, l := range e.receiveN(2) {
				outcome := map[bool]queue.Outcome{true: queue.Delivered, false: queue.Dead}[l.Event.ID == delivered.ID]
				e.mustSettle(l, outcome, time.Time{})
			}
			expiring, kept := delivered, dead
			if c.expiring == queue.Dead {
				expiring, kept = dead, delivered
			}
			if _, err := e.b.Get(e.ctx, e.q, expiring.ID); err != nil && time.Since(start) < short-slack {
				t.Fatalf("get right after settling: %v", err)
			}
			e.within("expiry", func() bool {
				_, err := e.b.Get(e.ctx, e.q, expiring.ID)
				return err != nil
			})
			if d := time.Since(start); d < short-slack {
				t.Fatalf("forgotten after %v, before its retention", d)
			}
			e.gone(expiring.ID)
			e.get(kept.ID)
			if ids := e.list(queue.Filter{}); !slices.Equal(ids, []string{kept.ID}) {
				t.Fatalf("list %v, want only %s", ids, kept.ID)
			}
			if st := e.stats(); st.Dead != c.deadFigure {
				t.Fatalf("stats say %d dead, want %d", st.Dead, c.deadFigure)
			}
		})
	}
}
