package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// route is one verified route of the end-to-end config.
type route struct {
	name      string // test name and URL path
	block     string // the webhook_gateway block
	scheme    provider.Scheme
	secret    string
	sigHeader string
	timed     bool // the scheme signs a timestamp
	header    http.Header
	body      string
	wantID    string // the event id header the upstream gets: only a signed one
	wantType  string // likewise the event type
	provider  string
}

var acmeScheme = &provider.HMAC{
	Header:          []string{"X-Acme-Signature"},
	Prefix:          "sha256=",
	TimestampHeader: []string{"X-Acme-Timestamp"},
	IDHeader:        []string{"X-Acme-Delivery"},
	Content:         "{timestamp}.{body}",
}

// acme512Scheme is a custom scheme whose padded base64 SHA-512
// signatures fill the decoding buffer exactly.
var acme512Scheme = &provider.HMAC{Header: []string{"X-Acme512-Signature"}, Algorithm: provider.SHA512, Encoding: provider.Base64}

func builtin(name string) provider.Scheme {
	p, ok := provider.Lookup(name)
	if !ok {
		panic("no provider " + name)
	}
	return p.Scheme
}

var routes = []route{
	{
		name: "stripe", provider: "stripe", scheme: builtin("stripe"), secret: "whsec_e2e_stripe",
		sigHeader: "Stripe-Signature", timed: true,
		body:   `{"id":"evt_1","type":"invoice.paid","data":{}}`,
		wantID: "evt_1", wantType: "invoice.paid",
	},
	{
		name: "github", provider: "github", scheme: builtin("github"), secret: "e2e github secret",
		sigHeader: "X-Hub-Signature-256",
		header:    http.Header{"X-Github-Event": {"push"}, "X-Github-Delivery": {"d-42"}},
		body:      `{"ref":"refs/heads/main"}`,
		// GitHub signs neither header: the gateway vouches for neither.
	},
	{
		name: "standard_webhooks", provider: "standard_webhooks", scheme: builtin("standard_webhooks"),
		secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", sigHeader: "Webhook-Signature", timed: true,
		body:   `{"type":"user.created","data":{"id":1}}`,
		wantID: "msg_e2e", wantType: "user.created",
	},
	{
		name: "svix", provider: "svix", scheme: builtin("svix"),
		secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", sigHeader: "Svix-Signature", timed: true,
		body:   `{"type":"email.sent"}`,
		wantID: "msg_e2e", wantType: "email.sent",
	},
	{
		// Svix deployments may send the webhook-* header family.
		name: "svix_webhook_headers", provider: "svix", scheme: builtin("standard_webhooks"),
		secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", sigHeader: "Webhook-Signature", timed: true,
		body:   `{"type":"email.sent"}`,
		wantID: "msg_e2e", wantType: "email.sent",
	},
	{
		name: "shopify", provider: "shopify", scheme: builtin("shopify"), secret: "e2e_shopify",
		sigHeader: "X-Shopify-Hmac-Sha256",
		header:    http.Header{"X-Shopify-Topic": {"orders/create"}, "X-Shopify-Webhook-Id": {"b54557e4"}},
		body:      `{"id":820982911946154508}`,
		// Shopify signs neither header.
	},
	{
		name: "slack", provider: "slack", scheme: builtin("slack"), secret: "8f742231b10e8888abcd99yyyzzz85a5",
		sigHeader: "X-Slack-Signature", timed: true,
		body:   `{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}`,
		wantID: "Ev1", wantType: "app_mention",
	},
	{
		name: "acme", provider: "acme", scheme: acmeScheme, secret: "e2e acme secret",
		sigHeader: "X-Acme-Signature", timed: true,
		body: `{"kind":"thing.happened"}`,
		// Its content, "{timestamp}.{body}", leaves X-Acme-Delivery unsigned.
	},
	{
		name: "acme_sha512_base64", provider: "acme512", scheme: acme512Scheme, secret: "e2e acme512 secret",
		sigHeader: "X-Acme512-Signature",
		block: `secret "e2e acme512 secret"
			scheme hmac {
				header X-Acme512-Signature
				algorithm sha512
				encoding base64
			}`,
		body: `{"kind":"thing.happened"}`,
	},
}

func (r route) site(upstream string) string {
	block := r.block
	if block == "" {
		block = fmt.Sprintf("secret %q", r.secret)
		if r.scheme == acmeScheme {
			block += `
			scheme hmac {
				header X-Acme-Signature
				prefix sha256=
				timestamp_header X-Acme-Timestamp
				id_header X-Acme-Delivery
				content "{timestamp}.{body}"
			}`
		}
	}
	if r.name != r.provider {
		// A second route of a provider is another sender.
		block += "\n\t\t\tsource " + r.name
	}
	return fmt.Sprintf("route /%s {\n\t\twebhook_gateway %s {\n\t\t\t%s\n\t\t}\n\t\treverse_proxy %s\n\t}\n", r.name, r.provider, block, upstream)
}

// signed builds a delivery signed as the route's provider would.
func (r route) signed(t *testing.T, secret string, at time.Time, body string) http.Header {
	t.Helper()
	m := &provider.Message{Method: http.MethodPost, ID: "msg_e2e", Timestamp: at, Body: []byte(body), Header: r.header.Clone()}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if err := r.scheme.Sign(secret, m); err != nil {
		t.Fatalf("signing: %v", err)
	}
	m.Header.Set("Content-Type", "application/json")
	return m.Header
}

func startE2E(t *testing.T, routes []route) (*gatewaytest.Gateway, *gatewaytest.Upstream) {
	up := gatewaytest.NewUpstream(t)
	var site strings.Builder
	for _, r := range routes {
		site.WriteString(r.site(up.Addr()))
	}
	return gatewaytest.Start(t, "", site.String()), up
}

func post(t *testing.T, g *gatewaytest.Gateway, path string, h http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	return send(t, g, http.MethodPost, path, h, body)
}

// TestValidDeliveriesArriveByteForByte sends one genuine delivery per
// scheme and checks what the upstream received.
func TestValidDeliveriesArriveByteForByte(t *testing.T) {
	g, up := startE2E(t, routes)
	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			up.Reset()
			// A spoofed gateway header must not survive.
			h := r.signed(t, r.secret, time.Now(), r.body)
			h.Set("Webhook-Gateway-Provider", "forged")
			resp, body := post(t, g, "/"+r.name, h, r.body)
			if resp.StatusCode != http.StatusOK || string(body) != "ok" {
				t.Fatalf("status %d body %q, want 200 ok", resp.StatusCode, body)
			}
			got := up.Received()
			if len(got) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(got))
			}
			rcv := got[0]
			if !bytes.Equal(rcv.Body, []byte(r.body)) || rcv.ContentLength != int64(len(r.body)) {
				t.Errorf("upstream body %q (length %d), want %q", rcv.Body, rcv.ContentLength, r.body)
			}
			checkHeader(t, rcv.Header, "Webhook-Gateway-Provider", r.provider)
			checkHeader(t, rcv.Header, "Webhook-Gateway-Event-Id", r.wantID)
			checkHeader(t, rcv.Header, "Webhook-Gateway-Event-Type", r.wantType)
			if v := rcv.Header.Get(r.sigHeader); v != h.Get(r.sigHeader) {
				t.Errorf("signature header %s = %q upstream, want it untouched", r.sigHeader, v)
			}
		})
	}
}

func checkHeader(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	if got := h.Values(name); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
		t.Errorf("upstream header %s = %q, want %q", name, got, want)
	}
}

// forgery is one way a delivery can be wrong.
type forgery struct {
	name   string
	timed  bool // only for schemes that sign a timestamp
	reason []string
	forge  func(t *testing.T, r route) (http.Header, string)
}

var forgeries = []forgery{
	{name: "wrong_secret", reason: []string{"signature_mismatch"}, forge: func(t *testing.T, r route) (http.Header, string) {
		wrong := "wrong-secret"
		if strings.HasPrefix(r.secret, "whsec_") {
			wrong = "whsec_d3Jvbmcgc2VjcmV0IGtleSBieXRlcw=="
		}
		return r.signed(t, wrong, time.Now(), r.body), r.body
	}},
	{name: "altered_body", reason: []string{"signature_mismatch"}, forge: func(t *testing.T, r route) (http.Header, string) {
		altered := []byte(r.body)
		altered[len(altered)-2] ^= 0x01
		return r.signed(t, r.secret, time.Now(), r.body), string(altered)
	}},
	{name: "stale_timestamp", timed: true, reason: []string{"timestamp_too_old"}, forge: func(t *testing.T, r route) (http.Header, string) {
		return r.signed(t, r.secret, time.Now().Add(-time.Hour), r.body), r.body
	}},
	{name: "future_timestamp", timed: true, reason: []string{"timestamp_in_future"}, forge: func(t *testing.T, r route) (http.Header, string) {
		return r.signed(t, r.secret, time.Now().Add(time.Hour), r.body), r.body
	}},
	{name: "missing_header", reason: []string{"missing_signature"}, forge: func(t *testing.T, r route) (http.Header, string) {
		h := r.signed(t, r.secret, time.Now(), r.body)
		h.Del(r.sigHeader)
		return h, r.body
	}},
	{name: "malformed_header", reason: []string{"malformed_signature"}, forge: func(t *testing.T, r route) (http.Header, string) {
		h := r.signed(t, r.secret, time.Now(), r.body)
		h.Set(r.sigHeader, "not a signature at all!")
		return h, r.body
	}},
	{name: "other_provider_format", reason: []string{"malformed_signature", "signature_mismatch"}, forge: func(t *testing.T, r route) (http.Header, string) {
		// The right secret and body, signed in another provider's format.
		other, otherHeader := builtin("github"), "X-Hub-Signature-256"
		if r.provider == "github" {
			other, otherHeader = builtin("stripe"), "Stripe-Signature"
		}
		m := &provider.Message{Method: http.MethodPost, ID: "msg_e2e", Timestamp: time.Now(), Body: []byte(r.body), Header: http.Header{}}
		if err := other.Sign(r.secret, m); err != nil {
			t.Fatal(err)
		}
		h := r.signed(t, r.secret, time.Now(), r.body)
		h.Set(r.sigHeader, m.Header.Get(otherHeader))
		return h, r.body
	}},
}

// TestForgeriesAreRefused checks that every kind of forgery gets a 401
// problem and never reaches the upstream.
func TestForgeriesAreRefused(t *testing.T) {
	g, up := startE2E(t, routes)
	for _, r := range routes {
		for _, f := range forgeries {
			if f.timed && !r.timed {
				continue
			}
			t.Run(r.name+"/"+f.name, func(t *testing.T) {
				up.Reset()
				h, body := f.forge(t, r)
				resp, got := post(t, g, "/"+r.name, h, body)
				p := decodeProblem(t, resp, got)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("status %d, want 401", resp.StatusCode)
				}
				if !contains(f.reason, p.Reason) {
					t.Errorf("reason %q, want one of %q", p.Reason, f.reason)
				}
				if n := up.Count(); n != 0 {
					t.Errorf("a forgery reached the upstream (%d requests)", n)
				}
			})
		}
	}
}

type problem struct {
	Type, Title, Detail, Reason string
	Status                      int
}

func decodeProblem(t *testing.T, resp *http.Response, body []byte) problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json (body %q)", ct, body)
	}
	var p problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decoding problem %q: %v", body, err)
	}
	if p.Status != resp.StatusCode || p.Type != "urn:webhook-gateway:problem:"+p.Reason {
		t.Errorf("problem %+v does not match status %d", p, resp.StatusCode)
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
