package caddymodule_test

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestQueueOrderUnderRetries: with `order {webhook.event_type}` on two
// gateway processes and an app that fails about a third of attempts,
// each event type's events are first accepted by the app in the order
// the gateways took them in, and no two of one type are ever at the app
// at once. Each type's events are sent one after another (the next once
// the previous got its 2xx), so that the order of intake is known; the
// types are sent side by side.
func TestQueueOrderUnderRetries(t *testing.T) {
	types := []string{"invoice.paid", "invoice.created", "customer.updated", "charge.refunded"}
	perType := durableSize(12, 100)
	app := gatewaytest.NewApp(t, gatewaytest.AppConfig{FailOneIn: 3, FailUpTo: 6})
	a, b := startDurablePair(t, app, "order {webhook.event_type}\nretry 10 50ms 500ms")
	sender := durableSender(a, b)

	intake := make(map[string][]string) // by type, in the order accepted
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k, typ := range types {
		wg.Go(func() {
			for i := range perType {
				id := fmt.Sprintf("evt_order_%d_%d", k, i)
				sent := sender.SendOne(gatewaytest.StripeEvent(id, typ), i)
				if !sent.Accepted {
					t.Errorf("event %s not accepted: status %d, %v", id, sent.Status, sent.Err)
					return
				}
				mu.Lock()
				intake[typ] = append(intake[typ], id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var ids []string
	for _, typ := range types {
		ids = append(ids, intake[typ]...)
	}
	if missing := app.WaitDelivered(ids, 2*time.Minute); len(missing) > 0 {
		t.Fatalf("%d events not delivered, e.g. %v", len(missing), missing[:min(len(missing), 5)])
	}

	byType := make(map[string][]gatewaytest.AppAttempt)
	failed := 0
	for _, at := range app.Attempts() {
		byType[at.EventType] = append(byType[at.EventType], at)
		if !at.OK() {
			failed++
		}
	}
	t.Logf("%d events of %d types: %d attempts at the app, %d answered 500", len(ids), len(types), len(app.Attempts()), failed)
	if failed == 0 {
		t.Fatal("the app failed no attempt: order was not tried under retries")
	}
	for _, typ := range types {
		ats := byType[typ]
		sort.Slice(ats, func(i, j int) bool { return ats[i].Start.Before(ats[j].Start) })
		if got := firstAcceptances(ats); !slices.Equal(got, intake[typ]) {
			t.Errorf("%s: the app first accepted\n%v\nwant the order of intake\n%v", typ, got, intake[typ])
		}
		for i := 1; i < len(ats); i++ {
			if ats[i].Start.Before(ats[i-1].End) {
				t.Errorf("%s: %s (attempt %d) reached the app at %s while %s (attempt %d) was there until %s",
					typ, ats[i].EventID, ats[i].N, ats[i].Start.Format(time.StampMilli), ats[i-1].EventID, ats[i-1].N, ats[i-1].End.Format(time.StampMilli))
			}
		}
	}
}

// firstAcceptances lists the event ids in the order of their first 2xx.
func firstAcceptances(ats []gatewaytest.AppAttempt) []string {
	seen := make(map[string]bool)
	var out []string
	for _, at := range ats {
		if at.OK() && !seen[at.EventID] {
			seen[at.EventID] = true
			out = append(out, at.EventID)
		}
	}
	return out
}
