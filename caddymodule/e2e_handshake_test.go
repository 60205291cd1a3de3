package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestHandshakesThroughCaddy subscribes endpoints as each provider does:
// the gateway answers the challenge itself, a signed challenge only once
// its signature holds, and none of them reaches the upstream.
func TestHandshakesThroughCaddy(t *testing.T) {
	const secret = "handshake-secret"
	names := []string{"meta", "dropbox", "asana", "trello", "okta", "zoom", "slack", "twitch"}
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
		{"asana_hook_secret", "POST", "/asana", "", http.Header{"X-Hook-Secret": {"asana-secret-123"}}, 200, "", "X-Hook-Secret"},
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
			if c.wantHeader == "X-Hook-Secret" && resp.Header.Get("X-Hook-Secret") != "asana-secret-123" {
				t.Errorf("X-Hook-Secret echoed as %q", resp.Header.Get("X-Hook-Secret"))
			}
			if up.Count() != 0 {
				t.Errorf("a handshake reached the upstream")
			}
		})
	}
}
