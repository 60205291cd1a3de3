package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// testQueue is a backend on a client of its own, as a gateway instance
// would have.
func testQueue(t *testing.T, cfg Config) *Queue {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return NewQueue(c, cfg.KeyPrefix, nil)
}

var specSeq atomic.Int64

// testSpec is a queue of its own for each test.
func testSpec(t *testing.T, partitions int) *queue.Spec {
	return &queue.Spec{
		Name: fmt.Sprintf("%s-%d", t.Name(), specSeq.Add(1)), Partitions: partitions, Attempts: 3,
		ReclaimAfter: time.Minute, Retention: time.Hour, DeadRetention: 2 * time.Hour,
		MaxQueued: 1000, MaxQueuedBytes: 1 << 20,
	}
}

func newID() string { return queue.NewID(time.Now()) }

func testEvent(orderKey string) *queue.Event {
	return &queue.Event{
		ID: newID(), Provider: "github", EventID: "e-" + newID(), EventType: "push", Method: http.MethodPost,
		Header:   http.Header{"Content-Type": {"application/json"}, "X-Odd": {"\xff\x00bytes", "second"}},
		Body:     []byte("{\"a\":1}\x00\xfe"),
		OrderKey: orderKey, ReceivedAt: time.Now(), Status: queue.StatusQueued, Budget: 3,
	}
}

func enqueue(t *testing.T, q *Queue, spec *queue.Spec, ev *queue.Event) *queue.Event {
	t.Helper()
	if err := q.Enqueue(context.Background(), spec, ev); err != nil {
		t.Fatalf("enqueue %s: %v", ev.ID, err)
	}
	return ev
}

// receive leases what is there, waiting up to wait.
func receive(t *testing.T, q *Queue, spec *queue.Spec, consumer string, max int, wait time.Duration) []*queue.Lease {
	t.Helper()
	l, err := q.Receive(context.Background(), spec, consumer, max, wait)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return l
}

// receiveOne waits (generously) for one lease and checks it is id's.
func receiveOne(t *testing.T, q *Queue, spec *queue.Spec, consumer, id string) *queue.Lease {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := receive(t, q, spec, consumer, 1, time.Second); len(l) == 1 {
			if l[0].Event.ID != id {
				t.Fatalf("leased %s, want %s", l[0].Event.ID, id)
			}
			return l[0]
		}
	}
	t.Fatalf("%s not leased within 10s", id)
	return nil
}

func settle(t *testing.T, q *Queue, spec *queue.Spec, l *queue.Lease, s queue.Settlement) {
	t.Helper()
	if err := q.Settle(context.Background(), spec, l, s); err != nil {
		t.Fatalf("settle %s %s: %v", l.Event.ID, s.Outcome, err)
	}
}

func attempt(n, status int, o queue.Outcome) *queue.Attempt {
	return &queue.Attempt{N: n, At: time.Now(), Duration: 12 * time.Millisecond, Status: status, Outcome: o}
}

func get(t *testing.T, q *Queue, spec *queue.Spec, id string) *queue.Event {
	t.Helper()
	ev, err := q.Get(context.Background(), spec, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return ev
}

func stats(t *testing.T, q *Queue, spec *queue.Spec) queue.Stats {
	t.Helper()
	st, err := q.Stats(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestQueue(t *testing.T) {
	srv := testredis.Start(t)
	runQueueTests(t, Config{URL: srv.URL()}, 1)
	runQueueTests(t, Config{URL: srv.URL()}, 3)
}

func TestQueueCluster(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	runQueueTests(t, Config{Addresses: cluster.Addrs(), Cluster: true}, 1)
	runQueueTests(t, Config{Addresses: cluster.Addrs(), Cluster: true}, 3)
}

func runQueueTests(t *testing.T, cfg Config, partitions int) {
	tests := []struct {
		name string
		run  func(t *testing.T, q *Queue, spec *queue.Spec)
	}{
		{"delivered", testDelivered},
		{"enqueued twice", testEnqueueTwice},
		{"retry until dead, then retry", testRetryDead},
		{"defer counts no attempt", testDefer},
		{"reclaim after the consumer vanished", testReclaim},
		{"order key", testOrdered},
		{"full", testFull},
		{"paused", testPaused},
		{"list", testList},
		{"replay", testReplay},
		{"slots", testSlots},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/partitions=%d", tt.name, partitions), func(t *testing.T) {
			tt.run(t, testQueue(t, cfg), testSpec(t, partitions))
		})
	}
}

func testDelivered(t *testing.T, q *Queue, spec *queue.Spec) {
	ev := enqueue(t, q, spec, testEvent(""))
	if st := stats(t, q, spec); st.Queued != 1 || st.Ready != 1 || st.Bytes != ev.Size() || !st.Oldest.Equal(ev.ReceivedAt) {
		t.Fatalf("stats after enqueue %+v, want 1 queued and ready, %d bytes, oldest %v", st, ev.Size(), ev.ReceivedAt)
	}
	l := receiveOne(t, q, spec, "c1", ev.ID)
	got := l.Event
	if !bytes.Equal(got.Body, ev.Body) || got.Header.Get("Content-Type") != "application/json" ||
		len(got.Header["X-Odd"]) != 2 || got.Header["X-Odd"][0] != "\xff\x00bytes" {
		t.Fatalf("leased event body %q header %q, want them as enqueued", got.Body, got.Header)
	}
	if !got.ReceivedAt.Equal(ev.ReceivedAt) || got.Status != queue.StatusQueued || got.Budget != 3 || got.Queue != spec.Name {
		t.Fatalf("leased %+v", got)
	}
	if st := stats(t, q, spec); st.InFlight != 1 || st.Ready != 0 {
		t.Fatalf("stats while leased %+v, want 1 in flight", st)
	}
	settle(t, q, spec, l, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(1, 200, queue.Delivered)})
	done := get(t, q, spec, ev.ID)
	if done.Status != queue.StatusDelivered || done.Attempts != 1 || len(done.Log) != 1 || done.Log[0].Status != 200 ||
		done.Log[0].Duration != 12*time.Millisecond || done.DoneAt.IsZero() {
		t.Fatalf("after delivery %+v", done)
	}
	if st := stats(t, q, spec); st.Queued != 0 || st.Bytes != 0 || st.InFlight != 0 || !st.Oldest.IsZero() {
		t.Fatalf("stats after delivery %+v, want empty", st)
	}
	ttl := q.client.rdb.PTTL(context.Background(), q.base(spec.Name, done.Partition)+"ev:"+ev.ID).Val()
	if ttl <= 0 || ttl > spec.Retention {
		t.Fatalf("delivered event's TTL %v, want up to the retention %v", ttl, spec.Retention)
	}
	if err := q.Settle(context.Background(), spec, l, queue.Settlement{Outcome: queue.Delivered}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("settling twice: %v, want ErrLeaseLost", err)
	}
}

func testEnqueueTwice(t *testing.T, q *Queue, spec *queue.Spec) {
	ev := enqueue(t, q, spec, testEvent(""))
	again := *ev
	enqueue(t, q, spec, &again) // a resend: stored once
	if st := stats(t, q, spec); st.Queued != 1 || st.Ready != 1 {
		t.Fatalf("stats %+v, want one event", st)
	}
	other := *ev
	other.ReceivedAt = ev.ReceivedAt.Add(time.Millisecond)
	if err := q.Enqueue(context.Background(), spec, &other); err == nil || errors.Is(err, queue.ErrFull) {
		t.Fatalf("another event under a taken id: %v, want an error", err)
	}
}

func testRetryDead(t *testing.T, q *Queue, spec *queue.Spec) {
	ctx := context.Background()
	ev := enqueue(t, q, spec, testEvent(""))
	if err := q.Retry(ctx, spec, ev.ID); !errors.Is(err, queue.ErrState) {
		t.Fatalf("retrying a queued event: %v, want ErrState", err)
	}
	for n := 1; n <= 3; n++ {
		l := receiveOne(t, q, spec, "c1", ev.ID)
		if l.Event.Attempts != n-1 {
			t.Fatalf("attempt %d: event has %d attempts", n, l.Event.Attempts)
		}
		at := time.Now().Add(300 * time.Millisecond)
		settle(t, q, spec, l, queue.Settlement{Outcome: queue.Retry, At: at, Attempt: attempt(n, 500, queue.Retry)})
		got := get(t, q, spec, ev.ID)
		if n < 3 {
			if got.Status != queue.StatusRetrying || !got.NextAt.Equal(at) {
				t.Fatalf("after failure %d: %s next at %v, want retrying at %v", n, got.Status, got.NextAt, at)
			}
			if st := stats(t, q, spec); st.Delayed != 1 || st.Queued != 1 {
				t.Fatalf("stats while retrying %+v", st)
			}
			if l := receive(t, q, spec, "c1", 1, 0); len(l) != 0 {
				t.Fatalf("leased %s before it was due", l[0].Event.ID)
			}
		} else if got.Status != queue.StatusDead || got.Attempts != 3 || len(got.Log) != 3 {
			t.Fatalf("after the last attempt: %+v, want dead with 3 attempts logged", got)
		}
	}
	if st := stats(t, q, spec); st.Dead != 1 || st.Queued != 0 || st.Delayed != 0 {
		t.Fatalf("stats after death %+v", st)
	}
	if err := q.Retry(ctx, spec, ev.ID); err != nil {
		t.Fatal(err)
	}
	revived := get(t, q, spec, ev.ID)
	if revived.Status != queue.StatusQueued || revived.Budget != 6 || !revived.DoneAt.IsZero() {
		t.Fatalf("retried dead event: %+v, want queued with a budget of 6", revived)
	}
	if st := stats(t, q, spec); st.Dead != 0 || st.Queued != 1 {
		t.Fatalf("stats after retry %+v", st)
	}
	l := receiveOne(t, q, spec, "c1", ev.ID)
	settle(t, q, spec, l, queue.Settlement{Outcome: queue.Dead, Attempt: attempt(4, 410, queue.Dead)})
	if got := get(t, q, spec, ev.ID); got.Status != queue.StatusDead || got.Attempts != 4 {
		t.Fatalf("after 410: %+v", got)
	}
	if err := q.Retry(ctx, spec, "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("retrying an unknown event: %v", err)
	}
}

func testDefer(t *testing.T, q *Queue, spec *queue.Spec) {
	ev := enqueue(t, q, spec, testEvent(""))
	l := receiveOne(t, q, spec, "c1", ev.ID)
	settle(t, q, spec, l, queue.Settlement{Outcome: queue.Defer, At: time.Now().Add(200 * time.Millisecond)})
	if got := get(t, q, spec, ev.ID); got.Attempts != 0 || len(got.Log) != 0 || got.Status != queue.StatusQueued {
		t.Fatalf("deferred: %+v, want queued without attempts", got)
	}
	l = receiveOne(t, q, spec, "c1", ev.ID)
	if l.Event.Attempts != 0 {
		t.Fatalf("deferred event leased with %d attempts", l.Event.Attempts)
	}
}

func testReclaim(t *testing.T, q *Queue, spec *queue.Spec) {
	spec.ReclaimAfter = 700 * time.Millisecond
	ev := enqueue(t, q, spec, testEvent(""))
	start := time.Now()
	lost := receiveOne(t, q, spec, "gone", ev.ID)
	if l := receive(t, q, spec, "other", 1, 0); len(l) != 0 && time.Since(start) < spec.ReclaimAfter {
		t.Fatal("reclaimed before ReclaimAfter")
	}
	taken := receiveOne(t, q, spec, "other", ev.ID)
	if since := time.Since(start); since < spec.ReclaimAfter {
		t.Fatalf("reclaimed after %v, before %v", since, spec.ReclaimAfter)
	}
	if err := q.Settle(context.Background(), spec, lost, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(1, 200, queue.Delivered)}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("settling a reclaimed lease: %v, want ErrLeaseLost", err)
	}
	if got := get(t, q, spec, ev.ID); got.Status != queue.StatusQueued || got.Attempts != 0 {
		t.Fatalf("a lost lease's settle changed the event: %+v", got)
	}
	settle(t, q, spec, taken, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(1, 200, queue.Delivered)})
}

func testOrdered(t *testing.T, q *Queue, spec *queue.Spec) {
	spec.Ordered = true
	var evs []*queue.Event
	for range 3 {
		evs = append(evs, enqueue(t, q, spec, testEvent("customer-1")))
	}
	other := enqueue(t, q, spec, testEvent("customer-2"))
	if st := stats(t, q, spec); st.Waiting != 2 || st.Ready != 2 {
		t.Fatalf("stats %+v, want 2 waiting and 2 ready", st)
	}
	l := receive(t, q, spec, "c1", 10, time.Second)
	if len(l) != 2 {
		t.Fatalf("leased %d, want the head of each key", len(l))
	}
	var head *queue.Lease
	for _, x := range l {
		switch x.Event.ID {
		case evs[0].ID:
			head = x
		case other.ID:
			settle(t, q, spec, x, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(1, 200, queue.Delivered)})
		default:
			t.Fatalf("leased %s, held behind its key", x.Event.ID)
		}
	}
	settle(t, q, spec, head, queue.Settlement{Outcome: queue.Retry, At: time.Now().Add(200 * time.Millisecond), Attempt: attempt(1, 503, queue.Retry)})
	head = receiveOne(t, q, spec, "c1", evs[0].ID) // the retry, not the next
	settle(t, q, spec, head, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(2, 200, queue.Delivered)})
	second := receiveOne(t, q, spec, "c1", evs[1].ID)
	settle(t, q, spec, second, queue.Settlement{Outcome: queue.Dead, Attempt: attempt(1, 410, queue.Dead)})
	third := receiveOne(t, q, spec, "c1", evs[2].ID)
	if st := stats(t, q, spec); st.Waiting != 0 {
		t.Fatalf("stats %+v, want none waiting", st)
	}
	// The dead one, retried, queues behind the key's event in flight.
	if err := q.Retry(context.Background(), spec, evs[1].ID); err != nil {
		t.Fatal(err)
	}
	if l := receive(t, q, spec, "c1", 1, 300*time.Millisecond); len(l) != 0 {
		t.Fatalf("leased %s while its key has one in flight", l[0].Event.ID)
	}
	settle(t, q, spec, third, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(1, 200, queue.Delivered)})
	receiveOne(t, q, spec, "c1", evs[1].ID)
}

func testFull(t *testing.T, q *Queue, spec *queue.Spec) {
	spec.MaxQueued = int64(2 * spec.Partitions)
	ctx := context.Background()
	// Fill the partition of a fixed order key, then one more.
	spec.Ordered = true
	for range 2 {
		enqueue(t, q, spec, testEvent("k"))
	}
	over := testEvent("k")
	if err := q.Enqueue(ctx, spec, over); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("enqueue past max_queued: %v, want ErrFull", err)
	}
	if _, err := q.Get(ctx, spec, over.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a refused event was stored: %v", err)
	}
	big := testEvent("other")
	big.Body = make([]byte, spec.MaxQueuedBytes/int64(spec.Partitions)+1)
	if err := q.Enqueue(ctx, spec, big); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("enqueue past max_queued_bytes: %v, want ErrFull", err)
	}
	if st := stats(t, q, spec); st.Queued != 2 {
		t.Fatalf("stats %+v, want the 2 accepted", st)
	}
}

func testPaused(t *testing.T, q *Queue, spec *queue.Spec) {
	ctx := context.Background()
	if err := q.SetPaused(ctx, spec, true); err != nil {
		t.Fatal(err)
	}
	ev := enqueue(t, q, spec, testEvent(""))
	trips := q.client.RoundTrips()
	start := time.Now()
	if l := receive(t, q, spec, "c1", 1, 300*time.Millisecond); len(l) != 0 {
		t.Fatal("a paused queue leased an event")
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("paused receive returned after %v, want a wait, not a hot loop", took)
	}
	if n := q.client.RoundTrips() - trips; n > 5 {
		t.Fatalf("a paused receive took %d round trips", n)
	}
	if st := stats(t, q, spec); !st.Paused || st.Queued != 1 {
		t.Fatalf("stats %+v, want paused with one queued", st)
	}
	if err := q.SetPaused(ctx, spec, false); err != nil {
		t.Fatal(err)
	}
	receiveOne(t, q, spec, "c1", ev.ID)
}

func testList(t *testing.T, q *Queue, spec *queue.Spec) {
	ctx := context.Background()
	evs := []*queue.Event{enqueue(t, q, spec, testEvent(""))}
	l := receiveOne(t, q, spec, "c1", evs[0].ID)
	settle(t, q, spec, l, queue.Settlement{Outcome: queue.Dead, Attempt: attempt(1, 410, queue.Dead)})
	for range 4 {
		time.Sleep(2 * time.Millisecond)
		evs = append(evs, enqueue(t, q, spec, testEvent("")))
	}
	tests := []struct {
		name string
		f    queue.Filter
		want []*queue.Event
	}{
		{"all, newest first", queue.Filter{}, []*queue.Event{evs[4], evs[3], evs[2], evs[1], evs[0]}},
		{"limit", queue.Filter{Limit: 2}, []*queue.Event{evs[4], evs[3]}},
		{"status", queue.Filter{Status: queue.StatusDead}, []*queue.Event{evs[0]}},
		{"since", queue.Filter{Since: evs[3].ReceivedAt}, []*queue.Event{evs[4], evs[3]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.List(ctx, spec, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("listed %d, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].ID != tt.want[i].ID || got[i].Body != nil || got[i].Header.Get("Content-Type") == "" {
					t.Fatalf("#%d: %s body %q, want %s without body, with headers", i, got[i].ID, got[i].Body, tt.want[i].ID)
				}
			}
		})
	}
	// An expired event leaves the list and the index.
	p := hashPartition(evs[0].ID, spec.Partitions)
	q.client.rdb.Del(ctx, q.base(spec.Name, p)+"ev:"+evs[0].ID)
	if got, _ := q.List(ctx, spec, queue.Filter{Status: queue.StatusDead}); len(got) != 0 {
		t.Fatalf("listed %d dead, want the expired one gone", len(got))
	}
	if n := q.client.rdb.ZCard(ctx, q.base(spec.Name, p)+"idx").Val(); n != int64(countIn(evs[1:], p, spec)) {
		t.Fatalf("partition %d index holds %d ids; the expired one stayed", p, n)
	}
}

func countIn(evs []*queue.Event, p int, spec *queue.Spec) int {
	n := 0
	for _, ev := range evs {
		if hashPartition(ev.ID, spec.Partitions) == p {
			n++
		}
	}
	return n
}

func testReplay(t *testing.T, q *Queue, spec *queue.Spec) {
	ctx := context.Background()
	ev := enqueue(t, q, spec, testEvent(""))
	if _, err := q.Replay(ctx, spec, ev.ID, newID()); !errors.Is(err, queue.ErrState) {
		t.Fatalf("replaying a queued event: %v, want ErrState", err)
	}
	l := receiveOne(t, q, spec, "c1", ev.ID)
	settle(t, q, spec, l, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(1, 200, queue.Delivered)})
	newID := newID()
	got, err := q.Replay(ctx, spec, ev.ID, newID)
	if err != nil || got != newID {
		t.Fatalf("replay of a delivered event: %q, %v; want %q", got, err, newID)
	}
	replay := receiveOne(t, q, spec, "c1", newID)
	if replay.Event.ReplayOf != ev.ID || !bytes.Equal(replay.Event.Body, ev.Body) || replay.Event.Attempts != 0 || replay.Event.Budget != spec.Attempts {
		t.Fatalf("replay %+v", replay.Event)
	}
	settle(t, q, spec, replay, queue.Settlement{Outcome: queue.Dead, Attempt: attempt(1, 410, queue.Dead)})
	if got, err := q.Replay(ctx, spec, newID, "unused"); err != nil || got != newID {
		t.Fatalf("replay of a dead event: %q, %v; want its own id", got, err)
	}
	receiveOne(t, q, spec, "c1", newID)
	if _, err := q.Replay(ctx, spec, "nope", "x"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("replaying an unknown event: %v", err)
	}
}

func testSlots(t *testing.T, q *Queue, spec *queue.Spec) {
	ctx := context.Background()
	acquire := func(token string, ttl time.Duration) bool {
		ok, err := q.AcquireSlot(ctx, spec, token, 2, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !acquire("a", time.Minute) || !acquire("b", 300*time.Millisecond) {
		t.Fatal("free slots refused")
	}
	if acquire("c", time.Minute) {
		t.Fatal("a third slot of 2 granted")
	}
	if !acquire("a", time.Minute) {
		t.Fatal("a holder renewing its slot was refused")
	}
	if err := q.ReleaseSlot(ctx, spec, "a"); err != nil {
		t.Fatal(err)
	}
	if !acquire("c", time.Minute) {
		t.Fatal("a released slot was not free")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !acquire("d", time.Minute) {
		if time.Now().After(deadline) {
			t.Fatal("an expired slot never freed itself")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
