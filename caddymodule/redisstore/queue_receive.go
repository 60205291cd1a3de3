package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

const (
	// pausedPoll is how often a Receive waiting on a paused queue looks
	// at the flag again, so a resume is seen that soon; pausedMin is the
	// least it waits, even when the caller would not, so a worker's loop
	// over a paused queue is never a hot one.
	pausedPoll = time.Second
	pausedMin  = 100 * time.Millisecond
	// maxBlock bounds one XREAD BLOCK on a single node, so that Receive
	// notices its context's end at least that often.
	maxBlock = 2 * time.Second
	// clusterBlock bounds one XREAD BLOCK on a Cluster, where several
	// partitions are waited on each on its own: the latest a new entry
	// is seen.
	clusterBlock = 250 * time.Millisecond
)

// Receive implements queue.Backend.
func (q *Queue) Receive(ctx context.Context, spec *queue.Spec, consumer string, limit int, wait time.Duration) ([]*queue.Lease, error) {
	if limit <= 0 {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for {
		paused, err := q.paused(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("queue: receive: %w", err)
		}
		if paused {
			sleep(ctx, min(max(time.Until(deadline), pausedMin), pausedPoll))
			if ctx.Err() != nil || !time.Now().Before(deadline) {
				return nil, ctx.Err()
			}
			continue
		}
		leases, marks, err := q.takeAll(ctx, spec, consumer, limit)
		if err != nil || len(leases) > 0 {
			return leases, err
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := q.await(ctx, spec, marks, left); err != nil {
			return nil, fmt.Errorf("queue: receive: waiting: %w", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// marks are where each partition's stream ended when it was last read
// (XREAD waits for entries after them; "$" for a partition that could
// not be read) and when the first retry falls due (zero for none).
type marks struct {
	last []string
	due  time.Time
}

// takeAll leases up to limit events, one script per partition, starting
// at a partition that turns with each call, so that a small limit
// starves none.
func (q *Queue) takeAll(ctx context.Context, spec *queue.Spec, consumer string, limit int) ([]*queue.Lease, marks, error) {
	n := max1(spec.Partitions)
	m := marks{last: make([]string, n)}
	var leases []*queue.Lease
	start := int(q.turn.Add(1) % uint32(n))
	for i := range n {
		p := (start + i) % n
		m.last[p] = "$"
		if len(leases) >= limit {
			continue
		}
		got, last, due, err := q.take(ctx, spec, p, consumer, limit-len(leases))
		if err != nil && len(leases) > 0 {
			// Hand out what is leased, rather than leave it to be
			// reclaimed; the error, if it lasts, comes with the next call.
			return leases, m, nil
		}
		if err != nil {
			return nil, m, fmt.Errorf("queue: receive: partition %d: %w", p, err)
		}
		leases = append(leases, got...)
		if last != "" {
			m.last[p] = last
		}
		if !due.IsZero() && (m.due.IsZero() || due.Before(m.due)) {
			m.due = due
		}
	}
	return leases, m, nil
}

func max1(n int) int { return max(n, 1) }

// take runs the take script on one partition; see takeScript. A missing
// consumer group is created again (see recoverGroup) and the script run
// once more.
func (q *Queue) take(ctx context.Context, spec *queue.Spec, p int, consumer string, limit int) (leases []*queue.Lease, last string, due time.Time, err error) {
	stream := q.stream(spec.Name, p)
	if err := q.ensureGroup(ctx, stream); err != nil {
		return nil, "", time.Time{}, err
	}
	run := func() ([]any, error) {
		horizon := min(spec.Retention, spec.DeadRetention)
		return takeScript.Run(ctx, q.client.rdb, []string{stream}, q.base(spec.Name, p), consumer, limit,
			spec.ReclaimAfter.Milliseconds(), spec.DeadRetention.Milliseconds(), horizon.Milliseconds()).Slice()
	}
	reply, err := run()
	if isNoGroup(err) {
		recreated, rerr := q.recoverGroup(ctx, spec.Name, p, stream)
		if rerr != nil || !recreated {
			return nil, "", time.Time{}, rerr
		}
		reply, err = run()
	}
	if err != nil {
		return nil, "", time.Time{}, err
	}
	return parseTake(spec.Name, p, consumer, reply)
}

func parseTake(name string, p int, consumer string, reply []any) (leases []*queue.Lease, last string, due time.Time, err error) {
	if len(reply) < 2 || (len(reply)-2)%3 != 0 {
		return nil, "", time.Time{}, fmt.Errorf("take: %d values", len(reply))
	}
	last, _ = reply[0].(string)
	if ms, ok := reply[1].(int64); ok && ms >= 0 {
		// The script counts from Redis's clock: only the interval is
		// carried over to ours.
		due = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	for i := 2; i < len(reply); i += 3 {
		entry, _ := reply[i].(string)
		deliveries, _ := reply[i+1].(int64)
		fields, _ := reply[i+2].([]any)
		f, err := hashPairs(fields, nil)
		if err != nil {
			return nil, "", time.Time{}, err
		}
		ev, err := decodeEvent(name, p, f)
		if err != nil {
			return nil, "", time.Time{}, err
		}
		leases = append(leases, &queue.Lease{Event: ev, Ref: leaseRef{p, entry, deliveries, consumer}.String()})
	}
	return leases, last, due, nil
}

// await waits, leasing nothing, until an entry is added to a partition
// after its mark, a retry falls due, or up to left.
func (q *Queue) await(ctx context.Context, spec *queue.Spec, m marks, left time.Duration) error {
	block := min(left, maxBlock)
	if !m.due.IsZero() {
		block = min(block, time.Until(m.due))
	}
	// One command cannot span a Cluster's slots: several partitions
	// there are waited on each on its own, for a short while.
	apart := q.client.IsCluster() && len(m.last) > 1
	if apart {
		block = min(block, clusterBlock)
	}
	if d, ok := ctx.Deadline(); ok {
		// A read cut off by the deadline costs the connection.
		block = min(block, time.Until(d)-10*time.Millisecond)
	}
	if block < time.Millisecond {
		return nil // Block 0 would wait for ever
	}
	rdb := q.client.Blocking()
	if !apart {
		streams := make([]string, 0, 2*len(m.last))
		for p := range m.last {
			streams = append(streams, q.stream(spec.Name, p))
		}
		return blockRead(ctx, rdb, append(streams, m.last...), block)
	}
	// Wait on each partition at once and go on when the first wakes;
	// the others end within block.
	woke := make(chan error, len(m.last))
	for p, last := range m.last {
		go func() { woke <- blockRead(ctx, rdb, []string{q.stream(spec.Name, p), last}, block) }()
	}
	return <-woke
}

// blockRead is XREAD BLOCK on streams (keys, then ids); a timeout is no
// error.
func blockRead(ctx context.Context, rdb redis.UniversalClient, streams []string, block time.Duration) error {
	err := rdb.XRead(ctx, &redis.XReadArgs{Streams: streams, Count: 1, Block: block}).Err()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// paused reports the queue's pause flag.
func (q *Queue) paused(ctx context.Context, spec *queue.Spec) (bool, error) {
	n, err := q.client.rdb.Exists(ctx, q.queueKey(spec.Name, "paused")).Result()
	return n == 1, err
}
