package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// providerRoute is a route at /name for a provider, with a secret and
// other options, in front of upstream.
func providerRoute(name, providerName, secret, opts, upstream string) string {
	if name != providerName {
		// A second route of a provider is another sender.
		opts += "\nsource " + name
	}
	return fmt.Sprintf("route /%s {\nwebhook_gateway %s {\nsecret %s\n%s\n}\nreverse_proxy %s\n}\n", name, providerName, secret, opts, upstream)
}

// signedBy signs body as scheme would, with id as the message id.
func signedBy(t *testing.T, scheme provider.Scheme, secret, id, body string) http.Header {
	t.Helper()
	m := &provider.Message{Method: http.MethodPost, ID: id, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
	if err := scheme.Sign(secret, m); err != nil {
		t.Fatalf("signing: %v", err)
	}
	m.Header.Set("Content-Type", "application/json")
	return m.Header
}

// TestIdempotencyKeyIsTheSignedID replays captured Standard Webhooks and
// Svix deliveries with the other header family's id added: the key is
// the id of the family that verified, so the replay never reaches the
// upstream as a new event.
func TestIdempotencyKeyIsTheSignedID(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	up := gatewaytest.NewUpstream(t)
	site := ""
	for _, name := range []string{"standard_webhooks", "svix"} {
		site += providerRoute(name, name, secret, "idempotency 1h", up.Addr())
	}
	g := gatewaytest.Start(t, "", site)
	cases := []struct {
		name, route string
		family      provider.Scheme // signs the captured delivery
		added       string          // the other family's id header
	}{
		{"webhook_headers_plus_svix_id", "standard_webhooks", builtin("standard_webhooks"), "Svix-Id"},
		{"svix_headers_plus_webhook_id", "standard_webhooks", builtin("svix"), "Webhook-Id"},
		{"svix_route_webhook_headers_plus_svix_id", "svix", builtin("standard_webhooks"), "Svix-Id"},
		{"svix_route_svix_headers_plus_webhook_id", "svix", builtin("svix"), "Webhook-Id"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			body := `{"type":"user.created","n":` + strconv.Itoa(i) + `}`
			captured := signedBy(t, c.family, secret, "msg_captured_"+strconv.Itoa(i), body)
			if resp, got := post(t, g, "/"+c.route, captured, body); resp.StatusCode != http.StatusOK || up.Count() != 1 {
				t.Fatalf("genuine delivery: status %d (%q), upstream %d", resp.StatusCode, got, up.Count())
			}
			replay := captured.Clone()
			replay.Set(c.added, "fresh")
			resp, got := post(t, g, "/"+c.route, replay, body)
			if n := up.Count(); n != 1 {
				t.Fatalf("the replay with %s: fresh reached the upstream (%d requests; status %d)", c.added, n, resp.StatusCode)
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Webhook-Gateway-Replay") != "true" || string(got) != "ok" {
				t.Errorf("replay: status %d, Webhook-Gateway-Replay %q, body %q; want the stored answer", resp.StatusCode, resp.Header.Get("Webhook-Gateway-Replay"), got)
			}
		})
	}
}

// TestBodyHashKey: GitHub signs no delivery id, so a replay with a fresh
// X-GitHub-Delivery is caught only by a key over the signed body; a
// different body is another event.
func TestBodyHashKey(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", providerRoute("github", "github", "s", "idempotency 1h {\nkey {webhook.body_sha256}\n}", up.Addr()))
	github := routes[1]
	steps := []struct {
		name, body, delivery string
		status               int
		replay               string
		upstream             int
	}{
		{"first", `{"ref":"refs/heads/main"}`, "d-1", http.StatusOK, "", 1},
		{"replay_with_fresh_delivery_id", `{"ref":"refs/heads/main"}`, "d-fresh", http.StatusOK, "true", 1},
		{"another_event", `{"ref":"refs/heads/dev"}`, "d-2", http.StatusOK, "", 2},
	}
	for _, s := range steps {
		h := github.signed(t, "s", time.Now(), s.body)
		h.Set("X-Github-Delivery", s.delivery)
		resp, got := post(t, g, "/github", h, s.body)
		if resp.StatusCode != s.status || resp.Header.Get("Webhook-Gateway-Replay") != s.replay || up.Count() != s.upstream {
			t.Fatalf("%s: status %d replay %q upstream %d; want %d %q %d (body %q)",
				s.name, resp.StatusCode, resp.Header.Get("Webhook-Gateway-Replay"), up.Count(), s.status, s.replay, s.upstream, got)
		}
	}
	// The delivery id is not signed, so the gateway does not vouch for
	// it; the app still has GitHub's own header.
	first := up.Received()[0].Header
	if got, ok := first["Webhook-Gateway-Event-Id"]; ok || first.Get("X-Github-Delivery") != "d-1" {
		t.Errorf("upstream event id header %q, GitHub's %q; want none, and d-1", got, first.Get("X-Github-Delivery"))
	}
}

// mailgunDelivery is a genuinely signed Mailgun event: only the
// timestamp and token are signed, the event data is not.
func mailgunDelivery(t *testing.T, secret, token, eventID string) (http.Header, string) {
	t.Helper()
	body := fmt.Sprintf(`{"signature":{"timestamp":"%d","token":"%s","signature":""},"event-data":{"id":"%s","event":"delivered"}}`,
		time.Now().Unix(), token, eventID)
	p, _ := provider.Lookup("mailgun")
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
	if err := p.Scheme.Sign(secret, m); err != nil {
		t.Fatalf("signing: %v", err)
	}
	m.Header.Set("Content-Type", "application/json")
	return m.Header, string(m.Body)
}

// swapEventData keeps a captured delivery's signature object and puts
// other event data beside it.
func swapEventData(t *testing.T, signed, eventID string) string {
	t.Helper()
	i := strings.LastIndex(signed, `,"event-data":`)
	if i < 0 {
		t.Fatalf("no event-data in %q", signed)
	}
	return signed[:i] + `,"event-data":{"id":"` + eventID + `","event":"delivered"}}`
}

// TestMailgunTokenIsSingleUse: Mailgun signs only a timestamp and a
// token, so the token is claimed like an event id, with or without
// idempotency: a replay gets the stored answer, other event data under a
// captured signature is refused, and a delivery the upstream failed is
// released so that Mailgun's own retry gets through.
func TestMailgunTokenIsSingleUse(t *testing.T) {
	const secret = "key-e2e-mailgun"
	for _, st := range stores(t) {
		for _, opts := range []string{"", "idempotency 1h"} {
			name := st.name + "/no_idempotency"
			if opts != "" {
				name = st.name + "/idempotency"
			}
			t.Run(name, func(t *testing.T) {
				var calls atomic.Int32
				up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
					if calls.Add(1) == 1 {
						http.Error(w, "database down", http.StatusInternalServerError)
						return
					}
					io.WriteString(w, "stored")
				})
				g := gatewaytest.Start(t, st.globals, providerRoute("mailgun", "mailgun", secret, opts, up.Addr()))
				h, body := mailgunDelivery(t, secret, "tok-"+name, "evt-1")
				steps := []struct {
					name     string
					body     string
					status   int
					reason   string
					replay   string
					upstream int
				}{
					{"upstream_fails", body, http.StatusInternalServerError, "", "", 1},
					// Released, the token still holds its payload: a
					// captured signature cannot bring other event data.
					{"event_data_swapped_after_release", swapEventData(t, body, "evt-forged"), http.StatusUnprocessableEntity, "payload_mismatch", "", 1},
					{"mailgun_retry_forwarded", body, http.StatusOK, "", "", 2},
					{"replay_answered_from_store", body, http.StatusOK, "", "true", 2},
					{"event_data_swapped", swapEventData(t, body, "evt-forged"), http.StatusUnprocessableEntity, "payload_mismatch", "", 2},
				}
				for _, s := range steps {
					resp, got := post(t, g, "/mailgun", h, s.body)
					if resp.StatusCode != s.status || resp.Header.Get("Webhook-Gateway-Replay") != s.replay || up.Count() != s.upstream {
						t.Fatalf("%s: status %d replay %q upstream %d; want %d %q %d (body %q)",
							s.name, resp.StatusCode, resp.Header.Get("Webhook-Gateway-Replay"), up.Count(), s.status, s.replay, s.upstream, got)
					}
					if s.reason != "" {
						if p := decodeProblem(t, resp, got); p.Reason != s.reason {
							t.Errorf("%s: reason %q, want %q", s.name, p.Reason, s.reason)
						}
					}
					if s.replay != "" && string(got) != "stored" {
						t.Errorf("%s: replayed %q, want the stored answer", s.name, got)
					}
				}
			})
		}
	}
}

// TestAdyenBatchOfCopiesIsRefused: Adyen signs each item, and its id only
// for a single one, so a captured item resent as a batch of copies would
// carry no key at all. Where the route deduplicates on the signed id,
// such a delivery is refused instead of being forwarded unchecked.
func TestAdyenBatchOfCopiesIsRefused(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", providerRoute("adyen", "adyen", "00112233", "idempotency 1h", up.Addr()))
	p, _ := provider.Lookup("adyen")
	item := `{"NotificationRequestItem":{"pspReference":"psp-1","merchantAccountCode":"M","merchantReference":"order-1","amount":{"currency":"EUR","value":1000},"eventCode":"AUTHORISATION","success":"true","additionalData":{"hmacSignature":""}}}`
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(`{"live":"false","notificationItems":[` + item + `]}`), Header: http.Header{"Content-Type": {"application/json"}}}
	if err := p.Scheme.Sign("00112233", m); err != nil {
		t.Fatal(err)
	}
	signedItem := string(m.Body)[len(`{"live":"false","notificationItems":[`) : len(m.Body)-2]
	batch := func(n int) string {
		return `{"live":"false","notificationItems":[` + strings.TrimSuffix(strings.Repeat(signedItem+",", n), ",") + `]}`
	}
	steps := []struct {
		name     string
		body     string
		status   int
		reason   string
		upstream int
	}{
		{"genuine", batch(1), http.StatusOK, "", 1},
		{"replayed", batch(1), http.StatusOK, "", 1},
		{"two copies", batch(2), http.StatusBadRequest, "unsigned_event_id", 1},
		{"three copies", batch(3), http.StatusBadRequest, "unsigned_event_id", 1},
	}
	for _, s := range steps {
		resp, got := post(t, g, "/adyen", m.Header, s.body)
		if resp.StatusCode != s.status || up.Count() != s.upstream {
			t.Fatalf("%s: status %d upstream %d; want %d %d (body %q)", s.name, resp.StatusCode, up.Count(), s.status, s.upstream, got)
		}
		if s.reason != "" {
			if p := decodeProblem(t, resp, got); p.Reason != s.reason {
				t.Errorf("%s: reason %q, want %q", s.name, p.Reason, s.reason)
			}
		}
	}
}
