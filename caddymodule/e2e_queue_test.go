package caddymodule_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// TestQueueAnswersAtOnceAndDeliversTheRequest: the provider is answered
// while the app is still busy with an earlier event, and the app then
// gets the request as the provider sent it, with the gateway's headers
// and none of the credentials or forged gateway headers.
func TestQueueAnswersAtOnceAndDeliversTheRequest(t *testing.T) {
	forEachStore(t, testQueueAnswersAtOnce)
}

func testQueueAnswersAtOnce(t *testing.T, globals string) {
	release := make(chan struct{})
	var calls atomic.Int32
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-release // the app is slow with the first event
		}
	})
	t.Cleanup(func() { close(release) })
	site := queueRoute("stripe", "stripe", stripeSigner.secret, "", up.URL+"/app/stripe", "concurrency 1") +
		queueRoute("gitlab", "gitlab", "tok-s3cret", "", up.URL+"/app/gitlab", "") +
		queueRoute("slack", "slack", "slack-secret", "", up.URL+"/app/slack", "")
	g := gatewaytest.Start(t, globals, site)

	h, body := stripeEvent(t, "evt_slow")
	sendQueued(t, g, "/stripe", h, body)
	waitFor(t, 5*time.Second, "the first attempt", func() bool { return calls.Load() == 1 })

	h, body = stripeEvent(t, "evt_q1")
	h.Set("Webhook-Gateway-Delivery-Id", "forged")
	h.Set("Webhook-Gateway-Attempt", "99")
	h.Set("Webhook-Gateway-Provider", "forged")
	start := time.Now()
	id := sendQueued(t, g, "/stripe", h, body)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the answer took %v while the app was busy", took)
	}
	if n := len(receivedFor(up, id)); n != 0 {
		t.Fatalf("the app got the event before it was free (%d times)", n)
	}
	release <- struct{}{}
	waitFor(t, 10*time.Second, "delivery", func() bool { return len(receivedFor(up, id)) == 1 })
	rcv := receivedFor(up, id)[0]
	if !bytes.Equal(rcv.Body, []byte(body)) || rcv.Method != http.MethodPost || rcv.Path != "/app/stripe" {
		t.Errorf("app got %s %s %q, want POST /app/stripe %q", rcv.Method, rcv.Path, rcv.Body, body)
	}
	checkHeader(t, rcv.Header, "Webhook-Gateway-Delivery-Id", id)
	checkHeader(t, rcv.Header, "Webhook-Gateway-Attempt", "1")
	checkHeader(t, rcv.Header, "Idempotency-Key", id)
	checkHeader(t, rcv.Header, "Webhook-Gateway-Provider", "stripe")
	checkHeader(t, rcv.Header, "Webhook-Gateway-Event-Id", "evt_q1")
	checkHeader(t, rcv.Header, "Webhook-Gateway-Event-Type", "invoice.paid")
	checkHeader(t, rcv.Header, "Stripe-Signature", h.Get("Stripe-Signature"))
	if logs := g.Logs(t); !bytes.Contains(logs, []byte(`"outcome":"queued","status":200`)) || !bytes.Contains(logs, []byte(`"delivery_id":"`+id+`"`)) {
		t.Errorf("no log line of the queued delivery %s", id)
	}

	t.Run("credentials_dropped_provider_key_kept", func(t *testing.T) {
		h := http.Header{"X-Gitlab-Token": {"tok-s3cret"}, "Idempotency-Key": {"gitlab-own-key"}, "X-Gitlab-Event": {"Push Hook"}}
		id := sendQueued(t, g, "/gitlab", h, `{"object_kind":"push"}`)
		waitFor(t, 10*time.Second, "delivery", func() bool { return len(receivedFor(up, id)) == 1 })
		rcv := receivedFor(up, id)[0]
		checkHeader(t, rcv.Header, "X-Gitlab-Token", "")
		checkHeader(t, rcv.Header, "Idempotency-Key", "gitlab-own-key")
		checkHeader(t, rcv.Header, "X-Gitlab-Event", "Push Hook")
		checkHeader(t, rcv.Header, "Webhook-Gateway-Provider", "gitlab")
	})

	t.Run("handshake_answered_at_once", func(t *testing.T) {
		body := `{"token":"t","challenge":"slack-challenge","type":"url_verification"}`
		p, _ := provider.Lookup("slack")
		m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
		if err := p.Scheme.Sign("slack-secret", m); err != nil {
			t.Fatal(err)
		}
		before := up.Count()
		resp, got := post(t, g, "/slack", m.Header, body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(got), "slack-challenge") || resp.Header.Get("Webhook-Gateway-Delivery-Id") != "" {
			t.Fatalf("status %d body %q, want the challenge answered and nothing queued", resp.StatusCode, got)
		}
		time.Sleep(300 * time.Millisecond)
		if up.Count() != before {
			t.Errorf("the handshake reached the app")
		}
	})
}

// TestQueueAppDownThenBack: with nothing listening at `to` for about
// ten seconds, the event is retried on the schedule and delivered once
// the app is back, without anyone asking; the attempts are recorded.
func TestQueueAppDownThenBack(t *testing.T) {
	forEachStore(t, testQueueAppDown)
}

func testQueueAppDown(t *testing.T, globals string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // down: connections are refused
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, globals, queueRoute("stripe", "stripe", stripeSigner.secret, "", "http://"+addr+"/hooks", "retry 30 1s 2s"))

	h, body := stripeEvent(t, "evt_down")
	id := sendQueued(t, g, "/stripe", h, body)
	downFor := 10 * time.Second
	time.Sleep(downFor)
	if ev := eventRecord(t, "stripe", id); ev.Status != queue.StatusRetrying || ev.Attempts < 3 {
		t.Fatalf("after %v down: status %s with %d attempts, want retrying with several", downFor, ev.Status, ev.Attempts)
	}
	back, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("bringing the app back on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: up.Config.Handler}
	go srv.Serve(back)
	t.Cleanup(func() { srv.Close() })

	waitFor(t, 10*time.Second, "delivery after the app came back", func() bool { return len(receivedFor(up, id)) == 1 })
	ev := eventRecord(t, "stripe", id)
	waitFor(t, 5*time.Second, "the delivered status", func() bool {
		ev = eventRecord(t, "stripe", id)
		return ev.Status == queue.StatusDelivered
	})
	attempt, _ := strconv.Atoi(receivedFor(up, id)[0].Header.Get("Webhook-Gateway-Attempt"))
	if ev.Attempts != attempt || attempt < 4 || len(ev.Log) != attempt {
		t.Fatalf("record: %d attempts, %d logged; the app got attempt %d; want them equal and at least 4", ev.Attempts, len(ev.Log), attempt)
	}
	for i, a := range ev.Log[:len(ev.Log)-1] {
		if a.Outcome != queue.Retry || a.Status != 0 || a.Error == "" {
			t.Errorf("attempt %d: %+v, want a retry with the connection error", i+1, a)
		}
		if i > 0 {
			if gap := a.At.Sub(ev.Log[i-1].At); gap < 700*time.Millisecond {
				t.Errorf("attempt %d came %v after the one before: the schedule says at least 0.8s", i+1, gap)
			}
		}
	}
	if last := ev.Log[len(ev.Log)-1]; last.Outcome != queue.Delivered || last.Status != http.StatusOK {
		t.Errorf("last attempt %+v, want delivered with 200", last)
	}
	if n, _ := caddymodule.MetricValue("caddy_webhook_gateway_queue_delivery_latency_seconds", map[string]string{"queue": "stripe"}); n != 1 {
		t.Errorf("%v deliveries timed, want 1", n)
	}
}

// TestQueueDeadAfterTheLastAttempt: an app that always fails gets the
// event exactly as many times as the queue allows, then it is dead.
func TestQueueDeadAfterTheLastAttempt(t *testing.T) {
	forEachStore(t, testQueueDead)
}

func testQueueDead(t *testing.T, globals string) {
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	g := gatewaytest.Start(t, globals, queueRoute("stripe", "stripe", stripeSigner.secret, "", up.URL, "retry 3 100ms 200ms"))
	h, body := stripeEvent(t, "evt_dead")
	id := sendQueued(t, g, "/stripe", h, body)
	var ev *queue.Event
	waitFor(t, 10*time.Second, "dead", func() bool {
		ev = eventRecord(t, "stripe", id)
		return ev.Status == queue.StatusDead
	})
	if ev.Attempts != 3 || len(ev.Log) != 3 {
		t.Fatalf("%d attempts, %d logged, want 3", ev.Attempts, len(ev.Log))
	}
	for i, a := range ev.Log {
		if a.N != i+1 || a.Status != http.StatusInternalServerError {
			t.Errorf("attempt %d: %+v, want number %d with 500", i+1, a, i+1)
		}
	}
	time.Sleep(500 * time.Millisecond) // a fourth attempt would come by now
	for outcome, want := range map[string]float64{"retry": 2, "dead": 1, "delivered": 0} {
		labels := map[string]string{"queue": "stripe", "outcome": outcome}
		if n, err := caddymodule.MetricValue("caddy_webhook_gateway_queue_attempts_total", labels); err != nil || n != want {
			t.Errorf("attempts counted as %s: %v (%v), want %v", outcome, n, err, want)
		}
	}
	if n, _ := caddymodule.MetricValue("caddy_webhook_gateway_deliveries_total", map[string]string{"outcome": "queued", "status": "200"}); n != 1 {
		t.Errorf("deliveries counted as queued: %v, want 1", n)
	}
	got := receivedFor(up, id)
	if len(got) != 3 {
		t.Fatalf("the app got %d attempts, want 3", len(got))
	}
	for i, r := range got {
		checkHeader(t, r.Header, "Webhook-Gateway-Attempt", strconv.Itoa(i+1))
	}
}

// TestQueueFull: at max_queued, intake answers 503 with Retry-After and
// stores nothing; the refused event never reaches the app.
func TestQueueFull(t *testing.T) {
	forEachStore(t, testQueueFull)
}

func testQueueFull(t *testing.T, globals string) {
	var down atomic.Bool
	down.Store(true)
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	g := gatewaytest.Start(t, globals, queueRoute("stripe", "stripe", stripeSigner.secret, "idempotency 1h", up.URL, "max_queued 2\n\t\t\tretry 100 100ms 200ms"))
	var ids []string
	for _, evt := range []string{"evt_f1", "evt_f2"} {
		h, body := stripeEvent(t, evt)
		ids = append(ids, sendQueued(t, g, "/stripe", h, body))
	}
	h, refused := stripeEvent(t, "evt_f3")
	resp, got := post(t, g, "/stripe", h, refused)
	p := decodeProblem(t, resp, got)
	if resp.StatusCode != http.StatusServiceUnavailable || p.Reason != "queue_full" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d reason %q Retry-After %q, want 503 queue_full with Retry-After", resp.StatusCode, p.Reason, resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("Webhook-Gateway-Delivery-Id") != "" {
		t.Errorf("a refused event got a delivery id")
	}
	down.Store(false)
	for _, id := range ids {
		waitFor(t, 10*time.Second, "delivery of "+id, func() bool { return eventRecord(t, "stripe", id).Status == queue.StatusDelivered })
	}
	time.Sleep(500 * time.Millisecond)
	for _, r := range up.Received() {
		if string(r.Body) == refused {
			t.Fatalf("the refused event reached the app")
		}
	}
	// The refusal released the event's claim: the provider's retry is
	// queued now that there is room.
	id := sendQueued(t, g, "/stripe", h, refused)
	waitFor(t, 10*time.Second, "delivery of the retried event", func() bool { return len(receivedFor(up, id)) == 1 })
}

// TestQueueRedeliveryQueuedOnce: a provider's redelivery of an event
// already queued is answered from the idempotency store with the same
// delivery id, and the app gets the event once.
func TestQueueRedeliveryQueuedOnce(t *testing.T) {
	forEachStore(t, testQueueRedelivery)
}

func testQueueRedelivery(t *testing.T, globals string) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, globals, queueRoute("stripe", "stripe", stripeSigner.secret, "idempotency 1h", up.URL, ""))
	h, body := stripeEvent(t, "evt_again")
	id := sendQueued(t, g, "/stripe", h.Clone(), body)
	again := sendQueued(t, g, "/stripe", h.Clone(), body)
	if again != id {
		t.Fatalf("the redelivery got delivery id %q, want %q", again, id)
	}
	resp, _ := post(t, g, "/stripe", h.Clone(), body)
	if resp.Header.Get("Webhook-Gateway-Replay") != "true" {
		t.Errorf("the redelivery's answer is not marked as a replay")
	}
	waitFor(t, 10*time.Second, "delivery", func() bool { return up.Count() > 0 })
	time.Sleep(500 * time.Millisecond)
	if n := up.Count(); n != 1 {
		t.Fatalf("the app got %d requests, want 1", n)
	}
}

// TestQueueReload: a reload keeps a queue's workers when its settings
// did not change, and drains and replaces them when they did; either
// way no event reaches the app twice and none is lost.
func TestQueueReload(t *testing.T) {
	forEachStore(t, testQueueReload)
}

func testQueueReload(t *testing.T, globals string) {
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // attempts in flight during the reload
	})
	site := func(retry string) string {
		return queueRoute("stripe", "stripe", stripeSigner.secret, "", up.URL, "concurrency 4\n\t\t\tretry "+retry)
	}
	g := gatewaytest.Start(t, globals, site("5 100ms 1s"))
	var ids []string
	send := func(n int, prefix string) {
		for i := range n {
			h, body := stripeEvent(t, fmt.Sprintf("%s_%d", prefix, i))
			ids = append(ids, sendQueued(t, g, "/stripe", h, body))
		}
	}
	send(20, "evt_before")
	g.Reload(t, globals, site("5 100ms 1s"))
	send(10, "evt_same")
	g.Reload(t, globals, site("6 100ms 1s"))
	send(10, "evt_changed")
	waitFor(t, 20*time.Second, "every delivery", func() bool { return up.Count() >= len(ids) })
	time.Sleep(500 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range up.Received() {
		seen[r.Header.Get("Webhook-Gateway-Delivery-Id")]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("delivery %s reached the app %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("the app got %d distinct deliveries, want %d", len(seen), len(ids))
	}
	// Workers started afresh warn of what can lose their events (the
	// test's Redis has no AOF); those a reload kept do not warn again.
	warning := "appendonly is no"
	if globals == "" {
		warning = "queue kept in memory: not durable"
	}
	if n := bytes.Count(g.Logs(t), []byte(warning)); n != 2 {
		t.Errorf("%q was logged %d times, want 2 (start, changed queue)", warning, n)
	}
}

// TestQueueRate: the queue's rate, kept in the state store, paces the
// attempts to the app.
func TestQueueRate(t *testing.T) {
	forEachStore(t, testQueueRate)
}

func testQueueRate(t *testing.T, globals string) {
	var times []time.Time
	var mu sync.Mutex
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
	})
	g := gatewaytest.Start(t, globals, queueRoute("stripe", "stripe", stripeSigner.secret, "", up.URL, "rate 4/s"))
	const n = 6
	for i := range n {
		h, body := stripeEvent(t, fmt.Sprintf("evt_rate_%d", i))
		sendQueued(t, g, "/stripe", h, body)
	}
	waitFor(t, 15*time.Second, "every delivery", func() bool { return up.Count() >= n })
	mu.Lock()
	defer mu.Unlock()
	// Six attempts at four a second, evenly paced: five gaps of 250ms.
	if span := times[n-1].Sub(times[0]); span < 1000*time.Millisecond {
		t.Errorf("%d attempts within %v, want them paced at 4/s (about 1.25s)", n, span)
	}
}

// startReplicated starts a Redis primary and a replica in sync with it.
func startReplicated(t *testing.T) (primary, replica *testredis.Server) {
	t.Helper()
	primary = testredis.Start(t)
	port := primary.Addr[strings.LastIndex(primary.Addr, ":")+1:]
	replica = testredis.StartWith(t, testredis.Options{Args: []string{"--replicaof", "127.0.0.1", port}})
	waitFor(t, 10*time.Second, "the replica's sync", func() bool {
		info, _ := replica.Do("INFO", "replication")
		return strings.Contains(info, "master_link_status:up")
	})
	return primary, replica
}

// TestQueueReplicated: with durability replicated, the provider's 2xx
// waits for a replica to hold the event; without a replica to
// acknowledge it, intake fails closed with 503 and Retry-After.
func TestQueueReplicated(t *testing.T) {
	primary, replica := startReplicated(t)
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "webhook_gateway {\n redis "+primary.URL()+"\n}",
		queueRoute("stripe", "stripe", stripeSigner.secret, "idempotency 1h", up.URL, "durability replicated"))
	h, body := stripeEvent(t, "evt_replicated")
	id := sendQueued(t, g, "/stripe", h, body)
	if n, err := replica.Do("EXISTS", "whgw:{q:stripe:0}:ev:"+id); err != nil || n != "1" {
		t.Fatalf("the replica has the answered event: %q, %v; want 1", n, err)
	}

	replica.Stop()
	h, body = stripeEvent(t, "evt_unreplicated")
	resp, got := post(t, g, "/stripe", h, body)
	p := decodeProblem(t, resp, got)
	if resp.StatusCode != http.StatusServiceUnavailable || p.Reason != "queue_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d reason %q Retry-After %q, want 503 queue_unavailable with Retry-After", resp.StatusCode, p.Reason, resp.Header.Get("Retry-After"))
	}
}

// TestQueueUnreplicatedRetryQueuedOnce: an event that reached the
// primary but no replica is answered 503, yet it is stored and will be
// delivered; the provider's retry must then be recognised by
// idempotency, answered with that event's delivery id, and not queued
// a second time under another id.
func TestQueueUnreplicatedRetryQueuedOnce(t *testing.T) {
	primary, replica := startReplicated(t)
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "webhook_gateway {\n redis "+primary.URL()+"\n}",
		queueRoute("stripe", "stripe", stripeSigner.secret, "idempotency 1h", up.URL, "durability replicated"))
	replica.Stop()

	h, body := stripeEvent(t, "evt_unacked")
	resp, got := post(t, g, "/stripe", h.Clone(), body)
	if p := decodeProblem(t, resp, got); resp.StatusCode != http.StatusServiceUnavailable || p.Reason != "queue_unavailable" {
		t.Fatalf("status %d reason %q, want 503 queue_unavailable", resp.StatusCode, p.Reason)
	}
	id := sendQueued(t, g, "/stripe", h.Clone(), body)
	waitFor(t, 10*time.Second, "delivery", func() bool { return up.Count() > 0 })
	time.Sleep(500 * time.Millisecond) // a second copy would arrive by now
	var ids []string
	for _, r := range up.Received() {
		if string(r.Body) == body {
			ids = append(ids, r.Header.Get("Webhook-Gateway-Delivery-Id"))
		}
	}
	if len(ids) != 1 || ids[0] != id {
		t.Fatalf("the app got the event under delivery ids %q, want once under %q", ids, id)
	}
}

// TestQueueMetricsAfterAFailedReload: a reload whose queues cannot all
// start leaves the running config in place, and the attempts of the
// queue it kept are still counted in that config's metrics.
func TestQueueMetricsAfterAFailedReload(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	kept := queueRoute("a", "stripe", stripeSigner.secret, "", up.URL, "")
	g := gatewaytest.Start(t, "", kept)
	delivered := func(want float64) {
		t.Helper()
		labels := map[string]string{"queue": "a", "outcome": "delivered"}
		waitFor(t, 10*time.Second, fmt.Sprintf("%v attempts counted", want), func() bool {
			n, err := caddymodule.MetricValue("caddy_webhook_gateway_queue_attempts_total", labels)
			return err == nil && n == want
		})
	}
	h, body := stripeEvent(t, "evt_before_failed_reload")
	sendQueued(t, g, "/a", h, body)
	delivered(1)

	// Queue b sorts after a, so a's workers are adopted before b's fail.
	broken := queueRoute("b", "stripe", stripeSigner.secret, "", "https://127.0.0.1:1", "tls_ca "+t.TempDir()+"/missing.pem")
	if err := g.TryReload("", kept+broken); err == nil || !strings.Contains(err.Error(), "tls_ca") {
		t.Fatalf("reload: %v, want it to fail on tls_ca", err)
	}
	h, body = stripeEvent(t, "evt_after_failed_reload")
	id := sendQueued(t, g, "/a", h, body)
	waitFor(t, 10*time.Second, "delivery after the failed reload", func() bool { return len(receivedFor(up, id)) == 1 })
	delivered(2)
}
