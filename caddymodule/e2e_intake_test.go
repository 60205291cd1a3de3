package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestQueueIntakeStoresTheDelivery: what the provider's 2xx stands for
// is in the queue: the body byte for byte, the verified request's
// headers without the credential, the signed id and type, the order key
// and the attempts the event may take.
func TestQueueIntakeStoresTheDelivery(t *testing.T) {
	forEachStore(t, testQueueIntake)
}

func testQueueIntake(t *testing.T, globals string) {
	app := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, globals, queueRoute("stripe", "stripe", stripeSigner.secret, "", app.URL, "retry 7\n\t\t\torder {webhook.event_type}")+
		queueRoute("gitlab", "gitlab", "tok-s3cret", "", app.URL, ""))

	h, body := stripeEvent(t, "evt_stored")
	h.Set("Webhook-Gateway-Event-Id", "forged")
	before := time.Now()
	id := sendQueued(t, g, "/stripe", h, body)
	ev := eventRecord(t, "stripe", id)
	if !bytes.Equal(ev.Body, []byte(body)) || ev.Method != "POST" || ev.Queue != "stripe" || ev.Provider != "stripe" {
		t.Errorf("stored %s %q for queue %q from %q, want POST %q for stripe from stripe", ev.Method, ev.Body, ev.Queue, ev.Provider, body)
	}
	if ev.EventID != "evt_stored" || ev.EventType != "invoice.paid" || ev.OrderKey != "invoice.paid" {
		t.Errorf("event id %q type %q order key %q, want evt_stored, invoice.paid, invoice.paid", ev.EventID, ev.EventType, ev.OrderKey)
	}
	if ev.Budget != 7 || ev.ReceivedAt.Before(before.Add(-time.Second)) || ev.ReceivedAt.After(time.Now()) {
		t.Errorf("budget %d received at %v, want 7 and about %v", ev.Budget, ev.ReceivedAt, before)
	}
	checkHeader(t, ev.Header, "Stripe-Signature", h.Get("Stripe-Signature"))
	checkHeader(t, ev.Header, "Webhook-Gateway-Event-Id", "evt_stored")
	checkHeader(t, ev.Header, "Webhook-Gateway-Provider", "stripe")

	id = sendQueued(t, g, "/gitlab", http.Header{"X-Gitlab-Token": {"tok-s3cret"}}, `{"object_kind":"push"}`)
	ev = eventRecord(t, "gitlab", id)
	checkHeader(t, ev.Header, "X-Gitlab-Token", "")
	if ev.OrderKey != "" || ev.Budget != queue.DefaultAttempts {
		t.Errorf("order key %q budget %d, want none and %d", ev.OrderKey, ev.Budget, queue.DefaultAttempts)
	}
}

// stripeSigner is routes[0]: Stripe signs the event's id and type.
var stripeSigner = routes[0]

// queueRoute is a /<name> route for provider with a queue to `to`.
func queueRoute(name, provider, secret, opts, to, queueOpts string) string {
	return fmt.Sprintf("route /%s {\n\twebhook_gateway %s {\n\t\tsecret %q\n\t\tsource %s\n\t\t%s\n\t\tqueue {\n\t\t\tto %s\n\t\t\t%s\n\t\t}\n\t}\n}\n",
		name, provider, secret, name, opts, to, queueOpts)
}

// stripeEvent is a Stripe delivery of event id, signed now.
func stripeEvent(t *testing.T, id string) (http.Header, string) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"type":"invoice.paid","data":{"n":%q}}`, id, id)
	return stripeSigner.signed(t, stripeSigner.secret, time.Now(), body), body
}

// sendQueued posts a delivery and checks the provider's answer: 200 at
// once, with the delivery id in the header and the JSON body.
func sendQueued(t *testing.T, g *gatewaytest.Gateway, path string, h http.Header, body string) string {
	t.Helper()
	resp, got := post(t, g, path, h, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", resp.StatusCode, got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var answer struct {
		DeliveryID string `json:"delivery_id"`
		Status     string `json:"status"`
	}
	if err := json.Unmarshal(got, &answer); err != nil {
		t.Fatalf("answer %q: %v", got, err)
	}
	if answer.Status != "queued" || answer.DeliveryID == "" || resp.Header.Get("Webhook-Gateway-Delivery-Id") != answer.DeliveryID {
		t.Fatalf("answer %q with delivery id header %q, want status queued and the same id", got, resp.Header.Get("Webhook-Gateway-Delivery-Id"))
	}
	return answer.DeliveryID
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receivedFor is what the app received with the delivery id.
func receivedFor(up *gatewaytest.Upstream, id string) []gatewaytest.Received {
	var out []gatewaytest.Received
	for _, r := range up.Received() {
		if r.Header.Get("Webhook-Gateway-Delivery-Id") == id {
			out = append(out, r)
		}
	}
	return out
}

// eventRecord reads the event's record, or fails the test.
func eventRecord(t *testing.T, queueName, id string) *queue.Event {
	t.Helper()
	ev, err := caddymodule.QueuedEvent(queueName, id)
	if err != nil {
		t.Fatalf("event %s: %v", id, err)
	}
	return ev
}

// forEachStore runs a queue test against each backend, as a subtest
// with the backend's global options.
func forEachStore(t *testing.T, test func(t *testing.T, globals string)) {
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) { test(t, st.globals) })
	}
}

// TestClientGatewayHeadersNeverSurvive: a client's own Webhook-Gateway-*
// headers, whatever their name, are neither stored with a queued event
// nor passed to the app, queued or forwarded; only the gateway's own,
// set from signed values, are.
func TestClientGatewayHeadersNeverSurvive(t *testing.T) {
	forged := http.Header{
		"Webhook-Gateway-Delivery-Id": {"forged"},
		"Webhook-Gateway-Attempt":     {"99"},
		"Webhook-Gateway-Replay-Of":   {"forged"},
		"Webhook-Gateway-Replay":      {"true"},
		"Webhook-Gateway-Tenant":      {"forged"},
		"Webhook-Gateway-Provider":    {"forged"},
		"Webhook-Gateway-Event-Type":  {"forged"},
	}
	// own are the gateway's headers each path sets itself.
	check := func(t *testing.T, h http.Header, own map[string]string) {
		t.Helper()
		for name, vs := range h {
			if !strings.HasPrefix(strings.ToLower(name), "webhook-gateway-") {
				continue
			}
			if want, ok := own[name]; !ok || len(vs) != 1 || vs[0] != want {
				t.Errorf("%s: %q, want %q (set by the gateway: %v)", name, vs, want, ok)
			}
		}
	}
	signed := map[string]string{"Webhook-Gateway-Provider": "stripe", "Webhook-Gateway-Event-Id": "evt_forged_headers", "Webhook-Gateway-Event-Type": "invoice.paid"}
	withForged := func(t *testing.T) (http.Header, string) {
		h, body := stripeEvent(t, "evt_forged_headers")
		for k, v := range forged {
			h[k] = v
		}
		return h, body
	}

	t.Run("queued", func(t *testing.T) {
		forEachStore(t, func(t *testing.T, globals string) {
			app := gatewaytest.NewUpstream(t)
			g := gatewaytest.Start(t, globals, queueRoute("stripe", "stripe", stripeSigner.secret, "", app.URL, ""))
			h, body := withForged(t)
			id := sendQueued(t, g, "/stripe", h, body)
			check(t, eventRecord(t, "stripe", id).Header, signed)
			waitFor(t, 10*time.Second, "delivery", func() bool { return len(receivedFor(app, id)) == 1 })
			attempt := map[string]string{"Webhook-Gateway-Delivery-Id": id, "Webhook-Gateway-Attempt": "1"}
			maps.Copy(attempt, signed)
			check(t, receivedFor(app, id)[0].Header, attempt)
		})
	})
	t.Run("forwarded", func(t *testing.T) {
		up := gatewaytest.NewUpstream(t)
		g := gatewaytest.Start(t, "", stripeRoute("", up.URL))
		h, body := withForged(t)
		if resp, got := post(t, g, "/stripe", h, body); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%s), want 200", resp.StatusCode, got)
		}
		if n := up.Count(); n != 1 {
			t.Fatalf("the app got %d requests, want 1", n)
		}
		check(t, up.Received()[0].Header, signed)
	})
}
