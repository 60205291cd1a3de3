package queue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Memory is a Backend kept in this process: the same semantics as the
// Redis one, for one gateway instance, and lost when it stops. The zero
// value is ready to use.
type Memory struct {
	// Now is the clock that stamps leases, due times and expiry.
	// Default: time.Now. Waiting in Receive uses real timers for the
	// differences between its times.
	Now func() time.Time

	mu     sync.Mutex
	queues map[string]*memQueue
	leases uint64 // the last lease's number, for Refs
}

// expireBatch bounds the expired records one call forgets, so that no
// call stalls on a backlog; every call forgets some, and what is
// expired but not yet forgotten is treated as gone.
const expireBatch = 256

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// queue returns q's state, with m.mu held, after forgetting what
// expired.
func (m *Memory) queue(q *Spec, now time.Time) *memQueue {
	if m.queues == nil {
		m.queues = map[string]*memQueue{}
	}
	mq := m.queues[q.Name]
	if mq == nil {
		mq = newMemQueue()
		m.queues[q.Name] = mq
	}
	mq.expire(q, now, expireBatch)
	return mq
}

// Enqueue implements Backend.
func (m *Memory) Enqueue(ctx context.Context, q *Spec, ev *Event) error {
	if ev.ID == "" {
		return fmt.Errorf("queue: enqueue: event without an id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mq := m.queue(q, m.now())
	if id, ok := mq.dedup[ev.DedupKey]; ok && ev.DedupKey != "" {
		ev.ID = id
		return nil
	}
	if mq.records[ev.ID] != nil {
		return fmt.Errorf("queue: enqueue %q: id already stored", ev.ID)
	}
	if !mq.fits(q, ev.Size()) {
		return ErrFull
	}
	// As the Redis backend does: what the caller left unset, Enqueue
	// sets, on the caller's event too.
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = m.now()
	}
	if ev.Budget <= 0 {
		ev.Budget = q.Attempts
	}
	ev.Queue, ev.Partition, ev.Status = q.Name, 0, StatusQueued
	if ev.DedupKey != "" {
		mq.dedup[ev.DedupKey] = ev.ID
	}
	mq.admit(q, copyEvent(ev, true))
	return nil
}

// Receive implements Backend.
func (m *Memory) Receive(ctx context.Context, q *Spec, consumer string, max int, wait time.Duration) ([]*Lease, error) {
	if max <= 0 {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		leases, wake, next := m.tryReceive(q, consumer, max)
		if len(leases) > 0 {
			return leases, nil
		}
		sleep := time.Until(deadline)
		if sleep <= 0 {
			return nil, nil
		}
		if next > 0 && next < sleep {
			sleep = next
		}
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// tryReceive leases what is due; with nothing due it returns the
// channel closed on the queue's next change and how long until a retry
// falls due or a lease may be taken over (0 for never).
func (m *Memory) tryReceive(q *Spec, consumer string, max int) ([]*Lease, <-chan struct{}, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	mq := m.queue(q, now)
	if mq.paused {
		return nil, mq.wake, 0
	}
	mq.promote(now)
	var leases []*Lease
	for _, r := range mq.reclaimable(q, now, max) {
		leases = append(leases, m.lease(mq, r, consumer, now))
	}
	for len(leases) < max && mq.ready.Len() > 0 {
		r := mq.ready.Remove(mq.ready.Front()).(*memRecord)
		r.elem = nil
		leases = append(leases, m.lease(mq, r, consumer, now))
	}
	if len(leases) > 0 {
		return leases, nil, 0
	}
	return nil, mq.wake, mq.nextChange(q, now)
}

// lease hands r to consumer under a new Ref.
func (m *Memory) lease(mq *memQueue, r *memRecord, consumer string, now time.Time) *Lease {
	m.leases++
	r.ref = strconv.FormatUint(m.leases, 10)
	r.consumer = consumer
	r.leasedAt = now
	r.state = stateLeased
	r.elem = mq.leased.PushBack(r)
	return &Lease{Event: copyEvent(r.ev, true), Ref: r.ref}
}

// Settle implements Backend.
func (m *Memory) Settle(ctx context.Context, q *Spec, l *Lease, s Settlement) error {
	switch s.Outcome {
	case Delivered, Retry, Dead, Defer:
	default:
		return fmt.Errorf("queue: settle: unknown outcome %q", s.Outcome)
	}
	if l == nil || l.Event == nil {
		return fmt.Errorf("queue: settle: no lease")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	mq := m.queue(q, now)
	r := mq.records[l.Event.ID]
	if r == nil || r.state != stateLeased || r.ref != l.Ref {
		return ErrLeaseLost
	}
	mq.leased.Remove(r.elem)
	r.elem, r.ref, r.consumer = nil, "", ""
	ev := r.ev
	if s.Attempt != nil {
		ev.Log = append(ev.Log, *s.Attempt)
		if over := len(ev.Log) - MaxLog; over > 0 {
			ev.Log = append([]Attempt(nil), ev.Log[over:]...)
		}
	}
	if s.Outcome != Defer {
		ev.Attempts++
	}
	switch {
	case s.Outcome == Delivered:
		mq.finish(r, StatusDelivered, now)
	case s.Outcome == Dead, s.Outcome == Retry && ev.Attempts >= ev.Budget:
		mq.finish(r, StatusDead, now)
	default:
		if s.Outcome == Retry {
			ev.Status = StatusRetrying
		}
		ev.NextAt = s.At
		mq.schedule(r, s.At, now)
	}
	return nil
}

// Get implements Backend.
func (m *Memory) Get(ctx context.Context, q *Spec, id string) (*Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.find(q, id)
	if err != nil {
		return nil, err
	}
	return copyEvent(r.ev, true), nil
}

// find returns the unexpired record of id, with m.mu held.
func (m *Memory) find(q *Spec, id string) (*memRecord, error) {
	now := m.now()
	mq := m.queue(q, now)
	r := mq.records[id]
	if r == nil || r.expired(q, now) {
		return nil, ErrNotFound
	}
	return r, nil
}

// List implements Backend.
func (m *Memory) List(ctx context.Context, q *Spec, f Filter) ([]*Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	mq := m.queue(q, now)
	var out []*Event
	for i := len(mq.intake) - 1; i >= 0 && len(out) < limit; i-- {
		r := mq.intake[i]
		if r.gone || r.expired(q, now) ||
			(f.Status != "" && r.ev.Status != f.Status) ||
			(!f.Since.IsZero() && r.ev.ReceivedAt.Before(f.Since)) {
			continue
		}
		out = append(out, copyEvent(r.ev, false))
	}
	return out, nil
}

// Retry implements Backend.
func (m *Memory) Retry(ctx context.Context, q *Spec, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.find(q, id)
	if err != nil {
		return err
	}
	return m.queues[q.Name].revive(q, r, m.now())
}

// Replay implements Backend.
func (m *Memory) Replay(ctx context.Context, q *Spec, id, newID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.find(q, id)
	if err != nil {
		return "", err
	}
	mq, now := m.queues[q.Name], m.now()
	if r.ev.Status != StatusDelivered {
		return id, mq.revive(q, r, now)
	}
	if newID == "" || mq.records[newID] != nil {
		return "", fmt.Errorf("queue: replay %q: new id %q empty or taken", id, newID)
	}
	if !mq.fits(q, r.ev.Size()) {
		return "", ErrFull
	}
	ev := copyEvent(r.ev, true)
	ev.ID, ev.ReplayOf = newID, id
	ev.ReceivedAt, ev.Status = now, StatusQueued
	ev.Attempts, ev.Budget, ev.Log = 0, q.Attempts, nil
	ev.NextAt, ev.DoneAt = time.Time{}, time.Time{}
	mq.admit(q, ev)
	return newID, nil
}

// SetPaused implements Backend.
func (m *Memory) SetPaused(ctx context.Context, q *Spec, paused bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mq := m.queue(q, m.now())
	mq.paused = paused
	if !paused {
		mq.signal()
	}
	return nil
}

// Stats implements Backend.
func (m *Memory) Stats(ctx context.Context, q *Spec) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	mq := m.queue(q, now)
	// Exact figures want every expired record forgotten: each is
	// forgotten once, so this is bounded over the queue's life.
	mq.expire(q, now, -1)
	mq.promote(now)
	st := Stats{
		Queue:    q.Name,
		Queued:   mq.live,
		Bytes:    mq.bytes,
		Ready:    int64(mq.ready.Len()),
		InFlight: int64(mq.leased.Len()),
		Delayed:  int64(len(mq.delayed)),
		Dead:     int64(mq.done[StatusDead].Len()),
		Paused:   mq.paused,
	}
	st.Waiting = st.Queued - st.Ready - st.InFlight - st.Delayed
	st.Oldest = mq.oldest()
	return st, nil
}

// AcquireSlot implements Backend.
func (m *Memory) AcquireSlot(ctx context.Context, q *Spec, token string, limit int, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	mq := m.queue(q, now)
	for t, until := range mq.slots {
		if !now.Before(until) {
			delete(mq.slots, t)
		}
	}
	if _, held := mq.slots[token]; !held && len(mq.slots) >= limit {
		return false, nil
	}
	mq.slots[token] = now.Add(ttl)
	return true, nil
}

// ReleaseSlot implements Backend.
func (m *Memory) ReleaseSlot(ctx context.Context, q *Spec, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.queue(q, m.now()).slots, token)
	return nil
}

// copyEvent is a deep copy of ev, with its body or without, so that no
// caller shares memory with what is stored.
func copyEvent(ev *Event, body bool) *Event {
	c := *ev
	c.Header = ev.Header.Clone()
	c.Body = nil
	if body && ev.Body != nil {
		c.Body = append([]byte{}, ev.Body...)
	}
	if ev.Log != nil {
		c.Log = append([]Attempt(nil), ev.Log...)
	}
	return &c
}

// Interface guard.
var _ Backend = (*Memory)(nil)
