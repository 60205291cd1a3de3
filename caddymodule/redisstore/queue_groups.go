package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

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
