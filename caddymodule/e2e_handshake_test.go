package caddymodule_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestHandshakesThroughCaddy subscribes endpoints as each provider does:
// the gateway answers the challenge itself, a signed challenge only once
// its signature holds, and none of them reaches the upstream.
func TestHandshakesThroughCaddy(t *testing.T) {
	const secret = "handshake-secret"
	names := []string{"meta", "dropbox", "trello", "okta", "zoom", "slack", "twitch"}
	up := gatewaytest.NewUpstream(t)
	var site strings.Builder
	for _, name := range names {
		fmt.Fprintf(&site, "route /%s {\nwebhook_gateway %s {\nsecret %s\nverify_token meta-verify\n}\nreverse_proxy %s\n}\n", name, name, secret, up.Addr())
	}
	g := gatewaytest.Start(t, "", site.String())

	signed := func(name, body string, h http.Header) http.Header {
		p, _ := provider.Lookup(name)
		m := &provider.Message{Method: http.MethodPost, ID: "hs-1", Timestamp: time.Now(), Body: []byte(body), Header: h}
		if err := p.Scheme.Sign(secret, m); err != nil {
			t.Fatal(err)
		}
		return m.Header
	}
	zoomBody := `{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1}`
	slackBody := `{"token":"t","challenge":"slack-challenge","type":"url_verification"}`
	twitchBody := `{"challenge":"twitch-challenge","subscription":{"type":"channel.follow"}}`
	cases := []struct {
		name, method, path, body string
		header                   http.Header
		status                   int
		wantBody                 string // a substring of the answer
		wantHeader               string
	}{
		{"meta_subscribe", "GET", "/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meta-verify", "", nil, 200, "1158201444", ""},
		{"meta_wrong_token", "GET", "/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess", "", nil, 403, "", ""},
		{"dropbox_challenge", "GET", "/dropbox?challenge=dbx-challenge", "", nil, 200, "dbx-challenge", "X-Content-Type-Options"},
		{"trello_head", "HEAD", "/trello", "", nil, 200, "", ""},
		{"okta_verification", "GET", "/okta", "", http.Header{"X-Okta-Verification-Challenge": {"okta-challenge"}}, 200, `"verification":"okta-challenge"`, ""},
		{"zoom_url_validation", "POST", "/zoom", zoomBody, signed("zoom", zoomBody, http.Header{}), 200, `"plainToken":"qgg8vlvZRS6UYooatFL8Aw"`, ""},
		// Answering an unsigned Zoom challenge would sign anything for anyone.
		{"zoom_unsigned_refused", "POST", "/zoom", zoomBody, nil, 401, "missing_signature", ""},
		{"slack_url_verification", "POST", "/slack", slackBody, signed("slack", slackBody, http.Header{}), 200, "slack-challenge", ""},
		{"slack_forged_refused", "POST", "/slack", slackBody, signed("github", slackBody, http.Header{}), 401, "missing_signature", ""},
		{"twitch_callback_verification", "POST", "/twitch", twitchBody,
			signed("twitch", twitchBody, http.Header{"Twitch-Eventsub-Message-Type": {"webhook_callback_verification"}}), 200, "twitch-challenge", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			req, _ := http.NewRequest(c.method, g.URL+c.path, strings.NewReader(c.body))
			for k, v := range c.header {
				req.Header[k] = v
			}
			resp, err := g.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.wantBody) {
				t.Fatalf("status %d body %q, want %d with %q", resp.StatusCode, body, c.status, c.wantBody)
			}
			if c.wantHeader != "" && resp.Header.Get(c.wantHeader) == "" {
				t.Errorf("answer lacks %s", c.wantHeader)
			}
			if up.Count() != 0 {
				t.Errorf("a handshake reached the upstream")
			}
		})
	}
}

// TestZoomValidationUsesTheSecretThatVerified: during a rotation Zoom
// signs its url_validation with the new secret, the route's second, and
// the answer must be keyed with that one or Zoom refuses the endpoint.
func TestZoomValidationUsesTheSecretThatVerified(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", fmt.Sprintf("route /zoom {\nwebhook_gateway zoom {\nsecret old-zoom-secret\nsecret new-zoom-secret\n}\nreverse_proxy %s\n}\n", up.Addr()))
	const plain = "qgg8vlvZRS6UYooatFL8Aw"
	body := `{"event":"endpoint.url_validation","payload":{"plainToken":"` + plain + `"},"event_ts":1}`
	for _, secret := range []string{"old-zoom-secret", "new-zoom-secret"} {
		t.Run(secret, func(t *testing.T) {
			zoom, _ := provider.Lookup("zoom")
			m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
			if err := zoom.Scheme.Sign(secret, m); err != nil {
				t.Fatal(err)
			}
			resp, got := post(t, g, "/zoom", m.Header, body)
			mac := hmac.New(sha256.New, []byte(secret))
			mac.Write([]byte(plain))
			if resp.StatusCode != http.StatusOK || gjson.GetBytes(got, "encryptedToken").String() != hex.EncodeToString(mac.Sum(nil)) {
				t.Fatalf("status %d answer %s: want the token keyed with %s", resp.StatusCode, got, secret)
			}
			if up.Count() != 0 {
				t.Fatal("the challenge reached the upstream")
			}
		})
	}
}

// TestAsanaHandshakeReachesTheApp: Asana's X-Hook-Secret is the secret of
// the webhook being created; the gateway cannot keep it, so it hands the
// handshake to the app, marked unverified and stripped of everything
// else, and the app's echo goes back to Asana. A route may wait for its
// secret, refusing every delivery meanwhile; the gateway never logs the
// secret, and a handshake is never deduplicated nor rate limited.
func TestAsanaHandshakeReachesTheApp(t *testing.T) {
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Hook-Secret", r.Header.Get("X-Hook-Secret"))
		w.WriteHeader(http.StatusOK)
	})
	site := fmt.Sprintf(`route /new {
		webhook_gateway asana {
			source asana_new
			rate_limit 1/h
		}
		reverse_proxy %[1]s
	}
	route /live {
		webhook_gateway asana {
			secret live-asana-secret
			rate_limit 1/h
			idempotency 1h {
				key {http.request.uri.path}
			}
		}
		reverse_proxy %[1]s
	}`, up.Addr())
	g := gatewaytest.Start(t, "", site)
	const hookSecret = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"
	handshake := http.Header{
		"X-Hook-Secret":            {hookSecret},
		"X-Other":                  {"not forwarded"},
		"Webhook-Gateway-Verified": {"true"},
		"Webhook-Gateway-Event-Id": {"forged"},
		"Content-Type":             {"application/json"},
	}
	for _, path := range []string{"/new", "/new", "/live", "/live"} {
		t.Run("handshake"+path, func(t *testing.T) {
			up.Reset()
			resp, body := post(t, g, path, handshake, `{"data":"not forwarded"}`)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Hook-Secret") != hookSecret {
				t.Fatalf("status %d, X-Hook-Secret %q (%s): want the app's echo", resp.StatusCode, resp.Header.Get("X-Hook-Secret"), body)
			}
			got := up.Received()
			if len(got) != 1 {
				t.Fatalf("upstream got %d requests, want the handshake once", len(got))
			}
			h := got[0].Header
			if len(got[0].Body) != 0 || h.Get("X-Hook-Secret") != hookSecret ||
				h.Get("Webhook-Gateway-Verified") != "false" || h.Get("Webhook-Gateway-Unverified-Reason") != "handshake" {
				t.Fatalf("upstream got body %q headers %v", got[0].Body, h)
			}
			for _, name := range []string{"X-Other", "Webhook-Gateway-Event-Id", "Content-Type"} {
				if v := h.Get(name); v != "" {
					t.Errorf("upstream got %s: %q", name, v)
				}
			}
		})
	}
	asana, _ := provider.Lookup("asana")
	event := `{"events":[]}`
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(event), Header: http.Header{}}
	if err := asana.Scheme.Sign("live-asana-secret", m); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		status     int
	}{
		{"no_secret_yet_refuses_events", "/new", http.StatusUnauthorized},
		{"configured_route_verifies", "/live", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			resp, body := post(t, g, c.path, m.Header, event)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, c.status)
			}
			if want := map[bool]int{true: 1, false: 0}[c.status == http.StatusOK]; up.Count() != want {
				t.Fatalf("upstream got %d requests, want %d", up.Count(), want)
			}
			if c.status == http.StatusOK && up.Received()[0].Header.Get("Webhook-Gateway-Verified") != "" {
				t.Error("a verified delivery carries the unverified mark")
			}
		})
	}
	logs := string(g.Logs(t))
	if strings.Contains(logs, hookSecret) {
		t.Error("the log shows the handshake's secret")
	}
	if !strings.Contains(logs, "handshake_forwarded") {
		t.Error("the log lacks the handshake_forwarded outcome")
	}
}

// TestQueuedRouteForwardsAsanasHandshakeToTheApp: a queued route has no
// upstream after it, so the handshake that only the app can answer
// (Asana's X-Hook-Secret) goes to the queue's app, synchronously, and
// the provider gets the app's answer, not an empty 200 of the gateway's.
func TestQueuedRouteForwardsAsanasHandshakeToTheApp(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	app := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("X-Hook-Secret", r.Header.Get("X-Hook-Secret"))
	})
	g := gatewaytest.Start(t, "", queueRoute("asana", "asana", "live-asana-secret", "", app.URL+"/hooks/asana", ""))
	resp, _ := post(t, g, "/asana", http.Header{"X-Hook-Secret": {"hs-123"}}, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Hook-Secret") != "hs-123" {
		t.Fatalf("status %d with X-Hook-Secret %q, want the app's 200 echoing hs-123", resp.StatusCode, resp.Header.Get("X-Hook-Secret"))
	}
	got := app.Received()
	if len(got) != 1 || paths[0] != "/hooks/asana" {
		t.Fatalf("the app got %d requests at %q, want the handshake once at /hooks/asana", len(got), paths)
	}
	checkHeader(t, got[0].Header, "X-Hook-Secret", "hs-123")
	checkHeader(t, got[0].Header, "Webhook-Gateway-Verified", "false")
	checkHeader(t, got[0].Header, "Webhook-Gateway-Delivery-Id", "")
}
