package redisstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// TestQueueWithPools: the worker pools of two instances, each with its
// own client, deliver every event of a shared Redis queue, through
// failures, each event to the app with a 2xx exactly once (nothing is
// killed here, so there is no cause for a duplicate).
func TestQueueWithPools(t *testing.T) {
	srv := testredis.Start(t)
	var mu sync.Mutex
	attempts, delivered := map[string]int{}, map[string]int{}
	// A real HTTP app (httptest: gatewaytest imports this package).
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Webhook-Gateway-Delivery-Id")
		mu.Lock()
		defer mu.Unlock()
		attempts[id]++
		if attempts[id] == 1 && len(attempts)%3 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		delivered[id]++
	}))
	t.Cleanup(app.Close)
	cfg := queue.Config{To: app.URL + "/hook", Attempts: 5, FirstDelay: caddy.Duration(50 * time.Millisecond), Partitions: 3}
	cfg.Provision()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	spec := cfg.Spec(t.Name())
	var backends []*Queue
	for i := range 2 {
		q := testQueue(t, Config{URL: srv.URL()})
		backends = append(backends, q)
		p, err := queue.NewPool(queue.PoolOptions{Backend: q, Spec: spec, Config: &cfg, Consumer: "instance-" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = p.Stop(ctx)
		})
	}
	const n = 90
	var ids []string
	for i := range n {
		ev := testEvent("")
		ev.Header = http.Header{"Content-Type": {"application/json"}} // sendable
		enqueue(t, backends[i%2], spec, ev)
		ids = append(ids, ev.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(delivered)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered within 30s", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	retried := 0
	for _, id := range ids {
		if delivered[id] != 1 {
			t.Fatalf("%s reached the app with a 2xx %d times, want once", id, delivered[id])
		}
		if attempts[id] > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no event was retried; the test's failures did not happen")
	}
	if st := stats(t, backends[0], spec); st.Queued != 0 || st.InFlight != 0 || st.Delayed != 0 {
		t.Fatalf("stats %+v, want nothing left", st)
	}
}
