package caddymodule_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// The multi-instance tests run the gateway as separate processes
// (gatewaytest.StartProcess) sharing a real Redis, as a deployment of
// several replicas would: what one instance claims or counts, the others
// must see.

const instancesSecret = "whsec_e2e_instances"

// instanceRoute is a Stripe route at path with extra handler options.
func instanceRoute(path, opts, upstream string) string {
	return fmt.Sprintf("route %s {\nwebhook_gateway stripe {\nsecret %s\n%s\n}\nreverse_proxy %s\n}\n", path, instancesSecret, opts, upstream)
}

// redisGlobals is the global option pointing the gateway at redis (a
// `redis …` line or block).
func redisGlobals(redis string) string {
	return "webhook_gateway {\n" + redis + "\n}"
}

// signStripe signs body as Stripe would, now. It does not touch t, so
// sender goroutines may call it.
func signStripe(body string) (http.Header, error) {
	p, ok := provider.Lookup("stripe")
	if !ok {
		return nil, errors.New("no stripe provider")
	}
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
	if err := p.Scheme.Sign(instancesSecret, m); err != nil {
		return nil, err
	}
	m.Header.Set("Content-Type", "application/json")
	return m.Header, nil
}

// answer is what a sender got back.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
	at     time.Time // when the answer arrived
}

// deliver posts a signed delivery to an instance. Safe in goroutines:
// failures are returned, not reported.
func deliver(inst *gatewaytest.Instance, path string, h http.Header, body string) answer {
	req, err := http.NewRequest(http.MethodPost, inst.URL+path, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := inst.Client.Do(req)
	if err != nil {
		return answer{err: err, at: time.Now()}
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: got, err: err, at: time.Now()}
}

// signedDeliver signs and delivers body.
func signedDeliver(inst *gatewaytest.Instance, path, body string) answer {
	h, err := signStripe(body)
	if err != nil {
		return answer{err: err}
	}
	return deliver(inst, path, h, body)
}

// reason checks a's problem+json body against status and returns its
// reason.
func (a answer) reason(status int) (string, error) {
	if a.err != nil {
		return "", a.err
	}
	if a.status != status {
		return "", fmt.Errorf("status %d, want %d (body %q)", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		return "", fmt.Errorf("status %d with Content-Type %q, want application/problem+json", a.status, ct)
	}
	var p problem
	if err := json.Unmarshal(a.body, &p); err != nil {
		return "", fmt.Errorf("decoding problem %q: %v", a.body, err)
	}
	if p.Status != status || p.Type != "urn:webhook-gateway:problem:"+p.Reason {
		return "", fmt.Errorf("problem %+v does not match status %d", p, status)
	}
	return p.Reason, nil
}

// inFlight checks a 409 in_flight answer whose Retry-After is within
// 1..maxRetry seconds.
func (a answer) inFlight(maxRetry int) error {
	reason, err := a.reason(http.StatusConflict)
	if err != nil {
		return err
	}
	if reason != "in_flight" {
		return fmt.Errorf("409 with reason %q, want in_flight", reason)
	}
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 || ra > maxRetry {
		return fmt.Errorf("409 with Retry-After %q, want 1..%d", a.header.Get("Retry-After"), maxRetry)
	}
	return nil
}

// rateLimited checks a 429 answer and its headers against the limit's
// capacity.
func (a answer) rateLimited(capacity int) error {
	reason, err := a.reason(http.StatusTooManyRequests)
	if err != nil {
		return err
	}
	h := a.header
	if reason != "rate_limited" {
		return fmt.Errorf("429 with reason %q, want rate_limited", reason)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 {
		return fmt.Errorf("429 with Retry-After %q, want a positive number of seconds", h.Get("Retry-After"))
	}
	if h.Get("RateLimit-Limit") != strconv.Itoa(capacity) || h.Get("RateLimit-Remaining") != "0" {
		return fmt.Errorf("429 with RateLimit-Limit %q RateLimit-Remaining %q, want %d and 0",
			h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), capacity)
	}
	if reset, err := strconv.Atoi(h.Get("RateLimit-Reset")); err != nil || reset < 0 {
		return fmt.Errorf("429 with RateLimit-Reset %q, want a number of seconds", h.Get("RateLimit-Reset"))
	}
	return nil
}

// replayOf checks that a is a replay of the upstream's answer.
func (a answer) replayOf(status int, contentType, body string) error {
	if a.err != nil {
		return a.err
	}
	if a.status != status || a.header.Get("Webhook-Gateway-Replay") != "true" {
		return fmt.Errorf("status %d replay %q, want a replayed %d", a.status, a.header.Get("Webhook-Gateway-Replay"), status)
	}
	if string(a.body) != body || a.header.Get("Content-Type") != contentType {
		return fmt.Errorf("replayed %q (%s), want %q (%s)", a.body, a.header.Get("Content-Type"), body, contentType)
	}
	return nil
}

// TestExactlyOnceAcrossInstances sends 200 concurrent deliveries of one
// event to two gateway processes sharing Redis, while the upstream takes
// 300 ms: exactly one reaches the upstream; every other one gets 409
// in_flight or, once the first has completed, a replay of its answer.
func TestExactlyOnceAcrossInstances(t *testing.T) {
	const (
		deliveries  = 200
		contentType = "application/vnd.app+json"
		handled     = `{"handled":true}`
	)
	cases := []struct {
		name  string
		redis func(t *testing.T) string
	}{
		{"single_node", func(t *testing.T) string { return "redis " + testredis.Start(t).URL() }},
		{"cluster", func(t *testing.T) string {
			c := testredis.StartCluster(t, 3)
			return "redis {\naddresses " + strings.Join(c.Addrs(), " ") + "\ncluster\n}"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(300 * time.Millisecond)
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, handled)
			})
			globals, site := redisGlobals(tc.redis(t)), instanceRoute("/stripe", "idempotency 24h", up.Addr())
			insts := []*gatewaytest.Instance{gatewaytest.StartProcess(t, globals, site), gatewaytest.StartProcess(t, globals, site)}

			body := `{"id":"evt_once_` + tc.name + `","type":"invoice.paid"}`
			headers := make([]http.Header, deliveries)
			for i := range headers {
				h, err := signStripe(body)
				if err != nil {
					t.Fatal(err)
				}
				headers[i] = h
			}
			answers := make([]answer, deliveries)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range deliveries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					answers[i] = deliver(insts[i%2], "/stripe", headers[i], body)
				}()
			}
			close(start)
			wg.Wait()

			var forwarded, inFlight, replayed int
			forwardedBy := -1
			refusedBy := [2]int{}
			for i, a := range answers {
				switch {
				case a.err == nil && a.status == http.StatusCreated && a.header.Get("Webhook-Gateway-Replay") == "":
					forwarded++
					forwardedBy = i % 2
					if string(a.body) != handled {
						t.Errorf("delivery %d: forwarded answer %q, want %q", i, a.body, handled)
					}
				case a.err == nil && a.status == http.StatusConflict:
					if err := a.inFlight(60); err != nil {
						t.Errorf("delivery %d: %v", i, err)
					}
					inFlight++
					refusedBy[i%2]++
				default:
					if err := a.replayOf(http.StatusCreated, contentType, handled); err != nil {
						t.Errorf("delivery %d: neither forwarded, in flight nor replayed: %v", i, err)
					}
					replayed++
					refusedBy[i%2]++
				}
			}
			t.Logf("%d deliveries over 2 instances: %d forwarded (by instance %d), %d in flight (409), %d replayed; upstream got %d",
				deliveries, forwarded, forwardedBy, inFlight, replayed, up.Count())
			if n := up.Count(); n != 1 {
				t.Fatalf("upstream got %d requests, want exactly 1", n)
			}
			if forwarded != 1 {
				t.Fatalf("%d deliveries got the upstream's own answer, want 1", forwarded)
			}
			if rcv := up.Received()[0]; string(rcv.Body) != body || rcv.Header.Get("Webhook-Gateway-Event-Id") != "evt_once_"+tc.name {
				t.Errorf("upstream received %q with event id %q", rcv.Body, rcv.Header.Get("Webhook-Gateway-Event-Id"))
			}
			// The instance that did not forward refused every one of its
			// deliveries: it saw the other process's claim.
			if other := 1 - forwardedBy; refusedBy[other] != deliveries/2 {
				t.Errorf("instance %d answered %d of its %d deliveries without forwarding, want all", other, refusedBy[other], deliveries/2)
			}
			// With a 300 ms upstream, many deliveries arrive while the
			// first is in flight.
			if inFlight < deliveries/4 {
				t.Errorf("only %d deliveries got 409 in_flight; the upstream was too fast for the test to mean anything", inFlight)
			}
			// Afterwards both instances replay the stored answer.
			for i, inst := range insts {
				if err := signedDeliver(inst, "/stripe", body).replayOf(http.StatusCreated, contentType, handled); err != nil {
					t.Errorf("instance %d after completion: %v", i, err)
				}
			}
			if n := up.Count(); n != 1 {
				t.Errorf("upstream got %d requests after the replays, want 1", n)
			}
		})
	}
}

// TestLeaseExpiresAfterInstanceDies kills instance A while the upstream
// holds its delivery: A never completes nor releases the claim, so a
// redelivery to instance B gets 409 until the 2 s lease runs out, then
// is forwarded and completed.
func TestLeaseExpiresAfterInstanceDies(t *testing.T) {
	const lease = 2 * time.Second
	srv := testredis.Start(t)
	var calls atomic.Int32
	arrived := make(chan time.Time, 1)
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			arrived <- time.Now()
			// Hang until A dies and its connection with it.
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			return
		}
		io.WriteString(w, "done")
	})
	globals := redisGlobals("redis " + srv.URL())
	site := instanceRoute("/stripe", "idempotency 24h {\nlease 2s\n}", up.Addr())
	a := gatewaytest.StartProcess(t, globals, site)
	b := gatewaytest.StartProcess(t, globals, site)
	body := `{"id":"evt_lease","type":"invoice.paid"}`

	first := make(chan answer, 1)
	go func() { first <- signedDeliver(a, "/stripe", body) }()
	var claimed time.Time
	select {
	case claimed = <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first delivery never reached the upstream")
	}
	// A took the claim before the upstream saw the delivery, so the
	// lease ends at the latest at claimed+lease.
	a.Kill()
	select {
	case ans := <-first:
		if ans.err == nil {
			t.Errorf("the killed instance answered %d %q", ans.status, ans.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery to the killed instance did not end")
	}

	var refused int
	var forwarded answer
	for {
		ans := signedDeliver(b, "/stripe", body)
		if ans.err == nil && ans.status == http.StatusConflict {
			if err := ans.inFlight(int(lease / time.Second)); err != nil {
				t.Fatalf("redelivery %d: %v", refused+1, err)
			}
			refused++
			if time.Since(claimed) > lease+5*time.Second {
				t.Fatalf("still 409 %v after the claim; the lease never ran out", time.Since(claimed))
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		forwarded = ans
		break
	}
	if forwarded.err != nil || forwarded.status != http.StatusOK || string(forwarded.body) != "done" || forwarded.header.Get("Webhook-Gateway-Replay") != "" {
		t.Fatalf("redelivery after the lease: status %d body %q replay %q err %v, want the upstream's 200 done",
			forwarded.status, forwarded.body, forwarded.header.Get("Webhook-Gateway-Replay"), forwarded.err)
	}
	after := forwarded.at.Sub(claimed)
	t.Logf("%d redeliveries refused with 409; forwarded %v after the upstream first saw the event", refused, after.Round(time.Millisecond))
	if refused == 0 {
		t.Error("the first redelivery was forwarded at once: the dead instance's claim did not hold")
	}
	if after < lease-200*time.Millisecond || after > lease+2*time.Second {
		t.Errorf("forwarded %v after the claim, want just after the %v lease", after, lease)
	}
	if n := up.Count(); n != 2 {
		t.Errorf("upstream got %d requests, want 2 (the killed delivery and the one after the lease)", n)
	}
	// B completed the claim: the next redelivery is a replay.
	if err := signedDeliver(b, "/stripe", body).replayOf(http.StatusOK, "text/plain; charset=utf-8", "done"); err != nil {
		t.Errorf("after completion: %v", err)
	}
	if n := up.Count(); n != 2 {
		t.Errorf("upstream got %d requests after the replay, want 2", n)
	}
}

// TestSharedRateLimitAccuracy drives instances well above a shared
// `rate_limit 40/s burst 10` for 10 s: every refusal is a complete 429,
// no refused delivery reaches the upstream, and the count is judged by
// the store's own clock (Redis TIME; the machine's clock for the memory
// store of a gateway process on it), read before the first delivery and
// after the last answer. At most burst + elapsed/interval is exact, so
// a loaded machine cannot fail a correct store with it; at least 90% of
// 40×10+10 is looser, as senders slowed by the load ask less often.
// The memory store passes the same test on one instance.
func TestSharedRateLimitAccuracy(t *testing.T) {
	const (
		rate               = 40
		burst              = 10
		window             = 10 * time.Second
		sendersPerInstance = 4
	)
	cases := []struct {
		name      string
		redis     bool
		instances int
	}{
		{"redis_two_instances", true, 2},
		{"memory_one_instance", false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := gatewaytest.NewUpstream(t)
			globals := ""
			clock := func() int64 { return time.Now().UnixMicro() }
			if tc.redis {
				srv := testredis.Start(t)
				globals = redisGlobals("redis " + srv.URL())
				clock = func() int64 { return redisMicros(t, srv) }
			}
			site := instanceRoute("/stripe", fmt.Sprintf("rate_limit %d/s burst %d\nidempotency off", rate, burst), up.Addr())
			insts := make([]*gatewaytest.Instance, tc.instances)
			for i := range insts {
				insts[i] = gatewaytest.StartProcess(t, globals, site)
			}

			var (
				mu       sync.Mutex
				problems []string
				admitted = make([]int, len(insts))
				refused  = make([]int, len(insts))
			)
			fail := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				if len(problems) < 10 {
					problems = append(problems, fmt.Sprintf(format, args...))
				}
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			var began time.Time
			for i, inst := range insts {
				for s := range sendersPerInstance {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						deadline := began.Add(window)
						for n := 0; time.Now().Before(deadline); n++ {
							a := signedDeliver(inst, "/stripe", fmt.Sprintf(`{"id":"evt_rate_%d_%d_%d"}`, i, s, n))
							switch {
							case a.err == nil && a.status == http.StatusOK:
								mu.Lock()
								admitted[i]++
								mu.Unlock()
							case a.err == nil && a.status == http.StatusTooManyRequests:
								if err := a.rateLimited(burst); err != nil {
									fail("instance %d: %v", i, err)
								}
								mu.Lock()
								refused[i]++
								mu.Unlock()
							default:
								fail("instance %d: status %d err %v body %q", i, a.status, a.err, a.body)
							}
							time.Sleep(2 * time.Millisecond)
						}
					}()
				}
			}
			before := clock()
			began = time.Now()
			close(start)
			wg.Wait()
			elapsed := time.Since(began)
			storeElapsed := clock() - before

			total, totalRefused := 0, 0
			for i := range insts {
				total += admitted[i]
				totalRefused += refused[i]
			}
			most := burst + int(storeElapsed*rate/1e6)
			least := 0.9 * (float64(rate)*window.Seconds() + burst)
			t.Logf("%s over %v (store clock %dµs): admitted %d (per instance %v), want at most %d, at least %.0f; refused %d (per instance %v); upstream got %d",
				tc.name, elapsed.Round(time.Millisecond), storeElapsed, total, admitted, most, least, totalRefused, refused, up.Count())
			for _, p := range problems {
				t.Error(p)
			}
			if total > most {
				t.Errorf("admitted %d in %dµs of the store's clock, want at most %d", total, storeElapsed, most)
			}
			if float64(total) < least {
				t.Errorf("admitted %d, want at least %.0f", total, least)
			}
			if totalRefused < total {
				t.Errorf("only %d refusals for %d admissions: the senders did not drive the limit", totalRefused, total)
			}
			for i := range insts {
				if admitted[i] == 0 {
					t.Errorf("instance %d admitted nothing", i)
				}
			}
			if n := up.Count(); n != total {
				t.Errorf("upstream got %d requests, want the %d admitted: refusals must not reach it", n, total)
			}
		})
	}
}

// TestRedisRoundTrips counts the scripts Redis runs per delivery with
// INFO commandstats: 2 for an accepted event (admit, then complete), 1
// for a duplicate of a completed event and 1 for a rate-limited one.
func TestRedisRoundTrips(t *testing.T) {
	srv := testredis.Start(t)
	up := gatewaytest.NewUpstream(t)
	site := instanceRoute("/stripe", "rate_limit 1000/s burst 1000\nidempotency 24h", up.Addr()) +
		instanceRoute("/limited", "source limited\nrate_limit 1/h burst 1\nidempotency 24h", up.Addr())
	inst := gatewaytest.StartProcess(t, redisGlobals("redis "+srv.URL()), site)

	// Warm up: the first run of each script is an EVALSHA miss and an
	// EVAL; /limited's only admission of the hour is spent here too.
	for _, path := range []string{"/stripe", "/limited"} {
		if a := signedDeliver(inst, path, `{"id":"evt_warm"}`); a.err != nil || a.status != http.StatusOK {
			t.Fatalf("warming %s: status %d err %v", path, a.status, a.err)
		}
	}
	steps := []struct {
		name     string
		path     string
		body     string
		status   int
		replay   string
		upstream int // requests the step adds upstream
		trips    int
	}{
		{"accepted", "/stripe", `{"id":"evt_trips"}`, http.StatusOK, "", 1, 2},
		{"duplicate_of_completed", "/stripe", `{"id":"evt_trips"}`, http.StatusOK, "true", 0, 1},
		{"rate_limited", "/limited", `{"id":"evt_trips_limited"}`, http.StatusTooManyRequests, "", 0, 1},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if _, err := srv.Do("CONFIG", "RESETSTAT"); err != nil {
				t.Fatal(err)
			}
			before := up.Count()
			a := signedDeliver(inst, s.path, s.body)
			if a.err != nil || a.status != s.status || a.header.Get("Webhook-Gateway-Replay") != s.replay {
				t.Fatalf("status %d replay %q err %v, want %d %q (body %q)", a.status, a.header.Get("Webhook-Gateway-Replay"), a.err, s.status, s.replay, a.body)
			}
			if n := up.Count() - before; n != s.upstream {
				t.Errorf("upstream got %d requests, want %d", n, s.upstream)
			}
			// Complete may still be on its way when the answer arrives:
			// wait for the expected count, then make sure no more come.
			trips, _ := scriptCalls(t, srv)
			for deadline := time.Now().Add(2 * time.Second); trips < s.trips && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				trips, _ = scriptCalls(t, srv)
			}
			time.Sleep(300 * time.Millisecond)
			trips, others := scriptCalls(t, srv)
			t.Logf("%d script round trips (EVALSHA+EVAL); commands run by the scripts or outside them: %v", trips, others)
			if trips != s.trips {
				t.Errorf("%d round trips, want %d", trips, s.trips)
			}
		})
	}
}

// redisMicros reads Redis TIME, the clock the rate limit runs on, in
// Unix microseconds.
func redisMicros(t *testing.T, srv *testredis.Server) int64 {
	t.Helper()
	reply, err := srv.Do("TIME")
	if err != nil {
		t.Fatal(err)
	}
	sec, usec, ok := strings.Cut(reply, "\n")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	u, err2 := strconv.ParseInt(usec, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("TIME replied %q", reply)
	}
	return s*1e6 + u
}

// scriptCalls reads INFO commandstats: the EVALSHA and EVAL commands
// Redis received (calls plus rejected calls, so that even a refused
// command counts as the round trip it was), and the other commands
// apart from the test's own INFO and CONFIG.
func scriptCalls(t *testing.T, srv *testredis.Server) (int, map[string]int) {
	t.Helper()
	info, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	trips, others := 0, map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		n := 0
		for _, kv := range strings.Split(stats, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k == "calls" || k == "rejected_calls" {
				c, _ := strconv.Atoi(v)
				n += c
			}
		}
		switch {
		case name == "evalsha" || name == "eval":
			trips += n
		case name == "info" || strings.HasPrefix(name, "config"):
		default:
			others[name] += n
		}
	}
	return trips, others
}
