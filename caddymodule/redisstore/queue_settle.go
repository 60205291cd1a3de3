package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

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
