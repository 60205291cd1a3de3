package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// stores are the two state backends every state test runs against.
func stores(t *testing.T) []struct{ name, globals string } {
	srv := testredis.Start(t)
	return []struct{ name, globals string }{
		{"memory", ""},
		{"redis", "webhook_gateway {\n redis " + srv.URL() + "\n}"},
	}
}

// stripeRoute is a Stripe route with extra options and an upstream.
func stripeRoute(opts, upstream string) string {
	return fmt.Sprintf("route /stripe {\nwebhook_gateway stripe {\nsecret %s\n%s\n}\nreverse_proxy %s\n}\n", routes[0].secret, opts, upstream)
}

// sendEvent posts a genuinely signed Stripe event.
func sendEvent(t *testing.T, g *gatewaytest.Gateway, body string) (*http.Response, []byte) {
	t.Helper()
	return post(t, g, "/stripe", routes[0].signed(t, routes[0].secret, time.Now(), body), body)
}

// TestReleaseThenReplay: the upstream fails the first delivery, so the
// claim is released and the provider's retry is forwarded; its answer
// is stored and a third delivery is answered from the store, byte for
// byte, without reaching the upstream.
func TestReleaseThenReplay(t *testing.T) {
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			var calls atomic.Int32
			up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					http.Error(w, "database down", http.StatusInternalServerError)
					return
				}
				w.Header().Set("Content-Type", "application/vnd.app+json")
				w.Header().Set("X-Not-Kept", "1")
				w.WriteHeader(http.StatusAccepted)
				io.WriteString(w, `{"handled":"evt_release"}`)
			})
			g := gatewaytest.Start(t, st.globals, stripeRoute("idempotency 1h", up.Addr()))
			body := `{"id":"evt_release","type":"invoice.paid"}`
			steps := []struct {
				name     string
				status   int
				replay   string
				upstream int
			}{
				{"upstream_fails", http.StatusInternalServerError, "", 1},
				{"retry_forwarded", http.StatusAccepted, "", 2},
				{"duplicate_replayed", http.StatusAccepted, "true", 2},
				{"again_replayed", http.StatusAccepted, "true", 2},
			}
			var first []byte
			for _, s := range steps {
				resp, got := sendEvent(t, g, body)
				if resp.StatusCode != s.status || resp.Header.Get("Webhook-Gateway-Replay") != s.replay || up.Count() != s.upstream {
					t.Fatalf("%s: status %d replay %q upstream %d; want %d %q %d (body %q)",
						s.name, resp.StatusCode, resp.Header.Get("Webhook-Gateway-Replay"), up.Count(), s.status, s.replay, s.upstream, got)
				}
				if s.name == "retry_forwarded" {
					first = got
				}
				if s.replay != "" {
					if string(got) != string(first) || resp.Header.Get("Content-Type") != "application/vnd.app+json" || resp.Header.Get("X-Not-Kept") != "" {
						t.Fatalf("%s: replayed %q (%s), want %q with the stored Content-Type only", s.name, got, resp.Header, first)
					}
				}
			}
		})
	}
}

// TestConflictsAndInFlight: a concurrent duplicate gets 409 with
// Retry-After, and the same event id with another payload gets 422;
// neither reaches the upstream.
func TestConflictsAndInFlight(t *testing.T) {
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			release := make(chan struct{})
			arrived := make(chan struct{}, 1)
			up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-release
				io.WriteString(w, "done")
			})
			g := gatewaytest.Start(t, st.globals, stripeRoute("idempotency 1h {\nlease 30s\n}", up.Addr()))
			body := `{"id":"evt_busy","n":1}`
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, _ := sendEvent(t, g, body); resp.StatusCode != http.StatusOK {
					t.Errorf("first delivery: status %d", resp.StatusCode)
				}
			}()
			<-arrived
			resp, got := sendEvent(t, g, body)
			p := decodeProblem(t, resp, got)
			if resp.StatusCode != http.StatusConflict || p.Reason != "in_flight" || resp.Header.Get("Retry-After") == "" {
				t.Errorf("duplicate in flight: status %d reason %q Retry-After %q", resp.StatusCode, p.Reason, resp.Header.Get("Retry-After"))
			}
			if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 30 {
				t.Errorf("Retry-After %d, want within the 30s lease", ra)
			}
			close(release)
			wg.Wait()
			resp, got = sendEvent(t, g, `{"id":"evt_busy","n":2}`)
			p = decodeProblem(t, resp, got)
			if resp.StatusCode != http.StatusUnprocessableEntity || p.Reason != "payload_mismatch" {
				t.Errorf("same id, other payload: status %d reason %q", resp.StatusCode, p.Reason)
			}
			if up.Count() != 1 {
				t.Errorf("upstream got %d requests, want 1", up.Count())
			}
		})
	}
}

// TestRateAndFloodLimits checks the 429 answers and their headers, and
// that flood_limit counts even forged requests, before verification.
func TestRateAndFloodLimits(t *testing.T) {
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			up := gatewaytest.NewUpstream(t)
			site := stripeRoute("rate_limit 2/m burst 2", up.Addr()) +
				fmt.Sprintf("route /flood {\nwebhook_gateway github {\nsecret s\nflood_limit 3/h burst 3\n}\nreverse_proxy %s\n}\n", up.Addr())
			g := gatewaytest.Start(t, st.globals, site)
			for i := 1; i <= 3; i++ {
				resp, got := sendEvent(t, g, fmt.Sprintf(`{"id":"evt_rate_%d"}`, i))
				if i <= 2 {
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("delivery %d: status %d, want 200", i, resp.StatusCode)
					}
					continue
				}
				p := decodeProblem(t, resp, got)
				h := resp.Header
				if resp.StatusCode != http.StatusTooManyRequests || p.Reason != "rate_limited" ||
					h.Get("Retry-After") == "" || h.Get("RateLimit-Limit") != "2" || h.Get("RateLimit-Remaining") != "0" || h.Get("RateLimit-Reset") == "" {
					t.Fatalf("delivery %d: status %d reason %q headers %v", i, resp.StatusCode, p.Reason, h)
				}
				if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 20 || ra > 31 {
					t.Errorf("Retry-After %d, want about 30s at 2/m", ra)
				}
			}
			if up.Count() != 2 {
				t.Fatalf("upstream got %d, want 2", up.Count())
			}
			// Forgeries use the flood allowance too: the fourth request is
			// refused before its signature is even looked at.
			want := []int{401, 401, 401, 429, 429}
			for i, status := range want {
				resp, got := post(t, g, "/flood", http.Header{"X-Hub-Signature-256": {"sha256=00"}}, "{}")
				p := decodeProblem(t, resp, got)
				if resp.StatusCode != status || (status == 429 && p.Reason != "flood_limited") {
					t.Fatalf("flood request %d: status %d reason %q, want %d", i+1, resp.StatusCode, p.Reason, status)
				}
			}
		})
	}
}

// TestRedisOutage stops Redis mid-run: on_store_error reject answers 503
// and forwards nothing, allow forwards unchecked; both recover on their
// own when Redis is back.
func TestRedisOutage(t *testing.T) {
	srv := testredis.Start(t)
	up := gatewaytest.NewUpstream(t)
	site := stripeRoute("idempotency 1h\nstore_timeout 300ms", up.Addr()) +
		fmt.Sprintf("route /allow {\nwebhook_gateway github {\nsecret s\nidempotency 1h {\nkey {webhook.event_id}\n}\non_store_error allow\nstore_timeout 300ms\n}\nreverse_proxy %s\n}\n", up.Addr())
	g := gatewaytest.Start(t, "webhook_gateway {\n redis "+srv.URL()+"\n}", site)
	github := routes[1]
	sendAllow := func(id string) *http.Response {
		h := github.signed(t, "s", time.Now(), "{}")
		h.Set("X-Github-Delivery", id)
		resp, _ := post(t, g, "/allow", h, "{}")
		return resp
	}
	if resp, _ := sendEvent(t, g, `{"id":"evt_before"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the outage: status %d", resp.StatusCode)
	}
	srv.Stop()
	start := time.Now()
	resp, got := sendEvent(t, g, `{"id":"evt_during"}`)
	p := decodeProblem(t, resp, got)
	if resp.StatusCode != http.StatusServiceUnavailable || p.Reason != "store_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("reject during the outage: status %d reason %q", resp.StatusCode, p.Reason)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the refusal took %s: the store deadline did not hold", took)
	}
	if up.Count() != 1 {
		t.Fatalf("upstream got %d requests; a delivery went through unchecked under reject", up.Count())
	}
	if resp := sendAllow("during"); resp.StatusCode != http.StatusOK || up.Count() != 2 {
		t.Fatalf("allow during the outage: status %d, upstream %d", resp.StatusCode, up.Count())
	}
	if !strings.Contains(string(g.Logs(t)), `"unchecked":true`) {
		t.Error("no log line marks the unchecked delivery")
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := sendEvent(t, g, `{"id":"evt_after"}`)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Redis came back: status %d", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Recovered for real: deduplication works again.
	if resp, _ := sendEvent(t, g, `{"id":"evt_after"}`); resp.Header.Get("Webhook-Gateway-Replay") != "true" {
		t.Errorf("after recovery a duplicate was not replayed (status %d)", resp.StatusCode)
	}
	if resp := sendAllow("after"); resp.StatusCode != http.StatusOK {
		t.Errorf("allow after the outage: status %d", resp.StatusCode)
	}
}

// TestReloadKeepsRedisConnections reloads the config 20 times under
// load: the shared client survives, so Redis sees no new connections,
// and no delivery fails.
func TestReloadKeepsRedisConnections(t *testing.T) {
	srv := testredis.Start(t)
	up := gatewaytest.NewUpstream(t)
	globals := "webhook_gateway {\n redis " + srv.URL() + "\n}"
	site := stripeRoute("rate_limit 100000/s\nidempotency 1h", up.Addr())
	g := gatewaytest.Start(t, globals, site)

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, _ := sendEvent(t, g, fmt.Sprintf(`{"id":"evt_reload_%d_%d"}`, w, i))
				sent.Add(1)
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}(w)
	}
	time.Sleep(500 * time.Millisecond)
	before := redisStat(t, srv, "total_connections_received")
	clientsBefore := redisStat(t, srv, "connected_clients")
	for i := 0; i < 20; i++ {
		g.Reload(t, globals, site+fmt.Sprintf("# reload %d\n", i))
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	after := redisStat(t, srv, "total_connections_received")
	clientsAfter := redisStat(t, srv, "connected_clients")
	t.Logf("%d deliveries; connections received %d -> %d, connected %d -> %d", sent.Load(), before, after, clientsBefore, clientsAfter)
	if sent.Load() < 40 || failed.Load() != 0 {
		t.Errorf("%d deliveries sent, %d failed during reloads", sent.Load(), failed.Load())
	}
	// A few connections may be added as load varies, never one set per
	// reload.
	if after-before > 4 || clientsAfter > clientsBefore+4 {
		t.Errorf("connections grew over 20 reloads: received %d -> %d, connected %d -> %d", before, after, clientsBefore, clientsAfter)
	}
}

// redisStat reads one integer field of INFO.
func redisStat(t *testing.T, srv *testredis.Server, field string) int {
	t.Helper()
	info, err := srv.Do("INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}
