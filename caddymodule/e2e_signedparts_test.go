package caddymodule_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestOnlySignedPartsPass drives the schemes that sign part of a request
// (Mailgun's time and token, Adyen's items, Braintree's payload, the URL
// and form fields of Twilio and Mandrill) through a real gateway: what
// the signature does not cover must not be able to change what the app
// reads, and Twilio's SharedKey signatures verify.
func TestOnlySignedPartsPass(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	route := func(name, secrets string) string {
		return fmt.Sprintf("route /%s {\n\t\twebhook_gateway %s {\n\t\t\t%s\n\t\t}\n\t\treverse_proxy %s\n\t}\n", name, name, secrets, up.Addr())
	}
	g := gatewaytest.Start(t, "", route("mailgun", "secret mg-key")+route("adyen", "secret 00112233")+
		route("braintree", "secret private")+route("mandrill", "secret mandrill-key")+
		route("twilio", "secret auth-token\n\t\t\tsecret shared-key-secret"))

	const form = "application/x-www-form-urlencoded"
	sign := func(t *testing.T, name, secret string, at time.Time, h http.Header, body string) (http.Header, string) {
		t.Helper()
		p, _ := provider.Lookup(name)
		if h == nil {
			h = http.Header{}
		}
		m := &provider.Message{Method: http.MethodPost, URL: g.URL + "/" + name, Timestamp: at, Body: []byte(body), Header: h}
		if err := p.Scheme.Sign(secret, m); err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Content-Type") == "" {
			m.Header.Set("Content-Type", "application/json")
		}
		return m.Header, string(m.Body)
	}
	mailgun := func(at time.Time) (http.Header, string) {
		return sign(t, "mailgun", "mg-key", at, nil, fmt.Sprintf(`{"signature":{"token":"tok-1","timestamp":"%d","signature":""},"event-data":{"id":"ev-1","event":"delivered"}}`, at.Unix()))
	}
	adyenItem := `{"NotificationRequestItem":{"pspReference":"psp-1","merchantAccountCode":"M","merchantReference":"order-1","amount":{"currency":"EUR","value":1000},"eventCode":"AUTHORISATION","success":"true","additionalData":{"hmacSignature":""}}}`
	adyenHeader, adyenBody := sign(t, "adyen", "00112233", time.Now(), nil, `{"live":"false","notificationItems":[`+adyenItem+`]}`)
	// Insert into the signed item, next to the fields it signs.
	adyenWith := func(extra string) string {
		at := strings.Index(adyenBody, `,"eventCode"`)
		return adyenBody[:at] + extra + adyenBody[at:]
	}
	btHeader, btBody := sign(t, "braintree", "private", time.Now(), http.Header{"Content-Type": {form}}, "bt_payload=PG5vdGlmaWNhdGlvbj4%3D%0A&bt_signature=")
	twilioForm := "CallSid=CA1&Digits=1234"
	// Built by hand, as Twilio's SDKs document it: HMAC-SHA256 over the
	// URL and the sorted fields, in base64.
	sharedKey := func(settings string) (http.Header, string) {
		mac := hmac.New(sha256.New, []byte("shared-key-secret"))
		mac.Write([]byte(g.URL + "/twilio" + "CallSid" + "CA1" + "Digits" + "1234"))
		return http.Header{
			"Content-Type":                         {form},
			"X-Twilio-Signature":                   {base64.StdEncoding.EncodeToString(mac.Sum(nil))},
			"X-Twilio-Webhooks-Signature-Settings": {settings},
		}, twilioForm
	}

	cases := []struct {
		name, path string
		delivery   func(t *testing.T) (http.Header, string)
		status     int
		reason     string
	}{
		{name: "mailgun fresh", path: "/mailgun", status: http.StatusOK, delivery: func(t *testing.T) (http.Header, string) { return mailgun(time.Now()) }},
		{name: "mailgun signed nine hours ago", path: "/mailgun", status: http.StatusUnauthorized, reason: "timestamp_too_old",
			delivery: func(t *testing.T) (http.Header, string) { return mailgun(time.Now().Add(-9 * time.Hour)) }},
		{name: "adyen genuine", path: "/adyen", status: http.StatusOK, delivery: func(t *testing.T) (http.Header, string) { return adyenHeader, adyenBody }},
		{name: "adyen appended reference and amount", path: "/adyen", status: http.StatusUnauthorized, reason: "malformed_signature",
			delivery: func(t *testing.T) (http.Header, string) {
				return adyenHeader, adyenWith(`,"merchantReference":"order-X","amount":{"value":99999999}`)
			}},
		{name: "adyen upper-case key", path: "/adyen", status: http.StatusUnauthorized, reason: "malformed_signature",
			delivery: func(t *testing.T) (http.Header, string) {
				return adyenHeader, adyenWith(`,"MERCHANTREFERENCE":"order-X"`)
			}},
		{name: "adyen escaped key", path: "/adyen", status: http.StatusUnauthorized, reason: "malformed_signature",
			delivery: func(t *testing.T) (http.Header, string) {
				return adyenHeader, adyenWith(`,"merchant\u0052eference":"order-X"`)
			}},
		{name: "braintree genuine", path: "/braintree", status: http.StatusOK, delivery: func(t *testing.T) (http.Header, string) { return btHeader, btBody }},
		{name: "braintree appended payload", path: "/braintree", status: http.StatusUnauthorized, reason: "malformed_signature",
			delivery: func(t *testing.T) (http.Header, string) { return btHeader, btBody + "&bt_payload=FORGED" }},
		{name: "twilio form", path: "/twilio", status: http.StatusOK,
			delivery: func(t *testing.T) (http.Header, string) {
				return sign(t, "twilio", "auth-token", time.Now(), http.Header{"Content-Type": {form}}, twilioForm)
			}},
		{name: "twilio json under a url-only signature", path: "/twilio", status: http.StatusUnauthorized, reason: "unsigned_body",
			delivery: func(t *testing.T) (http.Header, string) {
				h, _ := sign(t, "twilio", "auth-token", time.Now(), http.Header{"Content-Type": {"application/json"}}, "")
				return h, `{"To":"+15550001111","Body":"forged"}`
			}},
		{name: "mandrill json under a url-only signature", path: "/mandrill", status: http.StatusUnauthorized, reason: "unsigned_body",
			delivery: func(t *testing.T) (http.Header, string) {
				h, _ := sign(t, "mandrill", "mandrill-key", time.Now(), http.Header{"Content-Type": {"application/json"}}, "")
				return h, `[{"event":"send"}]`
			}},
		{name: "twilio shared key", path: "/twilio", status: http.StatusOK,
			delivery: func(t *testing.T) (http.Header, string) { return sharedKey("key=KS1,algorithm=HMAC_SHA256") }},
		{name: "twilio shared key, unknown algorithm", path: "/twilio", status: http.StatusUnauthorized, reason: "malformed_signature",
			delivery: func(t *testing.T) (http.Header, string) { return sharedKey("key=KS1,algorithm=HMAC_MD5") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			h, body := c.delivery(t)
			resp, got := post(t, g, c.path, h, body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, c.status)
			}
			if c.status != http.StatusOK {
				if p := decodeProblem(t, resp, got); p.Reason != c.reason {
					t.Errorf("reason %q, want %q", p.Reason, c.reason)
				}
				if n := up.Count(); n != 0 {
					t.Fatalf("a refused delivery reached the upstream (%d requests)", n)
				}
				return
			}
			rcv := up.Received()
			if len(rcv) != 1 || string(rcv[0].Body) != body {
				t.Fatalf("upstream got %d requests, want the body %q once", len(rcv), body)
			}
		})
	}
}

// TestMailgunTokenIsTheEventID: Mailgun signs its token, not event-data,
// so the token is the event id: a captured signature object sent again
// with other event-data is caught by idempotency, not forwarded.
func TestMailgunTokenIsTheEventID(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", fmt.Sprintf("route /mailgun {\n\t\twebhook_gateway mailgun {\n\t\t\tsecret mg-key\n\t\t\tidempotency 1h\n\t\t}\n\t\treverse_proxy %s\n\t}\n", up.Addr()))
	p, _ := provider.Lookup("mailgun")
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Header: http.Header{"Content-Type": {"application/json"}},
		Body: fmt.Appendf(nil, `{"signature":{"token":"tok-1","timestamp":"%d","signature":""},"event-data":{"id":"ev-1","event":"delivered"}}`, time.Now().Unix())}
	if err := p.Scheme.Sign("mg-key", m); err != nil {
		t.Fatal(err)
	}
	genuine := string(m.Body)
	forged := strings.Replace(genuine, `{"id":"ev-1","event":"delivered"}`, `{"id":"ev-forged","event":"failed"}`, 1)
	if resp, got := post(t, g, "/mailgun", m.Header, genuine); resp.StatusCode != http.StatusOK {
		t.Fatalf("genuine: status %d (%s)", resp.StatusCode, got)
	}
	rcv := up.Received()
	if len(rcv) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(rcv))
	}
	if id := rcv[0].Header.Get("Webhook-Gateway-Event-Id"); id != "tok-1" {
		t.Fatalf("event id %q upstream, want the signed token", id)
	}
	resp, got := post(t, g, "/mailgun", m.Header, forged)
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Webhook-Gateway-Replay") == "" {
		t.Fatalf("other event-data under a used token: status %d (%s), forwarded", resp.StatusCode, got)
	}
	if n := up.Count(); n != 1 {
		t.Fatalf("upstream got %d requests, want the first only", n)
	}
}
