package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// ErrNotReplicated is Enqueue's error when fewer replicas than
// Spec.WaitReplicas acknowledged the event within Spec.WaitTimeout.
// The event is stored on the primary and will be delivered; the
// provider, answered with an error, sends it again, and intake's
// idempotency recognises it.
var ErrNotReplicated = errors.New("not acknowledged by enough replicas")

// Enqueue implements queue.Backend: one script in the event's
// partition, and with Spec.WaitReplicas a WAIT on the same connection.
func (q *Queue) Enqueue(ctx context.Context, spec *queue.Spec, ev *queue.Event) error {
	if ev.ID == "" {
		return errors.New("queue: enqueue: event without an id")
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = time.Now()
	}
	p := partition(spec, ev)
	keys := []string{q.stream(spec.Name, p)}
	args := []any{q.base(spec.Name, p), ev.ID,
		share(spec.MaxQueued, spec.Partitions), share(spec.MaxQueuedBytes, spec.Partitions), ev.Size(), ev.ReceivedAt.UnixMicro(),
		// The key outlives any event it can point to.
		ev.DedupKey, (spec.Retention + spec.DeadRetention).Milliseconds()}
	args = append(args, eventFields(spec, ev)...)
	var reply any
	var err error
	if spec.WaitReplicas > 0 {
		reply, err = q.enqueueReplicated(ctx, spec, keys, args)
	} else {
		reply, err = enqueueScript.Run(ctx, q.client.rdb, keys, args...).Result()
	}
	if first, ok := reply.(string); ok && err == nil {
		ev.ID = first
		return nil
	}
	stored, _ := reply.(int64)
	switch {
	case err != nil:
		return fmt.Errorf("queue: enqueue: %w", err)
	case stored == 0:
		return queue.ErrFull
	case stored < 0:
		return fmt.Errorf("queue: enqueue: event %q exists", ev.ID)
	}
	ev.Queue, ev.Partition, ev.Status = spec.Name, p, queue.StatusQueued
	if ev.Budget <= 0 {
		ev.Budget = spec.Attempts
	}
	return nil
}

// share is a partition's part of a queue-wide bound, rounded up.
func share(total int64, partitions int) int64 {
	if partitions <= 1 {
		return total
	}
	n := int64(partitions)
	return (total + n - 1) / n
}

// enqueueReplicated runs the script and WAIT on one connection, since
// WAIT counts the replicas that have the writes of its own connection.
func (q *Queue) enqueueReplicated(ctx context.Context, spec *queue.Spec, keys []string, args []any) (any, error) {
	conn, err := q.connFor(ctx, keys[0])
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	reply, err := enqueueScript.Run(ctx, conn, keys, args...).Result()
	if stored, ok := reply.(int64); err != nil || !ok || stored != 1 {
		return reply, err
	}
	acked, err := conn.Wait(ctx, spec.WaitReplicas, spec.WaitTimeout).Result()
	if err != nil {
		return 0, fmt.Errorf("waiting for replicas: %w", err)
	}
	if acked < int64(spec.WaitReplicas) {
		return 0, fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, acked, spec.WaitReplicas, spec.WaitTimeout)
	}
	return reply, nil
}

// connFor is one connection to the primary that serves key.
func (q *Queue) connFor(ctx context.Context, key string) (*redis.Conn, error) {
	switch rdb := q.client.rdb.(type) {
	case *redis.ClusterClient:
		node, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("finding the primary of %s: %w", key, err)
		}
		return node.Conn(), nil
	case *redis.Client:
		return rdb.Conn(), nil
	}
	return nil, fmt.Errorf("waiting for replicas needs a single node, sentinel or cluster client, not %T", q.client.rdb)
}
