package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// benchQueue is a queue without bounds that matter, on a fresh server.
func benchQueue(b *testing.B) (*Queue, *queue.Spec) {
	srv := testredis.Start(b)
	c, err := NewClient(Config{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	spec := &queue.Spec{
		Name: "bench", Partitions: 1, Attempts: 3, ReclaimAfter: time.Minute,
		Retention: time.Hour, DeadRetention: time.Hour, MaxQueued: 1 << 40, MaxQueuedBytes: 1 << 50,
	}
	return NewQueue(c, "", nil), spec
}

// benchEvent is a typical webhook: a kilobyte of JSON, a few headers.
func benchEvent() *queue.Event {
	return &queue.Event{
		ID: queue.NewID(time.Now()), Provider: "github", EventType: "push", Method: "POST",
		Header:     map[string][]string{"Content-Type": {"application/json"}, "X-Github-Delivery": {"d"}, "X-Hub-Signature-256": {"sha256=00"}},
		Body:       []byte(`{"payload":"` + strings.Repeat("x", 1000) + `"}`),
		ReceivedAt: time.Now(), Status: queue.StatusQueued, Budget: 3,
	}
}

// BenchmarkQueueEnqueue is intake's cost: one script per event.
func BenchmarkQueueEnqueue(b *testing.B) {
	q, spec := benchQueue(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := q.Enqueue(context.Background(), spec, benchEvent()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQueueDrain is delivery's cost from a backlog: leases of up to
// 64 events, each settled delivered, one op an event.
func BenchmarkQueueDrain(b *testing.B) {
	q, spec := benchQueue(b)
	ctx := context.Background()
	for range b.N {
		if err := q.Enqueue(ctx, spec, benchEvent()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		ls, err := q.Receive(ctx, spec, "c1", 64, time.Second)
		if err != nil || len(ls) == 0 {
			b.Fatalf("receive after %d of %d: %d leases, %v", done, b.N, len(ls), err)
		}
		for _, l := range ls {
			if err := q.Settle(ctx, spec, l, queue.Settlement{Outcome: queue.Delivered, Attempt: &queue.Attempt{N: 1, Status: 200, Outcome: queue.Delivered}}); err != nil {
				b.Fatal(err)
			}
		}
		done += len(ls)
	}
}
