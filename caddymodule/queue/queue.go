// Package queue is durable delivery: a verified delivery is stored,
// answered at once, and delivered to the app by workers that retry with
// backoff until the app answers 2xx or the attempts run out (then the
// event is dead, and can be replayed).
//
// A Backend keeps the events and their state; Memory keeps them in one
// process (not durable), and the redisstore package keeps them in Redis
// Streams, shared by every gateway instance. Workers read from a
// Backend and deliver. Every state change of an event is one call to the
// Backend, and one Lua script on Redis, so that no second source of
// truth can drift from it.
//
// Delivery is at least once: an attempt whose answer is lost (the
// gateway dies after the app answered) is made again, with the same
// delivery id, which the app uses to deduplicate.
package queue

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Status is where an event is in its life.
type Status string

const (
	// StatusQueued: waiting for an attempt (its first, a deferred one,
	// or behind an earlier event of its order key), or being attempted.
	StatusQueued Status = "queued"
	// StatusRetrying: an attempt failed; the next is due at NextAt.
	StatusRetrying Status = "retrying"
	// StatusDelivered: the app answered 2xx. Kept for the queue's
	// retention, then forgotten.
	StatusDelivered Status = "delivered"
	// StatusDead: the attempts ran out, or the app answered a status
	// that ends delivery (410, dead_on). Kept for dead_retention.
	StatusDead Status = "dead"
)

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRetrying, StatusDelivered, StatusDead:
		return true
	}
	return false
}

// Event is one accepted delivery, as stored.
type Event struct {
	// ID is the delivery id: stable for the event across its attempts,
	// retries and replays until the app answers 2xx. Sortable by time
	// of intake (see NewID).
	ID string `json:"id"`
	// Queue is the queue's name (the handler's source).
	Queue string `json:"queue"`
	// Partition is the Redis stream the event lives in; 0 for the
	// memory backend and for queues of one partition.
	Partition int `json:"partition"`

	Provider  string `json:"provider"`
	EventID   string `json:"event_id,omitempty"`
	EventType string `json:"event_type,omitempty"`

	// Method, Header and Body are the request as the handler received
	// and verified it: the body byte for byte, the headers with static
	// credentials dropped and the gateway's own headers set.
	Method string      `json:"method"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body,omitempty"`

	// OrderKey, when the queue is ordered, is the key whose events are
	// delivered one at a time, in the order they were accepted.
	OrderKey string `json:"order_key,omitempty"`
	// ReplayOf is the delivery id this event replays, for a replay of
	// an event the app had already answered 2xx.
	ReplayOf string `json:"replay_of,omitempty"`
	// DedupKey is the delivery's idempotency key at intake, if any. An
	// event enqueued with the key of an event still kept is not stored
	// again: Enqueue gives it that event's id instead. It catches what
	// the idempotency claim cannot: a gateway that died after storing
	// the event and before recording the provider's answer, whose
	// provider then sent the event again.
	DedupKey string `json:"-"`

	ReceivedAt time.Time `json:"received_at"`
	Status     Status    `json:"status"`
	// Attempts is how many attempts were made and counted (deferred
	// ones, for rate, concurrency or pause, are not).
	Attempts int `json:"attempts"`
	// Budget is how many counted attempts the event may still reach
	// before it is dead: the queue's attempts at intake, raised by a
	// retry or replay of a dead event.
	Budget int `json:"budget"`
	// NextAt is when the next attempt is due, for a retrying event.
	NextAt time.Time `json:"next_at,omitzero"`
	// DoneAt is when the event was delivered or died.
	DoneAt time.Time `json:"done_at,omitzero"`
	// Log is the most recent attempts, oldest first, at most MaxLog.
	Log []Attempt `json:"log,omitempty"`
}

// Size is what the event counts against max_queued_bytes.
func (e *Event) Size() int64 {
	n := int64(len(e.Body))
	for k, vs := range e.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v))
		}
	}
	return n
}

// MaxLog bounds the attempts an event's record keeps.
const MaxLog = 50

// Attempt is one attempt to deliver an event, as recorded.
type Attempt struct {
	// N is the attempt's number, as sent in Webhook-Gateway-Attempt.
	N  int       `json:"n"`
	At time.Time `json:"at"`
	// Duration is from sending the request to the end of the answer.
	Duration time.Duration `json:"duration"`
	// Status is the app's HTTP status; 0 when there was none.
	Status int `json:"status,omitempty"`
	// Error describes a failure without an answer (connection refused,
	// timeout), or why an answer ended delivery. Never a body.
	Error string `json:"error,omitempty"`
	// Outcome is what the attempt led to.
	Outcome Outcome `json:"outcome"`
}

// Outcome is how a lease ends.
type Outcome string

const (
	// Delivered: the app answered 2xx.
	Delivered Outcome = "delivered"
	// Retry: the attempt failed and counted; the event is due again at
	// Settlement.At, or dead if its budget is spent.
	Retry Outcome = "retry"
	// Dead: the attempt ended delivery for good (410, dead_on).
	Dead Outcome = "dead"
	// Defer: no attempt was made (rate, concurrency, paused, shutting
	// down); the event is due again at Settlement.At and no attempt is
	// counted.
	Defer Outcome = "defer"
)

// Lease is an event a consumer received and must settle. Until it is
// settled, no other consumer receives the event, except a reclaim after
// the queue's ReclaimAfter (the consumer is presumed dead).
type Lease struct {
	Event *Event
	// Ref identifies the lease to the backend that made it (a stream
	// entry id, for Redis). Opaque to everyone else.
	Ref string
}

// Settlement is how a lease ends.
type Settlement struct {
	Outcome Outcome
	// At is when the event is due again, for Retry and Defer.
	At time.Time
	// Attempt is the attempt's record, for every outcome but Defer.
	Attempt *Attempt
}

// Spec is a queue as the backend needs to know it: resolved from the
// handler's Config, identical in every handler that shares the queue.
type Spec struct {
	Name       string
	Partitions int // ≥ 1
	// Ordered queues deliver one event per OrderKey at a time, in the
	// order of intake; the backend holds later events back until the
	// one before is delivered or dead.
	Ordered bool
	// Attempts is the budget an event starts with.
	Attempts int
	// ReclaimAfter is how long a lease may go unsettled before another
	// consumer may take the event over: longer than an attempt can
	// possibly run (the attempt timeout plus a margin).
	ReclaimAfter time.Duration
	// Retention and DeadRetention are how long delivered and dead events
	// stay inspectable.
	Retention     time.Duration
	DeadRetention time.Duration
	// MaxQueued and MaxQueuedBytes bound the events not yet delivered
	// or dead; at the bound, Enqueue fails with ErrFull. With several
	// partitions each partition holds its share (rounded up).
	MaxQueued      int64
	MaxQueuedBytes int64
	// WaitReplicas, when positive, is how many replicas must have an
	// event before Enqueue returns (Redis WAIT), for up to WaitTimeout;
	// fewer is an error. The memory backend has no replicas and ignores
	// it.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// Filter selects events to list or replay.
type Filter struct {
	Status Status    // "" for any
	Since  time.Time // zero for any: events received at or after
	Limit  int       // at most this many, newest first; 0 for DefaultListLimit
}

// DefaultListLimit is how many events List returns without a limit.
const DefaultListLimit = 100

// Stats are a queue's figures at one moment.
type Stats struct {
	Queue string `json:"queue"`
	// Queued counts the events not yet delivered or dead, retrying ones
	// included; Bytes is their size.
	Queued int64 `json:"queued"`
	Bytes  int64 `json:"bytes"`
	// Ready are due now, InFlight are leased to a consumer, Delayed wait
	// for a retry, Waiting are held behind an earlier event of their
	// order key.
	Ready    int64 `json:"ready"`
	InFlight int64 `json:"in_flight"`
	Delayed  int64 `json:"delayed"`
	Waiting  int64 `json:"waiting"`
	Dead     int64 `json:"dead"`
	// Oldest is when the oldest event not yet delivered or dead was
	// received; zero when there is none.
	Oldest time.Time `json:"oldest,omitzero"`
	Paused bool      `json:"paused"`
}

// Backend stores events and their state. Implementations are safe for
// concurrent use by many consumers, in one process or (Redis) many.
type Backend interface {
	// Enqueue stores ev (ID, Queue, ReceivedAt, Budget set, Status
	// queued) and makes it ready, or holds it behind the event before it
	// of the same order key. It fails with ErrFull, storing nothing,
	// when the queue is at MaxQueued or MaxQueuedBytes. When an event
	// with ev.DedupKey is still kept, it stores nothing and sets ev.ID to
	// that event's id. It keeps nothing of ev past the call (it copies
	// or encodes the body and headers), so the caller may reuse them.
	Enqueue(ctx context.Context, q *Spec, ev *Event) error

	// Receive leases up to max events that are due, waiting up to wait
	// for one when none is. Before reading, it moves retries that fell
	// due into the ready set and takes over leases left unsettled for
	// longer than q.ReclaimAfter. A paused queue leases nothing.
	// consumer names the caller (unique per process and queue).
	Receive(ctx context.Context, q *Spec, consumer string, max int, wait time.Duration) ([]*Lease, error)

	// Settle ends a lease, appending s.Attempt to the event's log: the
	// event is delivered, due again at s.At (Retry within the budget,
	// Defer), or dead (Dead, or Retry with the budget spent). Settling
	// a lease that was reclaimed by another consumer meanwhile returns
	// ErrLeaseLost and changes nothing.
	Settle(ctx context.Context, q *Spec, l *Lease, s Settlement) error

	// Get returns the event with its body; ErrNotFound when it is
	// unknown or expired.
	Get(ctx context.Context, q *Spec, id string) (*Event, error)

	// List returns the events matching f, newest first, without bodies.
	List(ctx context.Context, q *Spec, f Filter) ([]*Event, error)

	// Retry makes a retrying or dead event due now; a dead one gets a
	// fresh budget of q.Attempts on top of the attempts made.
	// ErrNotFound for an unknown event, ErrState for a queued or
	// delivered one.
	Retry(ctx context.Context, q *Spec, id string) error

	// Replay enqueues a delivered event again as a new event, newID,
	// with ReplayOf set and a fresh budget, and returns newID; for a
	// dead or retrying event it does what Retry does and returns id
	// (the app never got it, so the delivery id stays). ErrFull as for
	// Enqueue, ErrState for a queued one.
	Replay(ctx context.Context, q *Spec, id, newID string) (string, error)

	// SetPaused pauses or resumes delivery; intake goes on.
	SetPaused(ctx context.Context, q *Spec, paused bool) error

	// Stats returns the queue's figures.
	Stats(ctx context.Context, q *Spec) (Stats, error)

	// AcquireSlot takes one of limit concurrency slots of the queue for
	// token, for at most ttl (a crashed holder's slot frees itself);
	// false when all are taken. ReleaseSlot gives it back.
	AcquireSlot(ctx context.Context, q *Spec, token string, limit int, ttl time.Duration) (bool, error)
	ReleaseSlot(ctx context.Context, q *Spec, token string) error
}

// Errors a Backend returns.
var (
	ErrFull      = errors.New("queue is full")
	ErrNotFound  = errors.New("no such event")
	ErrState     = errors.New("event is not in a state that allows this")
	ErrLeaseLost = errors.New("lease no longer held")
)
