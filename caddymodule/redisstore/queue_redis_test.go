package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/internal/testredis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// receiveFor calls Receive in a loop for d, as a worker would, settling
// what it leases, and returns the ids it leased.
func receiveFor(t *testing.T, q *Queue, spec *queue.Spec, d time.Duration) []string {
	t.Helper()
	var ids []string
	for end := time.Now().Add(d); time.Now().Before(end); {
		l, err := q.Receive(context.Background(), spec, "c1", 10, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, x := range l {
			ids = append(ids, x.Event.ID)
			settle(t, q, spec, x, queue.Settlement{Outcome: queue.Delivered, Attempt: attempt(1, 200, queue.Delivered)})
		}
	}
	return ids
}

// leasedAndRetrying enqueues two events and leases both: queued stays
// leased, retrying fails its attempt and is due again in retryIn.
func leasedAndRetrying(t *testing.T, q *Queue, spec *queue.Spec, retryIn time.Duration) (queued, retrying *queue.Event) {
	t.Helper()
	queued = enqueue(t, q, spec, testEvent(""))
	retrying = enqueue(t, q, spec, testEvent(""))
	leased := receive(t, q, spec, "c1", 2, time.Second)
	if len(leased) != 2 {
		t.Fatalf("leased %d, want 2", len(leased))
	}
	for _, l := range leased {
		if l.Event.ID == retrying.ID {
			settle(t, q, spec, l, queue.Settlement{Outcome: queue.Retry, At: time.Now().Add(retryIn), Attempt: attempt(1, 500, queue.Retry)})
		}
	}
	return queued, retrying
}

// TestQueueLostGroup: a consumer group that vanishes (its stream
// deleted, or Redis restarted without persistence) is created again
// once, counted, and reading goes on, without a hot loop.
func TestQueueLostGroup(t *testing.T) {
	srv := testredis.Start(t)
	tests := []struct {
		name string
		lose func(t *testing.T, q *Queue, spec *queue.Spec)
		// kept: the events queued before are still there, to deliver
		kept bool
	}{
		{"stream deleted", func(t *testing.T, q *Queue, spec *queue.Spec) {
			if _, err := srv.Do("DEL", q.stream(spec.Name, 0)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"restart without persistence", func(t *testing.T, q *Queue, spec *queue.Spec) {
			srv.Restart()
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			q := testQueue(t, Config{URL: srv.URL()})
			q.log = zap.New(core)
			spec := testSpec(t, 1)
			first := enqueue(t, q, spec, testEvent(""))
			if ids := receiveFor(t, q, spec, 300*time.Millisecond); len(ids) != 1 || ids[0] != first.ID {
				t.Fatalf("before: leased %v, want %s", ids, first.ID)
			}
			queued, retrying := leasedAndRetrying(t, q, spec, 200*time.Millisecond)
			tt.lose(t, q, spec)
			second := enqueue(t, q, spec, testEvent(""))
			trips := q.client.RoundTrips()
			want := []string{second.ID}
			if tt.kept {
				// The lease of queued died with the group: it is put back.
				want = []string{queued.ID, retrying.ID, second.ID}
			}
			ids := receiveFor(t, q, spec, time.Second)
			slices.Sort(ids)
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Fatalf("after: leased %v, want %v", ids, want)
			}
			if n := q.GroupsRecreated(); n != 1 {
				t.Fatalf("groups recreated: %d, want 1", n)
			}
			if n := logs.Len(); n != 1 {
				t.Fatalf("%d warnings logged, want 1: %v", n, logs.All())
			}
			if f := logs.All()[0].ContextMap(); f["queue"] != spec.Name || f["partition"] != int64(0) {
				t.Fatalf("warning names %v, want the queue and partition", f)
			}
			// A worker's loop waits 100ms a call: about 10 calls of a few
			// commands each. A hot loop would be thousands.
			if n := q.client.RoundTrips() - trips; n > 150 {
				t.Fatalf("%d round trips in a second of receiving", n)
			}
		})
	}
}

// TestQueueGroupKeepsVanishing: a group deleted over and over is
// recreated with backoff, not on every read.
func TestQueueGroupKeepsVanishing(t *testing.T) {
	srv := testredis.Start(t)
	q := testQueue(t, Config{URL: srv.URL()})
	spec := testSpec(t, 1)
	receiveFor(t, q, spec, 50*time.Millisecond)
	stream := q.stream(spec.Name, 0)
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		if _, err := srv.Do("XGROUP", "DESTROY", stream, group); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Receive(context.Background(), spec, "c1", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Backoff 100ms, 200ms, 400ms, 800ms: at most 4 in a second.
	if n := q.GroupsRecreated(); n < 2 || n > 5 {
		t.Fatalf("recreated %d times in a second, want a handful (backoff)", n)
	}
}

// TestQueuePersistence: with appendonly yes, queued and retrying events
// and the consumer group survive a Redis crash.
func TestQueuePersistence(t *testing.T) {
	srv := testredis.StartWith(t, testredis.Options{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	q := testQueue(t, Config{URL: srv.URL()})
	spec := testSpec(t, 1)
	queued, retrying := leasedAndRetrying(t, q, spec, 500*time.Millisecond)
	srv.Restart() // SIGKILL, then start from the AOF
	for _, id := range []string{queued.ID, retrying.ID} {
		if _, err := q.Get(context.Background(), spec, id); err != nil {
			t.Fatalf("after restart, %s: %v", id, err)
		}
	}
	if got := get(t, q, spec, retrying.ID); got.Status != queue.StatusRetrying || got.Attempts != 1 {
		t.Fatalf("retrying event after restart: %+v", got)
	}
	receiveOne(t, q, spec, "c2", retrying.ID)
	if n := q.GroupsRecreated(); n != 0 {
		t.Fatalf("group recreated %d times; it should have survived", n)
	}
	// The lease of the other, never settled, is reclaimed as usual.
	spec.ReclaimAfter = 200 * time.Millisecond
	receiveOne(t, q, spec, "c2", queued.ID)
}

// TestQueueBlockingOwnConnections: a Receive waiting on the server holds
// none of intake's connections, even with a pool of one.
func TestQueueBlockingOwnConnections(t *testing.T) {
	srv := testredis.Start(t)
	q := testQueue(t, Config{URL: srv.URL(), PoolSize: 1})
	spec := testSpec(t, 1)
	receive(t, q, spec, "c1", 1, 0) // creates the group
	type result struct {
		leases []*queue.Lease
		err    error
	}
	done := make(chan result, 1)
	go func() {
		l, err := q.Receive(context.Background(), spec, "c1", 1, 5*time.Second)
		done <- result{l, err}
	}()
	// Wait until the read is blocked on the server.
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := srv.Do("INFO", "clients")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "blocked_clients:1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Receive never blocked:\n%s", info)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ev := testEvent("")
	if err := q.Enqueue(ctx, spec, ev); err != nil {
		t.Fatalf("intake while a read blocks: %v", err)
	}
	r := <-done
	if r.err != nil || len(r.leases) != 1 || r.leases[0].Event.ID != ev.ID {
		t.Fatalf("blocked receive got %v, %v; want %s", r.leases, r.err, ev.ID)
	}
}

// TestQueueWaitReplicas: with WaitReplicas, Enqueue returns once a
// replica has the event, and fails when none acknowledges in time.
func TestQueueWaitReplicas(t *testing.T) {
	primary := testredis.Start(t)
	replica := testredis.StartWith(t, testredis.Options{Args: []string{"--replicaof", "127.0.0.1", primary.Addr[strings.LastIndex(primary.Addr, ":")+1:]}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := replica.Do("INFO", "replication")
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica never synced:\n%s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	q := testQueue(t, Config{URL: primary.URL()})
	spec := testSpec(t, 1)
	spec.WaitReplicas, spec.WaitTimeout = 1, 2*time.Second
	ev := enqueue(t, q, spec, testEvent(""))
	if n, err := replica.Do("EXISTS", q.base(spec.Name, 0)+"ev:"+ev.ID); err != nil || n != "1" {
		t.Fatalf("replica has the event: %s, %v; want 1", n, err)
	}
	spec.WaitReplicas, spec.WaitTimeout = 2, 200*time.Millisecond
	start := time.Now()
	if err := q.Enqueue(context.Background(), spec, testEvent("")); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("enqueue wanting 2 replicas of 1: %v, want ErrNotReplicated", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("gave up after %v, before the wait timeout", took)
	}
}

func TestQueueCheckDurability(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // substrings, one per warning
	}{
		{"no persistence", nil, []string{"appendonly is no"}},
		{"everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, []string{"up to a second"}},
		{"eviction", []string{"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "allkeys-lru"}, []string{"maxmemory-policy is allkeys-lru"}},
		{"durable", []string{"--appendonly", "yes", "--appendfsync", "always"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testredis.StartWith(t, testredis.Options{Args: tt.args})
			got := testQueue(t, Config{URL: srv.URL()}).CheckDurability(context.Background())
			if len(got) != len(tt.want) {
				t.Fatalf("warnings %q, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q, want it to say %q", got[i], w)
				}
			}
		})
	}
	t.Run("cluster names each node", func(t *testing.T) {
		cluster := testredis.StartCluster(t, 3)
		got := testQueue(t, Config{Addresses: cluster.Addrs(), Cluster: true}).CheckDurability(context.Background())
		if len(got) != 3 {
			t.Fatalf("warnings %q, want one per primary", got)
		}
		for _, w := range got {
			if !strings.HasPrefix(w, "127.0.0.1:") {
				t.Errorf("warning %q does not name its node", w)
			}
		}
	})
}

// TestQueueRoundTrips holds intake and a settle to one round trip each,
// once the scripts are cached.
func TestQueueRoundTrips(t *testing.T) {
	srv := testredis.Start(t)
	q := testQueue(t, Config{URL: srv.URL()})
	spec := testSpec(t, 1)
	warm := enqueue(t, q, spec, testEvent(""))
	settle(t, q, spec, receiveOne(t, q, spec, "c1", warm.ID), queue.Settlement{Outcome: queue.Delivered})
	before := q.client.RoundTrips()
	ev := enqueue(t, q, spec, testEvent(""))
	if n := q.client.RoundTrips() - before; n != 1 {
		t.Fatalf("enqueue took %d round trips, want 1", n)
	}
	before = q.client.RoundTrips()
	l := receive(t, q, spec, "c1", 1, time.Second)
	if n := q.client.RoundTrips() - before; len(l) != 1 || n != 2 {
		t.Fatalf("receive took %d round trips for %d leases, want 2 (pause flag, take)", n, len(l))
	}
	before = q.client.RoundTrips()
	settle(t, q, spec, l[0], queue.Settlement{Outcome: queue.Delivered})
	if n := q.client.RoundTrips() - before; n != 1 || l[0].Event.ID != ev.ID {
		t.Fatalf("settle took %d round trips, want 1", n)
	}
}

// TestOpenQueue: users of one config share one backend, its client and
// its counters, as a config reload does; the last release closes it.
func TestOpenQueue(t *testing.T) {
	srv := testredis.Start(t)
	cfg := Config{URL: srv.URL()}
	a, releaseA, err := OpenQueue(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := OpenQueue(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.KeyPrefix = "other"
	c, releaseC, err := OpenQueue(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a == c || a.Client() != c.Client() {
		t.Fatal("want one backend per prefix, on one client")
	}
	must(t, releaseA())
	must(t, releaseA()) // a second call is ignored
	if !open(b.Client()) {
		t.Fatal("client closed while still in use")
	}
	must(t, releaseB())
	must(t, releaseC())
	if open(a.Client()) {
		t.Fatal("client still open after the last release")
	}
}

// TestQueueSweepsConsumers: consumers of processes long gone, with
// nothing pending, leave the group; one holding a lease stays.
func TestQueueSweepsConsumers(t *testing.T) {
	srv := testredis.Start(t)
	q := testQueue(t, Config{URL: srv.URL()})
	q.sweepEvery, q.consumerIdle = 0, 300*time.Millisecond
	spec := testSpec(t, 1)
	held := enqueue(t, q, spec, testEvent(""))
	receiveOne(t, q, spec, "c-holder", held.ID)
	done := enqueue(t, q, spec, testEvent(""))
	settle(t, q, spec, receiveOne(t, q, spec, "c-idle", done.ID), queue.Settlement{Outcome: queue.Delivered})
	if info, _ := srv.Do("XINFO", "CONSUMERS", q.stream(spec.Name, 0), group); !strings.Contains(info, "c-idle") {
		t.Fatalf("consumers:\n%s\nwant c-idle there before it idles", info)
	}
	time.Sleep(400 * time.Millisecond)
	receive(t, q, spec, "c-holder", 1, 0)
	info, err := srv.Do("XINFO", "CONSUMERS", q.stream(spec.Name, 0), group)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "c-holder") || strings.Contains(info, "c-idle") {
		t.Fatalf("consumers:\n%s\nwant c-holder kept and c-idle deleted", info)
	}
}
