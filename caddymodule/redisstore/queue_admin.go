package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// Get implements queue.Backend.
func (q *Queue) Get(ctx context.Context, spec *queue.Spec, id string) (*queue.Event, error) {
	p, err := q.locate(ctx, spec, id)
	if err != nil {
		return nil, fmt.Errorf("queue: get: %w", err)
	}
	f, err := q.client.rdb.HGetAll(ctx, q.base(spec.Name, p)+"ev:"+id).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: get: %w", err)
	}
	if len(f) == 0 {
		return nil, queue.ErrNotFound // expired since located
	}
	return decodeEvent(spec.Name, p, f)
}

// locate finds the partition holding event id: the id's own first,
// where an event without an order key lives, then the others at once.
func (q *Queue) locate(ctx context.Context, spec *queue.Spec, id string) (int, error) {
	home := hashPartition(id, spec.Partitions)
	n, err := q.client.rdb.Exists(ctx, q.base(spec.Name, home)+"ev:"+id).Result()
	if err != nil || n == 1 {
		return home, err
	}
	pipe := q.client.rdb.Pipeline()
	found := make([]*redis.IntCmd, spec.Partitions)
	for p := range found {
		if p != home {
			found[p] = pipe.Exists(ctx, q.base(spec.Name, p)+"ev:"+id)
		}
	}
	if pipe.Len() == 0 {
		return 0, queue.ErrNotFound
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	for p, cmd := range found {
		if cmd != nil && cmd.Val() == 1 {
			return p, nil
		}
	}
	return 0, queue.ErrNotFound
}

// listPage is how many index entries one List script reads.
const listPage = 200

// List implements queue.Backend: each partition's index, newest first,
// merged.
func (q *Queue) List(ctx context.Context, spec *queue.Spec, f queue.Filter) ([]*queue.Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = queue.DefaultListLimit
	}
	since := "-inf"
	if !f.Since.IsZero() {
		since = strconv.FormatInt(f.Since.UnixMicro(), 10)
	}
	var all []*queue.Event
	for p := range max1(spec.Partitions) {
		evs, err := q.listPartition(ctx, spec, p, since, string(f.Status), limit)
		if err != nil {
			return nil, fmt.Errorf("queue: list: partition %d: %w", p, err)
		}
		all = append(all, evs...)
	}
	slices.SortFunc(all, func(a, b *queue.Event) int {
		return cmp.Or(b.ReceivedAt.Compare(a.ReceivedAt), cmp.Compare(b.ID, a.ID))
	})
	return all[:min(len(all), limit)], nil
}

func (q *Queue) listPartition(ctx context.Context, spec *queue.Spec, p int, since, status string, limit int) ([]*queue.Event, error) {
	var evs []*queue.Event
	stream, base := q.stream(spec.Name, p), q.base(spec.Name, p)
	for offset := int64(0); len(evs) < limit; {
		args := append([]any{base, since, status, offset, listPage}, listFields...)
		reply, err := listScript.Run(ctx, q.client.rdb, []string{stream}, args...).Slice()
		if err != nil {
			return nil, err
		}
		if len(reply) < 2 {
			return nil, fmt.Errorf("list: %d values", len(reply))
		}
		for _, v := range reply[2:] {
			values, _ := v.([]any)
			f, err := hashPairs(values, listFields)
			if err != nil {
				return nil, err
			}
			ev, err := decodeEvent(spec.Name, p, f)
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
		advance, _ := reply[0].(int64)
		if done, _ := reply[1].(int64); done == 1 {
			break
		}
		offset += advance
	}
	return evs[:min(len(evs), limit)], nil
}

// Retry implements queue.Backend.
func (q *Queue) Retry(ctx context.Context, spec *queue.Spec, id string) error {
	switch code, err := q.revive(ctx, spec, id); {
	case err != nil:
		return fmt.Errorf("queue: retry: %w", err)
	case code == reviveNotFound:
		return queue.ErrNotFound
	case code == reviveQueued || code == reviveDelivered:
		return queue.ErrState
	}
	return nil
}

// Replay implements queue.Backend.
func (q *Queue) Replay(ctx context.Context, spec *queue.Spec, id, newID string) (string, error) {
	code, err := q.revive(ctx, spec, id)
	switch {
	case err != nil:
		return "", fmt.Errorf("queue: replay: %w", err)
	case code == reviveNotFound:
		return "", queue.ErrNotFound
	case code == reviveQueued:
		return "", queue.ErrState
	case code != reviveDelivered:
		return id, nil
	}
	old, err := q.Get(ctx, spec, id)
	if err != nil {
		return "", err
	}
	ev := &queue.Event{
		ID: newID, Queue: spec.Name, Provider: old.Provider, EventID: old.EventID, EventType: old.EventType,
		Method: old.Method, Header: old.Header, Body: old.Body, OrderKey: old.OrderKey, ReplayOf: old.ID,
		ReceivedAt: time.Now(), Status: queue.StatusQueued, Budget: spec.Attempts,
	}
	if err := q.Enqueue(ctx, spec, ev); err != nil {
		return "", err
	}
	return newID, nil
}

// revive runs reviveScript on the event's partition.
func (q *Queue) revive(ctx context.Context, spec *queue.Spec, id string) (int, error) {
	p, err := q.locate(ctx, spec, id)
	if errors.Is(err, queue.ErrNotFound) {
		return reviveNotFound, nil
	}
	if err != nil {
		return 0, err
	}
	return reviveScript.Run(ctx, q.client.rdb, []string{q.stream(spec.Name, p)}, q.base(spec.Name, p), id, spec.Attempts).Int()
}

// SetPaused implements queue.Backend.
func (q *Queue) SetPaused(ctx context.Context, spec *queue.Spec, paused bool) error {
	key := q.queueKey(spec.Name, "paused")
	var err error
	if paused {
		err = q.client.rdb.Set(ctx, key, "1", 0).Err()
	} else {
		err = q.client.rdb.Del(ctx, key).Err()
	}
	if err != nil {
		return fmt.Errorf("queue: pause: %w", err)
	}
	return nil
}

// Stats implements queue.Backend: one script per partition, summed.
func (q *Queue) Stats(ctx context.Context, spec *queue.Spec) (queue.Stats, error) {
	st := queue.Stats{Queue: spec.Name}
	for p := range max1(spec.Partitions) {
		reply, err := statsScript.Run(ctx, q.client.rdb, []string{q.stream(spec.Name, p)},
			q.base(spec.Name, p), spec.DeadRetention.Milliseconds()).Slice()
		if err != nil {
			return queue.Stats{}, fmt.Errorf("queue: stats: partition %d: %w", p, err)
		}
		if err := addStats(&st, reply); err != nil {
			return queue.Stats{}, fmt.Errorf("queue: stats: partition %d: %w", p, err)
		}
	}
	var err error
	if st.Paused, err = q.paused(ctx, spec); err != nil {
		return queue.Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	return st, nil
}

// addStats adds a partition's figures (see statsScript) to st.
func addStats(st *queue.Stats, reply []any) error {
	if len(reply) != 8 {
		return fmt.Errorf("%d values, want 8", len(reply))
	}
	var n [7]int64
	for i := range n {
		v, ok := reply[i].(int64)
		if !ok {
			return fmt.Errorf("value %d is %T, want an integer", i, reply[i])
		}
		n[i] = v
	}
	live, bytes, length, pending, delayed, held, dead := n[0], n[1], n[2], n[3], n[4], n[5], n[6]
	st.Queued += live
	st.Bytes += bytes
	st.Ready += max(length-pending, 0)
	st.InFlight += pending
	st.Delayed += delayed
	st.Waiting += held
	st.Dead += dead
	if s, _ := reply[7].(string); s != "" {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("oldest: %w", err)
		}
		if t := time.Unix(0, ns); st.Oldest.IsZero() || t.Before(st.Oldest) {
			st.Oldest = t
		}
	}
	return nil
}

// AcquireSlot implements queue.Backend.
func (q *Queue) AcquireSlot(ctx context.Context, spec *queue.Spec, token string, limit int, ttl time.Duration) (bool, error) {
	n, err := acquireSlotScript.Run(ctx, q.client.rdb, []string{q.queueKey(spec.Name, "slots")}, token, limit, positiveMs(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("queue: acquiring a slot: %w", err)
	}
	return n == 1, nil
}

// ReleaseSlot implements queue.Backend.
func (q *Queue) ReleaseSlot(ctx context.Context, spec *queue.Spec, token string) error {
	if err := q.client.rdb.ZRem(ctx, q.queueKey(spec.Name, "slots"), token).Err(); err != nil {
		return fmt.Errorf("queue: releasing a slot: %w", err)
	}
	return nil
}
