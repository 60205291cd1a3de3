package queue_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/queue/queuetest"
)

func TestMemoryConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Backend { return &queue.Memory{} }, queuetest.Options{})
}

// The suite must not lean on the order of a batch of leases, which a
// backend of several partitions does not keep: against one that hands
// them out last first, it passes too.
func TestMemoryConformanceReversed(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Backend { return reversed{&queue.Memory{}} }, queuetest.Options{})
}

type reversed struct{ *queue.Memory }

func (r reversed) Receive(ctx context.Context, q *queue.Spec, consumer string, max int, wait time.Duration) ([]*queue.Lease, error) {
	ls, err := r.Memory.Receive(ctx, q, consumer, max, wait)
	slices.Reverse(ls)
	return ls, err
}
