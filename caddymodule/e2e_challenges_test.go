package caddymodule_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestChallengesThroughCaddy subscribes Microsoft Graph, X and Nylas
// endpoints and sends them deliveries, and sends PandaDoc deliveries
// signed in the URL: challenges are answered by the gateway and never
// reach the app; deliveries reach it byte for byte only when their
// secret holds.
func TestChallengesThroughCaddy(t *testing.T) {
	const (
		graphState = "graph-client-state"
		xSecret    = "x-consumer-secret"
		nylasKey   = "nylas-webhook-secret"
		pandaKey   = "pandadoc-shared-key"
	)
	up := gatewaytest.NewUpstream(t)
	var site strings.Builder
	for name, secret := range map[string]string{"microsoft_graph": graphState, "twitter": xSecret, "nylas": nylasKey, "pandadoc": pandaKey} {
		fmt.Fprintf(&site, "route /%s {\nwebhook_gateway %s {\nsecret %s\n}\nreverse_proxy %s\n}\n", name, name, secret, up.Addr())
	}
	g := gatewaytest.Start(t, "", site.String())

	graphBody := `{"value":[{"subscriptionId":"sub-1","clientState":"` + graphState + `","changeType":"created","resource":"Users/1/Messages/2"},` +
		`{"subscriptionId":"sub-1","clientState":"` + graphState + `","changeType":"updated","resource":"Users/1/Messages/3"}]}`
	graphForged := strings.Replace(graphBody, `"updated","resource":"Users/1/Messages/3"}`, `"updated","resource":"Users/1/Messages/3","clientState":"guess"}`, 1)
	graphMixed := strings.Replace(graphBody, `"clientState":"`+graphState+`","changeType":"updated"`, `"clientState":"guess","changeType":"updated"`, 1)
	const xToken = "9b4507b3-9040-4669-9ca3-6b94edb50553"
	xBody := `{"for_user_id":"2244994945","tweet_create_events":[{"id_str":"1"}]}`
	nylasBody := `{"specversion":"1.0","type":"message.created","id":"nylas-evt-1","data":{"object":{"id":"m1"}}}`
	pandaBody := `[{"event":"document_state_changed","data":{"id":"doc-1","status":"document.completed"}}]`
	pandaURL, pandaHeader := sign(t, "pandadoc", pandaKey, "/pandadoc", pandaBody)
	_, xHeader := sign(t, "twitter", xSecret, "/twitter", xBody)
	_, nylasHeader := sign(t, "nylas", nylasKey, "/nylas", nylasBody)

	cases := []struct {
		name, method, path, body string
		header                   http.Header
		status                   int
		// answer is the exact body the gateway answers; forwarded
		// says the delivery reaches the app, byte for byte.
		answer      string
		contentType string
		forwarded   bool
	}{
		{name: "graph validation echoed", method: "POST",
			path:   "/microsoft_graph?validationToken=" + url.QueryEscape("Validation: Testing client application reachability for subscription Request-Id: 7b1b2dd6"),
			status: 200, answer: "Validation: Testing client application reachability for subscription Request-Id: 7b1b2dd6", contentType: "text/plain; charset=utf-8"},
		{name: "graph validation with a line break refused", method: "POST",
			path: "/microsoft_graph?validationToken=a%0D%0ASet-Cookie%3A+x%3D1", status: 400},
		{name: "graph notification forwarded", method: "POST", path: "/microsoft_graph", body: graphBody, status: 200, forwarded: true},
		{name: "graph notification with a wrong clientState refused", method: "POST", path: "/microsoft_graph", body: graphMixed, status: 401},
		{name: "graph notification with a repeated clientState refused", method: "POST", path: "/microsoft_graph", body: graphForged, status: 401},
		{name: "graph notification without clientState refused", method: "POST", path: "/microsoft_graph",
			body: `{"value":[{"subscriptionId":"sub-1","changeType":"created"}]}`, status: 401},
		{name: "x crc answered", method: "GET", path: "/twitter?crc_token=" + xToken, status: 200,
			answer: `{"response_token":"sha256=` + xCRC(xSecret, xToken) + `"}`, contentType: "application/json"},
		{name: "x crc shaped as a body refused", method: "GET", path: "/twitter?crc_token=" + url.QueryEscape(xBody), status: 400},
		{name: "x delivery forwarded", method: "POST", path: "/twitter", body: xBody, header: xHeader, status: 200, forwarded: true},
		{name: "nylas challenge echoed", method: "GET", path: "/nylas?challenge=nylas-challenge-1", status: 200,
			answer: "nylas-challenge-1", contentType: "text/plain; charset=utf-8"},
		{name: "nylas delivery forwarded", method: "POST", path: "/nylas", body: nylasBody, header: nylasHeader, status: 200, forwarded: true},
		{name: "pandadoc delivery forwarded", method: "POST", path: pandaURL, body: pandaBody, header: pandaHeader, status: 200, forwarded: true},
		{name: "pandadoc tampered refused", method: "POST", path: pandaURL, body: strings.Replace(pandaBody, "doc-1", "doc-2", 1), header: pandaHeader, status: 401},
		{name: "pandadoc unsigned refused", method: "POST", path: "/pandadoc", body: pandaBody, header: pandaHeader, status: 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			resp, got := send(t, g, c.method, c.path, c.header, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, got, c.status)
			}
			if c.answer != "" && string(got) != c.answer {
				t.Fatalf("answer %q, want %q", got, c.answer)
			}
			if c.contentType != "" && resp.Header.Get("Content-Type") != c.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), c.contentType)
			}
			if c.contentType == "text/plain; charset=utf-8" && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("an echo without X-Content-Type-Options: nosniff")
			}
			received := up.Received()
			if !c.forwarded {
				if len(received) != 0 {
					t.Fatalf("reached the upstream: %+v", received)
				}
				return
			}
			if len(received) != 1 || !bytes.Equal(received[0].Body, []byte(c.body)) {
				t.Fatalf("upstream received %d requests, want the body byte for byte", len(received))
			}
		})
	}
}

// TestCRCFloodLimitedThroughCaddy: X's CRC answer signs with the secret
// of deliveries, so a flood of challenges gets only a few answers, and
// only the flooding client's: another address is still answered.
func TestCRCFloodLimitedThroughCaddy(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", fmt.Sprintf("route /x {\nwebhook_gateway x {\nsecret x-flood-secret-%d\n}\nreverse_proxy %s\n}\n", time.Now().UnixNano(), up.Addr()))
	answered, limited := 0, 0
	for i := range 20 {
		resp, body := send(t, g, "GET", fmt.Sprintf("/x?crc_token=tok%d", i), nil, "")
		switch resp.StatusCode {
		case http.StatusOK:
			answered++
			if !strings.HasPrefix(gjson.GetBytes(body, "response_token").String(), "sha256=") {
				t.Fatalf("answer %s", body)
			}
		case http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") == "" || bytes.Contains(body, []byte("sha256=")) {
				t.Fatalf("a limited challenge: Retry-After %q body %q", resp.Header.Get("Retry-After"), body)
			}
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// The limit allows a burst of 3 and one more every 10 s: a slow
	// machine may earn one or two more during the flood, never many.
	if answered < 3 || answered > 6 || limited != 20-answered {
		t.Fatalf("%d answered and %d limited of 20", answered, limited)
	}
	// X's own challenge, from another address, is still answered: a
	// flood from one client must not make X's CRC fail.
	resp, body := sendFrom(t, g, "127.0.0.2", "GET", "/x?crc_token=from-x")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(gjson.GetBytes(body, "response_token").String(), "sha256=") {
		t.Fatalf("another client's challenge during the flood got %d %q", resp.StatusCode, body)
	}
	if up.Count() != 0 {
		t.Fatal("a challenge reached the upstream")
	}
}

// sendFrom is send from the local address ip (any 127/8 address works
// on the loopback interface).
func sendFrom(t *testing.T, g *gatewaytest.Gateway, ip, method, path string) (*http.Response, []byte) {
	t.Helper()
	tr := g.Client.Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp4", addr) }
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: g.Client.Timeout}
	req, err := http.NewRequest(method, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Skipf("this machine's loopback has no %s", ip)
	}
	if err != nil {
		t.Fatalf("%s %s from %s: %v", method, path, ip, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp, got
}

// TestCRCAnswerIsNoDeliveryThroughCaddy: an attacker who has the gateway
// answer a CRC for a token of its choosing holds an HMAC of that token
// under the delivery secret, in the delivery header's form; posted as a
// body, the token must be refused and never reach the app.
func TestCRCAnswerIsNoDeliveryThroughCaddy(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", fmt.Sprintf("route /x {\nwebhook_gateway x {\nsecret x-oracle-secret-%d\n}\nreverse_proxy %s\n}\n", time.Now().UnixNano(), up.Addr()))
	cases := []struct{ name, token string }{
		{"json number", "1234567890"},
		{"json null", "null"},
		{"opaque token", "dGhpcy1pcy1ub3QtYS10d2VldA=="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, answer := send(t, g, "GET", "/x?crc_token="+url.QueryEscape(c.token), nil, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("crc status %d %q", resp.StatusCode, answer)
			}
			sig := gjson.GetBytes(answer, "response_token").String()
			resp, got := send(t, g, "POST", "/x", http.Header{"X-Twitter-Webhooks-Signature": {sig}}, c.token)
			if resp.StatusCode != http.StatusUnauthorized || !bytes.Contains(got, []byte("unsigned_body")) {
				t.Fatalf("the CRC answer posted as a delivery got %d %q, want 401 unsigned_body", resp.StatusCode, got)
			}
		})
	}
	if up.Count() != 0 {
		t.Fatalf("%d requests reached the upstream", up.Count())
	}
}

// send makes one request to the gateway and reads the whole answer.
func send(t *testing.T, g *gatewaytest.Gateway, method, path string, h http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp, got
}

// sign signs body as provider does and returns the path to post to (a
// URL-signing provider puts its signature there) and the headers.
func sign(t *testing.T, name, secret, path, body string) (string, http.Header) {
	t.Helper()
	p, _ := provider.Lookup(name)
	m := &provider.Message{Method: http.MethodPost, URL: "https://example.com" + path, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
	if err := p.Scheme.Sign(secret, m); err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != body {
		t.Fatalf("%s: signing changed the body", name)
	}
	u, err := url.Parse(m.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI(), m.Header
}

// xCRC is X's response token, computed as X's samples do.
func xCRC(secret, token string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(token))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
