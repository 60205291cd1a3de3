package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"go.uber.org/zap"
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
	// clusterBlock bounds one XREAD BLOCK on a Cluster, where partitions
	// are waited on each on its own: the latest a new entry is seen.
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
		due = time.UnixMilli(ms)
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
	if q.client.IsCluster() {
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
	if !q.client.IsCluster() {
		streams := make([]string, 0, 2*len(m.last))
		for p := range m.last {
			streams = append(streams, q.stream(spec.Name, p))
		}
		return blockRead(ctx, rdb, append(streams, m.last...), block)
	}
	// One command cannot span slots: wait on each partition at once and
	// go on when the first wakes. The others end within block.
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

// Settle implements queue.Backend.
func (q *Queue) Settle(ctx context.Context, spec *queue.Spec, l *queue.Lease, s queue.Settlement) error {
	ref, err := parseLeaseRef(l.Ref)
	if err != nil {
		return fmt.Errorf("queue: settle: %w", err)
	}
	switch s.Outcome {
	case queue.Delivered, queue.Retry, queue.Dead, queue.Defer:
	default:
		return fmt.Errorf("queue: settle: unknown outcome %q", s.Outcome)
	}
	attempt := ""
	if s.Attempt != nil {
		b, err := json.Marshal(s.Attempt)
		if err != nil {
			return fmt.Errorf("queue: settle: encoding the attempt: %w", err)
		}
		attempt = string(b)
	}
	var atMs, atNs int64
	if !s.At.IsZero() {
		// The score rounds up: a retry is never leased before At.
		atNs = s.At.UnixNano()
		atMs = (atNs + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	}
	settled, err := settleScript.Run(ctx, q.client.rdb, []string{q.stream(spec.Name, ref.partition)},
		q.base(spec.Name, ref.partition), l.Event.ID, ref.entry, ref.consumer, ref.deliveries, string(s.Outcome),
		atMs, strconv.FormatInt(atNs, 10), attempt, positiveMs(spec.Retention), positiveMs(spec.DeadRetention)).Int()
	if err != nil {
		return fmt.Errorf("queue: settle: %w", err)
	}
	if settled == 0 {
		return queue.ErrLeaseLost
	}
	return nil
}

// positiveMs is d in ms, at least 1: PEXPIRE 0 would delete at once.
func positiveMs(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// leaseRef is what Lease.Ref holds: the partition, the stream entry, how
// often the entry had been delivered when leased, and the consumer. The
// count tells a lease from a later one of the same entry and consumer.
type leaseRef struct {
	partition  int
	entry      string
	deliveries int64
	consumer   string
}

func (r leaseRef) String() string {
	return strconv.Itoa(r.partition) + "/" + r.entry + "/" + strconv.FormatInt(r.deliveries, 10) + "/" + r.consumer
}

func parseLeaseRef(s string) (leaseRef, error) {
	parts := strings.SplitN(s, "/", 4)
	if len(parts) != 4 {
		return leaseRef{}, errors.New("not a lease of this backend")
	}
	p, err1 := strconv.Atoi(parts[0])
	d, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || p < 0 {
		return leaseRef{}, errors.New("not a lease of this backend")
	}
	return leaseRef{p, parts[1], d, parts[3]}, nil
}

// groupState is what this process knows of a partition's consumer
// group: whether it made sure the group exists, and when it may
// recreate it next.
type groupState struct {
	ensured bool
	backoff time.Duration
	next    time.Time
	swept   time.Time // when idle consumers were last deleted
}

const (
	minGroupBackoff = 100 * time.Millisecond
	maxGroupBackoff = 30 * time.Second

	// defaultSweepEvery is how often a process looks for idle consumers
	// in a partition's group; defaultConsumerIdle how long a consumer
	// with nothing pending must have been idle to be deleted.
	defaultSweepEvery   = 10 * time.Minute
	defaultConsumerIdle = time.Hour
)

func (q *Queue) groupState(stream string) *groupState {
	g := q.groups[stream]
	if g == nil {
		g = &groupState{}
		q.groups[stream] = g
	}
	return g
}

// ensureGroup creates the partition's group the first time this
// process reads the partition (an existing group is kept), and now and
// then deletes the group's idle consumers (see sweepConsumersScript).
func (q *Queue) ensureGroup(ctx context.Context, stream string) error {
	q.mu.Lock()
	g := q.groupState(stream)
	ensured, sweep := g.ensured, time.Since(g.swept) > q.sweepEvery
	if sweep {
		g.swept = time.Now()
	}
	q.mu.Unlock()
	if !ensured {
		if err := createGroup(ctx, q.client.rdb, stream); err != nil {
			return err
		}
		q.mu.Lock()
		q.groupState(stream).ensured = true
		q.mu.Unlock()
	}
	if sweep {
		if err := sweepConsumersScript.Run(ctx, q.client.rdb, []string{stream}, q.consumerIdle.Milliseconds()).Err(); err != nil {
			return fmt.Errorf("deleting idle consumers: %w", err)
		}
	}
	return nil
}

// recoverGroup creates a group that went missing after this process
// had made sure of it: Redis lost its data, or the stream was deleted.
// Entries still in the stream are delivered again (the group starts at
// 0). It backs off, doubling up to maxGroupBackoff, so a group that
// keeps vanishing costs a command now and then, not a hot loop; false
// when it is too soon to try.
func (q *Queue) recoverGroup(ctx context.Context, name string, p int, stream string) (bool, error) {
	q.mu.Lock()
	g := q.groupState(stream)
	now := time.Now()
	if now.Before(g.next) {
		q.mu.Unlock()
		return false, nil
	}
	switch {
	case g.backoff == 0 || now.Sub(g.next) > maxGroupBackoff:
		g.backoff = minGroupBackoff // gone again after a quiet spell
	default:
		g.backoff = min(2*g.backoff, maxGroupBackoff)
	}
	g.next = now.Add(g.backoff)
	q.mu.Unlock()
	if err := createGroup(ctx, q.client.rdb, stream); err != nil {
		return false, err
	}
	q.recreated.Add(1)
	repaired, err := q.repair(ctx, name, p, stream)
	q.log.Warn("queue: consumer group was missing and is created again; events accepted before are lost unless Redis persists them (appendonly yes)",
		zap.String("queue", name), zap.Int("partition", p), zap.Int64("events_put_back", repaired), zap.Error(err))
	return true, err
}

// repairBatch is how many live events one repair script looks at.
const repairBatch = 500

// repair runs repairScript over all the partition's live events and
// returns how many it put back into the stream.
func (q *Queue) repair(ctx context.Context, name string, p int, stream string) (int64, error) {
	var fixed int64
	for offset := int64(0); ; offset += repairBatch {
		reply, err := repairScript.Run(ctx, q.client.rdb, []string{stream}, q.base(name, p), offset, repairBatch).Int64Slice()
		if err != nil {
			return fixed, fmt.Errorf("putting events back into the stream: %w", err)
		}
		if len(reply) != 2 {
			return fixed, fmt.Errorf("repair: %d values", len(reply))
		}
		fixed += reply[1]
		if reply[0] < repairBatch {
			return fixed, nil
		}
	}
}

func createGroup(ctx context.Context, rdb redis.UniversalClient, stream string) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("creating consumer group: %w", err)
	}
	return nil
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// paused reports the queue's pause flag.
func (q *Queue) paused(ctx context.Context, spec *queue.Spec) (bool, error) {
	n, err := q.client.rdb.Exists(ctx, q.queueKey(spec.Name, "paused")).Result()
	return n == 1, err
}
