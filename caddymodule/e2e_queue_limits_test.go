package caddymodule_test

import (
	"sort"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// startDurablePair runs two gateway processes sharing a Redis, each
// with a /stripe route queueing to app with queueOpts.
func startDurablePair(t *testing.T, app *gatewaytest.App, queueOpts string) (*gatewaytest.Instance, *gatewaytest.Instance) {
	t.Helper()
	cfg := gatewaytest.Config{Globals: redisGlobals("redis " + testredis.Start(t).URL()), Site: durableRoute(app, queueOpts)}
	return gatewaytest.StartProcessWith(t, cfg), gatewaytest.StartProcessWith(t, cfg)
}

// sendAccepted sends bodies through s and fails the test unless every
// one was accepted; it returns the event ids.
func sendAccepted(t *testing.T, s *gatewaytest.Sender, bodies [][]byte) []string {
	t.Helper()
	var ids []string
	for _, sent := range s.Send(bodies) {
		if !sent.Accepted {
			t.Fatalf("event %s not accepted: status %d, %v", sent.EventID, sent.Status, sent.Err)
		}
		ids = append(ids, sent.EventID)
	}
	return ids
}

// TestQueueConcurrencyAcrossInstances: with `concurrency 4` shared by
// two gateway processes and an app that holds each answer 100 ms, the
// app never holds more than 4 requests at once.
func TestQueueConcurrencyAcrossInstances(t *testing.T) {
	const concurrency, hold = 4, 100 * time.Millisecond
	events := durableSize(80, 600)
	app := gatewaytest.NewApp(t, gatewaytest.AppConfig{Delay: hold})
	a, b := startDurablePair(t, app, "concurrency 4")
	ids := sendAccepted(t, durableSender(a, b), durableEvents("conc", events, "invoice.paid"))
	within := time.Duration(events)*hold/concurrency*3 + 30*time.Second
	if missing := app.WaitDelivered(ids, within); len(missing) > 0 {
		t.Fatalf("%d events not delivered within %v", len(missing), within)
	}
	got := app.MaxInFlight()
	t.Logf("%d events: at most %d attempts in flight at the app (concurrency %d)", events, got, concurrency)
	if got > concurrency {
		t.Errorf("the app held %d requests at once; concurrency is %d across instances", got, concurrency)
	}
	// Far fewer would mean the limit is enforced as one slot, or per
	// instance of a slow reader: not the setting's meaning.
	if got < concurrency/2 {
		t.Errorf("the app never held more than %d requests at once with a backlog of %d and concurrency %d", got, events, concurrency)
	}
}

// TestQueueRateAcrossInstances: with `rate 50/s` shared by two gateway
// processes and a backlog, the app's clock sees attempts arrive, over
// the middle 80 % of the run (the first and last attempts are the ramp:
// the backlog building, the queue running dry), at no more than 50/s
// plus 2 %: the limit holds across instances. And at no less than 50/s
// minus 25 %: the backlog drains at about the rate. The lower bound is
// looser because a GCRA with burst 1 loses each slot's lateness, the
// time from a waiter's wake-up to Redis: 4 to 7 % at 50/s measured, up
// to 17 % on a loaded 2-core machine; a rate deferred through the
// backend, as before, drained at a third of it.
func TestQueueRateAcrossInstances(t *testing.T) {
	const rate = 50.0
	events := durableSize(250, 1500)
	app := gatewaytest.NewApp(t, gatewaytest.AppConfig{})
	a, b := startDurablePair(t, app, "rate 50/s")
	ids := sendAccepted(t, durableSender(a, b), durableEvents("rate", events, "invoice.paid"))
	within := time.Duration(float64(events)/rate*float64(time.Second))*2 + 30*time.Second
	if missing := app.WaitDelivered(ids, within); len(missing) > 0 {
		t.Fatalf("%d events not delivered within %v", len(missing), within)
	}
	var starts []time.Time
	for _, at := range app.Attempts() {
		starts = append(starts, at.Start)
	}
	if len(starts) != events {
		t.Errorf("%d attempts for %d events the app accepted at once", len(starts), events)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	lo, hi := len(starts)/10, len(starts)-1-len(starts)/10
	span := starts[hi].Sub(starts[lo])
	got := float64(hi-lo) / span.Seconds()
	t.Logf("%d attempts from %d to %d in %v: %.2f/s (rate %.0f/s); whole run %.2f/s", hi-lo, lo, hi, span.Round(time.Millisecond), got, rate,
		float64(len(starts)-1)/starts[len(starts)-1].Sub(starts[0]).Seconds())
	if got > rate*1.02 || got < rate*0.75 {
		t.Errorf("attempts at %.2f/s across instances, want %.0f/s, at most 2%% more and 25%% less", got, rate)
	}
}
