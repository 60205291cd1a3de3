package caddymodule_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// deliveryLines returns the gateway's delivery log lines so far.
func deliveryLines(t *testing.T, g *gatewaytest.Gateway) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(g.Logs(t)))
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry["logger"] == "http.handlers.webhook_gateway" && entry["msg"] == "delivery" {
			lines = append(lines, entry)
		}
	}
	return lines
}

// TestEmptyLimitKeyFailsClosed: a limit keyed by a header the request
// lacks still applies; all such requests share one bucket, and the log
// line says so. A request that carries the header has its own bucket.
func TestEmptyLimitKeyFailsClosed(t *testing.T) {
	limits := []struct {
		name, opt, reason string
		upstream          int // of the three keyless deliveries
	}{
		{"flood_limit", "flood_limit 2/h burst 2 key {header.CF-Connecting-IP}", "flood_limited", 2},
		{"rate_limit", "rate_limit 2/h burst 2 key {header.X-Shop}", "rate_limited", 2},
	}
	for _, st := range stores(t) {
		for _, l := range limits {
			t.Run(st.name+"/"+l.name, func(t *testing.T) {
				up := gatewaytest.NewUpstream(t)
				g := gatewaytest.Start(t, st.globals, stripeRoute(l.opt, up.Addr()))
				for i := 1; i <= 3; i++ {
					resp, got := sendEvent(t, g, fmt.Sprintf(`{"id":"evt_keyless_%d"}`, i))
					if i <= 2 {
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("keyless delivery %d: status %d %s", i, resp.StatusCode, got)
						}
						continue
					}
					if resp.StatusCode != http.StatusTooManyRequests {
						t.Fatalf("keyless delivery %d: status %d; the empty key skipped the limit", i, resp.StatusCode)
					}
					if p := decodeProblem(t, resp, got); p.Reason != l.reason {
						t.Fatalf("keyless delivery %d: status %d reason %q; the empty key skipped the limit", i, resp.StatusCode, p.Reason)
					}
				}
				if n := up.Count(); n != l.upstream {
					t.Fatalf("upstream got %d, want %d", n, l.upstream)
				}
				body := `{"id":"evt_keyed"}`
				h := routes[0].signed(t, routes[0].secret, time.Now(), body)
				h.Set("CF-Connecting-IP", "192.0.2.7")
				h.Set("X-Shop", "shop-a")
				if resp, got := post(t, g, "/stripe", h, body); resp.StatusCode != http.StatusOK {
					t.Fatalf("a delivery with the key: status %d %s", resp.StatusCode, got)
				}
				lines := deliveryLines(t, g)
				if len(lines) != 4 {
					t.Fatalf("%d delivery lines, want 4", len(lines))
				}
				for i, line := range lines {
					keys, _ := line["empty_limit_key"].([]any)
					if keyless := i < 3; keyless != (len(keys) == 1 && keys[0] == l.name) {
						t.Errorf("line %d: empty_limit_key %v (keyless %v)", i, line["empty_limit_key"], keyless)
					}
				}
			})
		}
	}
}

// TestUpstreamAbortSettlesTheClaim: the upstream breaks mid-answer, so
// reverse_proxy aborts the handler with a panic. The claim is released
// (an immediate redelivery reaches the upstream, not a 409) and the log
// line says what happened.
func TestUpstreamAbortSettlesTheClaim(t *testing.T) {
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			var calls atomic.Int32
			up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					io.WriteString(w, "ok")
					return
				}
				w.Header().Set("Content-Length", "1000")
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijacking: %v", err)
					return
				}
				conn.Close()
			})
			// A lease of an hour: only a release lets the retry through.
			g := gatewaytest.Start(t, st.globals, stripeRoute("idempotency 1h {\nlease 1h\n}", up.Addr()))
			body := `{"id":"evt_abort"}`
			resp, got := sendEvent(t, g, body)
			if len(got) == 1000 {
				t.Fatalf("the aborted answer arrived whole (status %d)", resp.StatusCode)
			}
			resp, got = sendEvent(t, g, body)
			if resp.StatusCode != http.StatusOK || string(got) != "ok" || up.Count() != 2 {
				t.Fatalf("redelivery: status %d body %q, upstream %d; want 200 from the upstream (claim released)", resp.StatusCode, got, up.Count())
			}
			lines := deliveryLines(t, g)
			if len(lines) != 2 {
				t.Fatalf("%d delivery lines, want 2", len(lines))
			}
			first := lines[0]
			if first["outcome"] != "forwarded" || first["reason"] != "upstream_aborted" || first["error"] == nil || first["claim_released"] != true {
				t.Errorf("aborted delivery logged as %v; want outcome forwarded, reason upstream_aborted, an error and claim_released", first)
			}
		})
	}
}

// TestOnlySuccessIsStoredByDefault: an upstream that answers 404 (an app
// mid-deploy) releases the claim, so the provider's retry reaches the
// fixed app; store_status widens what is stored.
func TestOnlySuccessIsStoredByDefault(t *testing.T) {
	cases := []struct {
		name     string
		opts     string
		statuses []int // what the provider sees, delivery by delivery
		replays  []bool
		upstream int
	}{
		{"default_releases_404", "idempotency 1h", []int{404, 200, 200}, []bool{false, false, true}, 2},
		{"store_status_keeps_404", "idempotency 1h {\nstore_status 2xx 404\n}", []int{404, 404, 404}, []bool{false, true, true}, 1},
		{"store_status_other_code", "idempotency 1h {\nstore_status 409\n}", []int{404, 200, 200}, []bool{false, false, true}, 2},
	}
	for _, st := range stores(t) {
		for _, c := range cases {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				var calls atomic.Int32
				up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
					if calls.Add(1) == 1 {
						http.Error(w, "no such route (deploying)", http.StatusNotFound)
						return
					}
					io.WriteString(w, "handled")
				})
				g := gatewaytest.Start(t, st.globals, stripeRoute(c.opts, up.Addr()))
				for i, want := range c.statuses {
					resp, got := sendEvent(t, g, `{"id":"evt_deploy_`+c.name+`"}`)
					replayed := resp.Header.Get("Webhook-Gateway-Replay") == "true"
					if resp.StatusCode != want || replayed != c.replays[i] {
						t.Fatalf("delivery %d: status %d replayed %v (%q); want %d replayed %v", i+1, resp.StatusCode, replayed, got, want, c.replays[i])
					}
				}
				if n := up.Count(); n != c.upstream {
					t.Errorf("upstream got %d, want %d", n, c.upstream)
				}
			})
		}
	}
}

// TestFloodCannotEvictStoredAnswers: forged requests from many client
// keys fill the flood-limit buckets (live for an hour each), which have
// their own budget, so the stored answer of a delivered event survives
// and is replayed.
func TestFloodCannotEvictStoredAnswers(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	globals := "webhook_gateway {\n memory_max_entries 50\n flood_max_entries 50\n}"
	g := gatewaytest.Start(t, globals, stripeRoute("flood_limit 1/h burst 1 key {header.X-Client}\nidempotency 1h", up.Addr()))
	body := `{"id":"evt_kept"}`
	send := func(client string) (*http.Response, []byte) {
		h := routes[0].signed(t, routes[0].secret, time.Now(), body)
		h.Set("X-Client", client)
		return post(t, g, "/stripe", h, body)
	}
	if resp, got := send("provider-1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first delivery: status %d %s", resp.StatusCode, got)
	}
	for i := range 200 {
		h := http.Header{"Stripe-Signature": {"t=1,v1=00"}, "X-Client": {fmt.Sprint("client-", i)}}
		if resp, _ := post(t, g, "/stripe", h, "{}"); resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forgery %d: status %d", i, resp.StatusCode)
		}
	}
	resp, got := send("provider-2")
	if resp.Header.Get("Webhook-Gateway-Replay") != "true" || up.Count() != 1 {
		t.Fatalf("redelivery after the flood: status %d %q replay %q, upstream %d; the stored answer was evicted",
			resp.StatusCode, got, resp.Header.Get("Webhook-Gateway-Replay"), up.Count())
	}
}

// TestLeaseRenewedWhileUpstreamWorks: the upstream takes several leases
// to answer; the claim is renewed meanwhile, so a redelivery gets 409
// and never a second forward. Once the upstream answers, the answer is
// stored and renewals stop.
func TestLeaseRenewedWhileUpstreamWorks(t *testing.T) {
	const lease = time.Second
	srv := testredis.Start(t)
	backends := []struct {
		name, globals string
		redis         *testredis.Server
	}{
		{"memory", "", nil},
		{"redis", "webhook_gateway {\n redis " + srv.URL() + "\n}", srv},
	}
	for _, st := range backends {
		t.Run(st.name, func(t *testing.T) {
			release := make(chan struct{})
			arrived := make(chan struct{}, 1)
			var calls atomic.Int32
			up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					// A second forward: answered at once, counted, and
					// failing the test.
					io.WriteString(w, "second forward")
					return
				}
				arrived <- struct{}{}
				<-release
				io.WriteString(w, "slow but done")
			})
			// Also on failure, before the upstream waits for its handlers.
			var once sync.Once
			finish := func() { once.Do(func() { close(release) }) }
			t.Cleanup(finish)
			g := gatewaytest.Start(t, st.globals, stripeRoute(fmt.Sprintf("idempotency 1h {\nlease %s\n}", lease), up.Addr()))
			body := `{"id":"evt_slow"}`
			var wg sync.WaitGroup
			wg.Go(func() {
				if resp, got := sendEvent(t, g, body); resp.StatusCode != http.StatusOK || string(got) != "slow but done" {
					t.Errorf("slow delivery: status %d %q", resp.StatusCode, got)
				}
			})
			<-arrived
			if st.redis != nil {
				if _, err := st.redis.Do("CONFIG", "RESETSTAT"); err != nil {
					t.Fatal(err)
				}
			}
			// Three leases: without renewal the claim would be long gone.
			time.Sleep(3 * lease)
			resp, got := sendEvent(t, g, body)
			if resp.StatusCode != http.StatusConflict {
				t.Errorf("redelivery while the upstream works: status %d %q, want 409 in_flight", resp.StatusCode, got)
			} else if p := decodeProblem(t, resp, got); p.Reason != "in_flight" {
				t.Errorf("redelivery while the upstream works: reason %q, want in_flight", p.Reason)
			}
			finish()
			wg.Wait()
			if n := up.Count(); n != 1 {
				t.Fatalf("upstream got %d deliveries, want 1", n)
			}
			if resp, got := sendEvent(t, g, body); resp.Header.Get("Webhook-Gateway-Replay") != "true" || string(got) != "slow but done" {
				t.Errorf("after the answer: status %d %q, want the stored answer replayed", resp.StatusCode, got)
			}
			if st.redis == nil {
				return
			}
			// Renewals (extend scripts) ran while the upstream worked:
			// besides the 409, the complete and the replay, at least two.
			if trips, _ := scriptCalls(t, st.redis); trips < 5 {
				t.Errorf("%d scripts ran while the upstream worked: the claim was not renewed", trips)
			}
			if _, err := st.redis.Do("CONFIG", "RESETSTAT"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * lease)
			if trips, others := scriptCalls(t, st.redis); trips != 0 {
				t.Errorf("%d scripts ran after the answer (%v): renewals did not stop", trips, others)
			}
		})
	}
}
