package caddymodule_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// The durable-delivery failure tests run gateway processes sharing a
// real Redis, an app that fails a share of its attempts, and a provider
// that retries until it gets a 2xx; then they break things (SIGKILL a
// gateway, shut Redis down, SIGKILL it) while events flow, and check
// from the app's records what the queue promises: every event the
// provider got a 2xx for reaches the app with a 2xx, at least once.
//
// CI runs them at a size that keeps the suite short; the sizes
// (2,000 events) run with WEBHOOK_GATEWAY_SOAK=1:
//
//	WEBHOOK_GATEWAY_SOAK=1 go test -race -count=1 -run 'TestQueue(NoLoss|Limits|Order|Pause)' -v ./caddymodule/

const durableSecret = "whsec_e2e_durable"

// durableAttemptTimeout is the queue's attempt timeout in these tests. A
// lease left by a killed gateway is taken over after it plus the
// contract's 15s margin, which bounds how long a test waits.
const durableAttemptTimeout = 2 * time.Second

// durableSize is ci, or soak with WEBHOOK_GATEWAY_SOAK=1.
func durableSize[T any](ci, soak T) T {
	if os.Getenv("WEBHOOK_GATEWAY_SOAK") == "1" {
		return soak
	}
	return ci
}

// durableRoute is a /stripe route whose handler, with idempotency at
// intake, queues to app's /webhooks/stripe.
func durableRoute(app *gatewaytest.App, queueOpts string) string {
	return fmt.Sprintf("route /stripe {\n\twebhook_gateway stripe {\n\t\tsecret %s\n\t\tidempotency 24h\n\t\tqueue {\n\t\t\tto %s/webhooks/stripe\n\t\t\ttimeout %s\n\t\t\t%s\n\t\t}\n\t}\n}\n",
		durableSecret, app.URL, durableAttemptTimeout, queueOpts)
}

// durableEvents are n Stripe events with ids <prefix>_<i>, their types
// taken in turn from types.
func durableEvents(prefix string, n int, types ...string) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = gatewaytest.StripeEvent(fmt.Sprintf("evt_%s_%d", prefix, i), types[i%len(types)])
	}
	return bodies
}

// durableSender is a provider posting to insts, retrying an event for
// up to a minute and a half (the outages of a test are shorter).
func durableSender(insts ...*gatewaytest.Instance) *gatewaytest.Sender {
	s := &gatewaytest.Sender{Path: "/stripe", Secret: durableSecret, Concurrency: 16, RetryFor: 90 * time.Second}
	for _, inst := range insts {
		s.Targets = append(s.Targets, inst)
	}
	return s
}

// outage is a span of a run during which something was broken, by the
// test's (and the app's) clock.
type outage struct {
	what     string
	from, to time.Time
}

// covers reports whether an answer the app gave at t may have been lost
// to the outage: given up to an attempt's timeout before it began (an
// answer read but not yet settled) and until shortly after it ended
// (connections being re-established).
func (o outage) covers(t time.Time) bool {
	return !t.Before(o.from.Add(-durableAttemptTimeout)) && !t.After(o.to.Add(2*time.Second))
}

// waitAccepted waits until the sender has had n events accepted.
func waitAccepted(t *testing.T, s *gatewaytest.Sender, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for s.Accepted() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events accepted after 90s, waiting for %d", s.Accepted(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// redisUnderTest is the Redis of a no-loss case: the gateways' global
// option, and the server the case takes down (a cluster's first node).
type redisUnderTest struct {
	globals string
	victim  *testredis.Server
	// ready waits, after the victim's restart, until Redis serves
	// again as a whole (a cluster's state is ok).
	ready func()
}

func singleRedis(fsync string) func(t *testing.T) redisUnderTest {
	return func(t *testing.T) redisUnderTest {
		s := testredis.StartWith(t, testredis.Options{AppendFsync: fsync})
		return redisUnderTest{globals: "redis " + s.URL(), victim: s, ready: func() {}}
	}
}

func clusterRedis(fsync string) func(t *testing.T) redisUnderTest {
	return func(t *testing.T) redisUnderTest {
		c := testredis.StartClusterWith(t, 3, testredis.Options{AppendFsync: fsync})
		return redisUnderTest{
			globals: "redis {\naddresses " + strings.Join(c.Addrs(), " ") + "\ncluster\n}",
			victim:  c.Nodes[0], ready: func() { c.WaitReady(t) },
		}
	}
}

// TestQueueNoLoss: two gateway processes share Redis with an
// append-only file; events are sent while the app answers 500 to about
// a third of attempts; one gateway is SIGKILLed mid-run and restarted;
// Redis is shut down (or SIGKILLed, with appendfsync always) and
// restarted; the app goes down for 3 s and comes back. Every event the
// provider got a 2xx for must reach the app with a 2xx, with its body
// byte for byte and one delivery id; the duplicates are counted, and any
// whose first 2xx lies outside the outages fails the test.
func TestQueueNoLoss(t *testing.T) {
	cases := []struct {
		name       string
		events     int
		partitions int
		redis      func(t *testing.T) redisUnderTest
		stopRedis  func(*testredis.Server)
		how        string
	}{
		{"redis_shut_down_everysec", durableSize(300, 2000), 1, singleRedis("everysec"), (*testredis.Server).Shutdown, "shut down"},
		{"redis_killed_always", durableSize(300, 2000), 1, singleRedis("always"), (*testredis.Server).Kill, "SIGKILLed"},
		{"cluster_partitions_3_node_killed_always", durableSize(150, 2000), 3, clusterRedis("always"), (*testredis.Server).Kill, "node SIGKILLed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redis := tc.redis(t)
			// Held answers keep leases in flight when the gateway dies;
			// attempts past the sixth always succeed, so no event runs
			// out of its ten by bad luck.
			app := gatewaytest.NewApp(t, gatewaytest.AppConfig{FailOneIn: 3, FailUpTo: 6, Delay: 200 * time.Millisecond})
			cfg := gatewaytest.Config{
				Globals: redisGlobals(redis.globals),
				Site:    durableRoute(app, fmt.Sprintf("retry 10 100ms 1s\npartitions %d", tc.partitions)),
				Admin:   true, // to show the record of an event that went missing
			}
			a, b := gatewaytest.StartProcessWith(t, cfg), gatewaytest.StartProcessWith(t, cfg)
			sender := durableSender(a, b)
			bodies := durableEvents(tc.name, tc.events, "invoice.paid")
			sender.Every = durableSize(6*time.Second, 20*time.Second) / time.Duration(tc.events)
			done := make(chan []gatewaytest.Sent, 1)
			go func() { done <- sender.Send(bodies) }()

			// The gateway dies first, while the app holds attempts of
			// both: after an outage of the app, every event waits for
			// its retry and a killed gateway would hold none.
			var outages []outage
			waitAccepted(t, sender, tc.events/8)
			o := outage{what: "gateway SIGKILLed", from: time.Now()}
			b.Kill()
			time.Sleep(500 * time.Millisecond)
			b.Restart(t)
			o.to = time.Now()
			outages = append(outages, o)

			waitAccepted(t, sender, tc.events*3/8)
			o = outage{what: "Redis " + tc.how, from: time.Now()}
			tc.stopRedis(redis.victim)
			time.Sleep(time.Second)
			redis.victim.Restart()
			redis.ready()
			o.to = time.Now()
			outages = append(outages, o)

			waitAccepted(t, sender, tc.events*5/8)
			o = outage{what: "app down", from: time.Now()}
			app.Down()
			time.Sleep(3 * time.Second)
			app.Up(t)
			o.to = time.Now()
			outages = append(outages, o)

			sent := <-done
			checkNoLoss(t, app, a, sent, outages, 2*time.Minute)
		})
	}
}

// checkNoLoss waits until every accepted event has reached the app with
// a 2xx and checks what the app received; it logs the duplicates and
// fails on any outside the outages.
func checkNoLoss(t *testing.T, app *gatewaytest.App, inst *gatewaytest.Instance, sent []gatewaytest.Sent, outages []outage, within time.Duration) {
	t.Helper()
	var accepted, named []string
	for _, s := range sent {
		if s.Accepted {
			accepted = append(accepted, s.EventID)
			named = append(named, s.DeliveryID)
		} else {
			t.Errorf("event %s never accepted: last status %d, %v, after %d tries", s.EventID, s.Status, s.Err, s.Tries)
		}
	}
	start := time.Now()
	missing := app.WaitDelivered(accepted, within)
	if len(missing) > 0 {
		t.Errorf("%d of %d accepted events never reached the app with a 2xx within %v, e.g. %v", len(missing), len(accepted), within, missing[:min(len(missing), 10)])
	}
	// The delivery id each intake answer named must reach the app too:
	// an event queued twice reaches it first under the other id.
	if lost := app.WaitDeliveryIDs(named, within); len(lost) > 0 {
		t.Errorf("%d delivery ids named in intake answers never reached the app with a 2xx within %v, e.g. %v", len(lost), within, lost[:min(len(lost), 10)])
	}
	attempts := app.Attempts()
	showMissing(t, inst, sent, attempts, missing[:min(len(missing), 5)])
	byEvent := make(map[string][]gatewaytest.AppAttempt)
	failed, cut := 0, 0
	for _, at := range attempts {
		byEvent[at.EventID] = append(byEvent[at.EventID], at)
		switch {
		case at.Status == 0:
			cut++
		case !at.OK():
			failed++
		}
	}
	t.Logf("%d events sent, %d accepted, %d attempts at the app (%d answered 500, %d cut); drained %v after the last intake",
		len(sent), len(accepted), len(attempts), failed, cut, time.Since(start).Round(time.Millisecond))
	if failed == 0 {
		t.Error("the app failed no attempt: the retries were not exercised")
	}

	var dups, outside, twice int
	for _, s := range sent {
		ats := byEvent[s.EventID]
		if len(ats) == 0 {
			continue
		}
		if ids := checkAttempts(t, s, ats); ids > 1 {
			twice++
			t.Errorf("queued twice: event %s reached the app under %d delivery ids (the intake answer named %s)", s.EventID, ids, s.DeliveryID)
		}
		var oks []gatewaytest.AppAttempt
		for _, at := range ats {
			if at.OK() {
				oks = append(oks, at)
			}
		}
		if len(oks) < 2 {
			continue
		}
		dups += len(oks) - 1
		first := oks[0]
		var in []string
		for _, o := range outages {
			if o.covers(first.End) {
				in = append(in, o.what)
			}
		}
		if len(in) == 0 {
			outside++
			t.Errorf("event %s reached the app with a 2xx %d times, the first at %s, outside every outage", s.EventID, len(oks), first.End.Format(time.StampMilli))
			continue
		}
		t.Logf("duplicate: event %s reached the app with a 2xx %d times (attempts %v), the first at %s, during: %s",
			s.EventID, len(oks), attemptNumbers(oks), first.End.Format(time.StampMilli), strings.Join(in, ", "))
	}
	for _, o := range outages {
		t.Logf("outage: %s from %s to %s", o.what, o.from.Format(time.StampMilli), o.to.Format(time.StampMilli))
	}
	t.Logf("duplicates: %d extra 2xx deliveries, %d outside the outages; %d events queued twice", dups, outside, twice)
}

// checkAttempts checks every attempt of one event: the body byte for
// byte, the delivery id sent as Idempotency-Key, the method and the path
// of `to`. It returns how many delivery ids the event came under: more
// than one would mean the provider's retry was queued again after its
// first intake stored the event but lost its answer (a gateway killed
// between storing the event and completing the idempotency claim),
// which the queue's dedup key prevents.
func checkAttempts(t *testing.T, s gatewaytest.Sent, ats []gatewaytest.AppAttempt) int {
	t.Helper()
	want := sha256.Sum256(s.Body)
	ids := make(map[string]bool)
	for _, at := range ats {
		ids[at.DeliveryID] = true
		if at.BodyHash != want || at.Path != "/webhooks/stripe" || at.Method != "POST" || at.N < 1 || at.DeliveryID == "" {
			t.Errorf("event %s: attempt %d (%s %s, delivery id %q) with a body hash %x, want POST /webhooks/stripe with %x",
				s.EventID, at.N, at.Method, at.Path, at.DeliveryID, at.BodyHash[:6], want[:6])
		}
		if at.Idempotent != at.DeliveryID {
			t.Errorf("event %s: Idempotency-Key %q, want the delivery id %q", s.EventID, at.Idempotent, at.DeliveryID)
		}
	}
	return len(ids)
}

func attemptNumbers(ats []gatewaytest.AppAttempt) []int {
	ns := make([]int, len(ats))
	for i, at := range ats {
		ns[i] = at.N
	}
	sort.Ints(ns)
	return ns
}

// showMissing logs what the app and the queue's record know of events
// that never reached the app with a 2xx.
func showMissing(t *testing.T, inst *gatewaytest.Instance, sent []gatewaytest.Sent, attempts []gatewaytest.AppAttempt, missing []string) {
	t.Helper()
	for _, id := range missing {
		for _, at := range attempts {
			if at.EventID == id {
				t.Logf("missing %s: attempt %d of delivery %s answered %d at %s", id, at.N, at.DeliveryID, at.Status, at.End.Format(time.StampMilli))
			}
		}
		for _, s := range sent {
			if s.EventID == id {
				status, record := adminCall(t, inst.Admin, "GET", "/webhook_gateway/events/"+s.DeliveryID+"?queue=stripe")
				t.Logf("missing %s: accepted at %s as delivery %s after %d tries; its record: %d %s", id, s.AcceptedAt.Format(time.StampMilli), s.DeliveryID, s.Tries, status, record)
			}
		}
	}
}
