package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// clock is a settable Memory.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func memSpec(name string) *Spec {
	return &Spec{
		Name: name, Partitions: 1, Ordered: true, Attempts: 2,
		ReclaimAfter: time.Minute, Retention: time.Hour, DeadRetention: time.Hour,
		MaxQueued: 10000, MaxQueuedBytes: 1 << 30,
	}
}

func memEvent(c *clock, key string) *Event {
	now := c.now()
	return &Event{
		ID: NewID(now), Method: "POST", Body: []byte(`{}`), OrderKey: key,
		ReceivedAt: now, Status: StatusQueued, Budget: 2,
	}
}

// settleAll leases every due event and settles each with outcome.
func settleAll(t *testing.T, m *Memory, q *Spec, outcome func(i int) Outcome) {
	t.Helper()
	ctx := context.Background()
	ls, err := m.Receive(ctx, q, "c", 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if err := m.Settle(ctx, q, l, Settlement{Outcome: outcome(i), Attempt: &Attempt{N: 1}}); err != nil {
			t.Fatal(err)
		}
	}
}

// A backlog of expired records is forgotten a batch a call, yet every
// call already treats all of it as gone, and the intake order shrinks.
func TestMemoryExpiresABacklog(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m := &Memory{Now: c.now}
	q := memSpec("backlog")
	ctx := context.Background()
	// Enough that Get, List and Stats each forgetting a batch of each kind
	// leave some.
	n := 7*expireBatch + 7
	var ids []string
	for range n {
		ev := memEvent(c, "")
		ids = append(ids, ev.ID)
		if err := m.Enqueue(ctx, q, ev); err != nil {
			t.Fatal(err)
		}
	}
	settleAll(t, m, q, func(i int) Outcome { return []Outcome{Delivered, Dead}[i%2] })
	c.advance(time.Hour)

	if _, err := m.Get(ctx, q, ids[n-1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an expired event not yet forgotten: %v", err)
	}
	if kept := len(m.queues[q.Name].records); kept < n-2*expireBatch {
		t.Fatalf("one call forgot %d records, more than a batch of each kind", n-kept)
	}
	if evs, err := m.List(ctx, q, Filter{Limit: n}); err != nil || len(evs) != 0 {
		t.Fatalf("list = %d events, %v; want none", len(evs), err)
	}
	st, err := m.Stats(ctx, q)
	if err != nil || st.Dead != 0 || st.Queued != 0 {
		t.Fatalf("stats = %+v, %v; want nothing", st, err)
	}
	mq := m.queues[q.Name]
	if len(mq.records) != 0 || len(mq.intake) > n/4 {
		t.Fatalf("%d records and %d in the intake order left of %d", len(mq.records), len(mq.intake), n)
	}
}

// A dead event retried in an ordered queue goes behind the events of
// its key that are not done.
func TestMemoryRevivedWaitsBehindItsKey(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m := &Memory{Now: c.now}
	q := memSpec("revive")
	ctx := context.Background()
	a1, a2 := memEvent(c, "k"), memEvent(c, "k")
	for _, ev := range []*Event{a1, a2} {
		if err := m.Enqueue(ctx, q, ev); err != nil {
			t.Fatal(err)
		}
	}
	settleAll(t, m, q, func(int) Outcome { return Dead }) // a1
	if err := m.Retry(ctx, q, a1.ID); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Stats(ctx, q)
	if st.Ready != 1 || st.Waiting != 1 {
		t.Fatalf("stats %+v, want a2 ready and a1 waiting", st)
	}
	ls, _ := m.Receive(ctx, q, "c", 10, 0)
	if len(ls) != 1 || ls[0].Event.ID != a2.ID {
		t.Fatalf("leased %d, want a2 alone", len(ls))
	}
	if err := m.Settle(ctx, q, ls[0], Settlement{Outcome: Delivered}); err != nil {
		t.Fatal(err)
	}
	ls, _ = m.Receive(ctx, q, "c", 10, 0)
	if len(ls) != 1 || ls[0].Event.ID != a1.ID || ls[0].Event.Budget != 3 {
		t.Fatalf("after a2, leased %d events; want a1 with a budget of 3", len(ls))
	}
}

// Calls that cannot be right are refused, changing nothing.
func TestMemoryRefuses(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m := &Memory{Now: c.now}
	q := memSpec("refuses")
	ctx := context.Background()
	stored := memEvent(c, "")
	if err := m.Enqueue(ctx, q, stored); err != nil {
		t.Fatal(err)
	}
	ls, _ := m.Receive(ctx, q, "c", 1, 0)
	lease := ls[0]
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"enqueue without id", func() error { return m.Enqueue(ctx, q, &Event{}) }},
		{"enqueue a stored id", func() error { return m.Enqueue(ctx, q, &Event{ID: stored.ID}) }},
		{"settle without a lease", func() error { return m.Settle(ctx, q, nil, Settlement{Outcome: Delivered}) }},
		{"settle with no outcome", func() error { return m.Settle(ctx, q, lease, Settlement{}) }},
		{"replay to no id", func() error { _, err := m.Replay(ctx, q, stored.ID, ""); return err }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := m.Settle(ctx, q, lease, Settlement{Outcome: Delivered}); err != nil {
		t.Fatalf("the lease did not survive the refusals: %v", err)
	}
	if _, err := m.Replay(ctx, q, stored.ID, stored.ID); err == nil {
		t.Fatal("replay under the event's own id accepted")
	}
	if n, _ := m.Receive(ctx, q, "c", 0, time.Minute); n != nil {
		t.Fatal("receive of 0 leased something")
	}
}
