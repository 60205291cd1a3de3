package queue

import (
	"container/heap"
	"container/list"
	"time"
)

// memState is where a record of Memory is.
type memState int

const (
	stateReady   memState = iota // in ready
	stateLeased                  // in leased
	stateDelayed                 // in delayed, due at dueAt
	stateWaiting                 // in its key's chain, behind the head
	stateDone                    // in done[status], until it expires
)

// memRecord is one stored event and where it is.
type memRecord struct {
	ev    *Event
	state memState
	// elem is r's element in ready, leased or done, by state.
	elem    *list.Element
	heapIdx int
	dueAt   time.Time
	// keyElem is r's element in its order key's chain, while it is not
	// done in an ordered queue.
	keyElem  *list.Element
	ref      string
	consumer string
	leasedAt time.Time
	// gone: forgotten, and left in intake until it is compacted.
	gone bool
}

// memQueue is one queue of Memory; every method wants Memory.mu held.
type memQueue struct {
	records map[string]*memRecord
	// intake is every record in the order of intake, oldest first.
	intake []*memRecord
	goneN  int

	ready   *list.List // due, in the order they fell due
	leased  *list.List // by leasedAt, oldest first
	delayed delayHeap
	// chains holds, per order key, the events not done, in the order of
	// intake; the first is the one that may be attempted.
	chains map[string]*list.List
	// done holds the delivered and the dead, by DoneAt, until expiry.
	done map[Status]*list.List

	live, bytes int64 // events not done, and their size
	paused      bool
	// wake is closed, and replaced, when something may have become due.
	wake  chan struct{}
	slots map[string]time.Time // token → until
	// dedup maps the DedupKey of each kept event to its id.
	dedup map[string]string
}

func newMemQueue() *memQueue {
	return &memQueue{
		records: map[string]*memRecord{},
		ready:   list.New(),
		leased:  list.New(),
		chains:  map[string]*list.List{},
		done:    map[Status]*list.List{StatusDelivered: list.New(), StatusDead: list.New()},
		wake:    make(chan struct{}),
		slots:   map[string]time.Time{},
		dedup:   map[string]string{},
	}
}

func (mq *memQueue) signal() {
	close(mq.wake)
	mq.wake = make(chan struct{})
}

// fits reports whether one more event of size fits under q's bounds (a
// bound ≤ 0 is none).
func (mq *memQueue) fits(q *Spec, size int64) bool {
	return (q.MaxQueued <= 0 || mq.live+1 <= q.MaxQueued) &&
		(q.MaxQueuedBytes <= 0 || mq.bytes+size <= q.MaxQueuedBytes)
}

// admit stores ev, a copy no caller holds.
func (mq *memQueue) admit(q *Spec, ev *Event) {
	r := &memRecord{ev: ev}
	mq.records[ev.ID] = r
	mq.intake = append(mq.intake, r)
	mq.count(r, +1)
	mq.place(q, r)
}

// count adds r to the events not done, or takes it off.
func (mq *memQueue) count(r *memRecord, sign int64) {
	mq.live += sign
	mq.bytes += sign * r.ev.Size()
}

// place makes r ready, or holds it behind its key's earlier events.
func (mq *memQueue) place(q *Spec, r *memRecord) {
	if q.Ordered && r.ev.OrderKey != "" {
		chain := mq.chains[r.ev.OrderKey]
		if chain == nil {
			chain = list.New()
			mq.chains[r.ev.OrderKey] = chain
		}
		r.keyElem = chain.PushBack(r)
		if chain.Front() != r.keyElem {
			r.state = stateWaiting
			return
		}
	}
	mq.makeReady(r)
}

func (mq *memQueue) makeReady(r *memRecord) {
	r.state = stateReady
	r.elem = mq.ready.PushBack(r)
	mq.signal()
}

// schedule makes r due at at.
func (mq *memQueue) schedule(r *memRecord, at, now time.Time) {
	if !at.After(now) {
		mq.makeReady(r)
		return
	}
	r.state, r.dueAt, r.elem = stateDelayed, at, nil
	heap.Push(&mq.delayed, r)
	// A waiting Receive sets its timer anew.
	mq.signal()
}

// promote makes the delayed events that fell due ready.
func (mq *memQueue) promote(now time.Time) {
	for len(mq.delayed) > 0 && !mq.delayed[0].dueAt.After(now) {
		mq.makeReady(heap.Pop(&mq.delayed).(*memRecord))
	}
}

// reclaimable takes off leased up to max leases left unsettled for
// q.ReclaimAfter, for a new lease.
func (mq *memQueue) reclaimable(q *Spec, now time.Time, max int) []*memRecord {
	if q.ReclaimAfter <= 0 {
		return nil
	}
	var out []*memRecord
	for len(out) < max && mq.leased.Len() > 0 {
		r := mq.leased.Front().Value.(*memRecord)
		if now.Sub(r.leasedAt) < q.ReclaimAfter {
			break
		}
		mq.leased.Remove(r.elem)
		r.elem = nil
		out = append(out, r)
	}
	return out
}

// nextChange is how long until a delayed event falls due or a lease
// may be taken over; 0 when neither will happen.
func (mq *memQueue) nextChange(q *Spec, now time.Time) time.Duration {
	var next time.Duration
	consider := func(at time.Time) {
		d := max(at.Sub(now), time.Millisecond)
		if next == 0 || d < next {
			next = d
		}
	}
	if len(mq.delayed) > 0 {
		consider(mq.delayed[0].dueAt)
	}
	if q.ReclaimAfter > 0 && mq.leased.Len() > 0 {
		consider(mq.leased.Front().Value.(*memRecord).leasedAt.Add(q.ReclaimAfter))
	}
	return next
}

// finish makes r delivered or dead, and lets the next event of its key
// go.
func (mq *memQueue) finish(r *memRecord, status Status, now time.Time) {
	r.ev.Status, r.ev.DoneAt, r.ev.NextAt = status, now, time.Time{}
	r.state = stateDone
	mq.count(r, -1)
	l := mq.done[status]
	e := l.Back()
	for e != nil && e.Value.(*memRecord).ev.DoneAt.After(now) {
		e = e.Prev()
	}
	if e == nil {
		r.elem = l.PushFront(r)
	} else {
		r.elem = l.InsertAfter(r, e)
	}
	mq.release(r)
}

// release takes r out of its key's chain; the next event of the key, if
// r led it, becomes ready.
func (mq *memQueue) release(r *memRecord) {
	if r.keyElem == nil {
		return
	}
	chain := mq.chains[r.ev.OrderKey]
	led := chain.Front() == r.keyElem
	chain.Remove(r.keyElem)
	r.keyElem = nil
	if chain.Len() == 0 {
		delete(mq.chains, r.ev.OrderKey)
		return
	}
	if next := chain.Front().Value.(*memRecord); led && next.state == stateWaiting {
		mq.makeReady(next)
	}
}

// revive makes a dead or retrying event due now; a dead one gets a
// fresh budget and goes behind the events of its key not done.
func (mq *memQueue) revive(q *Spec, r *memRecord, now time.Time) error {
	ev := r.ev
	switch ev.Status {
	case StatusDead:
		mq.done[StatusDead].Remove(r.elem)
		r.elem = nil
		ev.Budget = ev.Attempts + q.Attempts
		ev.DoneAt = time.Time{}
		mq.count(r, +1)
		mq.place(q, r)
	case StatusRetrying:
		// One ready or being attempted is due already.
		if r.state == stateDelayed {
			heap.Remove(&mq.delayed, r.heapIdx)
			mq.makeReady(r)
		}
	default:
		return ErrState
	}
	ev.Status, ev.NextAt = StatusQueued, time.Time{}
	return nil
}

// expired reports whether r, done, is past its retention (≤ 0: kept).
func (r *memRecord) expired(q *Spec, now time.Time) bool {
	if r.state != stateDone {
		return false
	}
	keep := q.Retention
	if r.ev.Status == StatusDead {
		keep = q.DeadRetention
	}
	return keep > 0 && !now.Before(r.ev.DoneAt.Add(keep))
}

// expire forgets up to limit (< 0: all) expired records of each kind.
func (mq *memQueue) expire(q *Spec, now time.Time, limit int) {
	for _, l := range mq.done {
		for n := 0; (limit < 0 || n < limit) && l.Len() > 0; n++ {
			r := l.Front().Value.(*memRecord)
			if !r.expired(q, now) {
				break
			}
			l.Remove(r.elem)
			r.elem = nil
			mq.forget(r)
		}
	}
}

func (mq *memQueue) forget(r *memRecord) {
	delete(mq.records, r.ev.ID)
	if k := r.ev.DedupKey; k != "" && mq.dedup[k] == r.ev.ID {
		delete(mq.dedup, k)
	}
	r.gone = true
	mq.goneN++
	if mq.goneN > 64 && mq.goneN > len(mq.intake)/2 {
		kept := make([]*memRecord, 0, len(mq.intake)-mq.goneN)
		for _, r := range mq.intake {
			if !r.gone {
				kept = append(kept, r)
			}
		}
		mq.intake, mq.goneN = kept, 0
	}
}

// oldest is when the earliest event not done was received.
func (mq *memQueue) oldest() time.Time {
	for _, r := range mq.intake {
		if !r.gone && r.state != stateDone {
			return r.ev.ReceivedAt
		}
	}
	return time.Time{}
}

// delayHeap orders delayed records by due time.
type delayHeap []*memRecord

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].dueAt.Before(h[j].dueAt) }
func (h delayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *delayHeap) Push(x any) {
	r := x.(*memRecord)
	r.heapIdx = len(*h)
	*h = append(*h, r)
}
func (h *delayHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	r.heapIdx = -1
	return r
}

// Interface guard.
var _ heap.Interface = (*delayHeap)(nil)
