package caddymodule_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestRotationAcceptsEitherSecret configures two secrets and signs with
// each, then with a third that is not configured.
func TestRotationAcceptsEitherSecret(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", `route /stripe {
		webhook_gateway stripe {
			secret whsec_old
			secret whsec_new
		}
		reverse_proxy `+up.Addr()+`
	}`)
	stripe := routes[0]
	cases := []struct {
		name, secret string
		status       int
	}{
		{"old_secret", "whsec_old", http.StatusOK},
		{"new_secret", "whsec_new", http.StatusOK},
		{"retired_secret", "whsec_older", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			resp, _ := post(t, g, "/stripe", stripe.signed(t, c.secret, time.Now(), stripe.body), stripe.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if want := map[bool]int{true: 1, false: 0}[c.status == http.StatusOK]; up.Count() != want {
				t.Fatalf("upstream got %d requests, want %d", up.Count(), want)
			}
		})
	}
}

// countingReader yields size bytes and counts what was taken.
type countingReader struct {
	remaining int64
	read      atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.remaining <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > c.remaining {
		n = c.remaining
	}
	for i := range p[:n] {
		p[i] = 'a'
	}
	c.remaining -= n
	c.read.Add(n)
	return int(n), nil
}

// TestOversizedBodyIsRefusedUnread sends bodies over max_body, with and
// without a declared length, and checks that the gateway answers 413
// long before the client has sent it all, and forwards nothing.
func TestOversizedBodyIsRefusedUnread(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", `route /github {
		webhook_gateway github {
			secret s
			max_body 4KiB
		}
		reverse_proxy `+up.Addr()+`
	}`)
	const total = 256 << 20
	cases := []struct {
		name     string
		declared bool
	}{
		{"declared_length", true},
		{"chunked", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := &countingReader{remaining: total}
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/github", io.NopCloser(body))
			if c.declared {
				req.ContentLength = total
			}
			resp, err := g.Client.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p := decodeProblem(t, resp, got)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || p.Reason != "body_too_large" {
				t.Fatalf("status %d reason %q, want 413 body_too_large", resp.StatusCode, p.Reason)
			}
			if sent := body.read.Load(); sent > total/8 {
				t.Errorf("client sent %d of %d bytes before the 413: the body was read too far", sent, total)
			}
			if up.Count() != 0 {
				t.Errorf("an oversized body reached the upstream")
			}
		})
	}
}

// TestMethodNotAllowed refuses methods other than the configured ones.
func TestMethodNotAllowed(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", `route /github {
		webhook_gateway github {
			secret s
		}
		reverse_proxy `+up.Addr()+`
	}
	route /put {
		webhook_gateway github {
			secret s
			source github_put
			methods PUT POST
		}
		reverse_proxy `+up.Addr()+`
	}`)
	cases := []struct {
		name, method, path, allow string
		status                    int
	}{
		{"get_on_default", http.MethodGet, "/github", "POST", http.StatusMethodNotAllowed},
		{"delete_on_default", http.MethodDelete, "/github", "POST", http.StatusMethodNotAllowed},
		{"get_on_configured", http.MethodGet, "/put", "POST, PUT", http.StatusMethodNotAllowed},
		// Allowed, then refused for want of a signature: not a 405.
		{"put_on_configured", http.MethodPut, "/put", "", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, g.URL+c.path, strings.NewReader("{}"))
			resp, err := g.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			decodeProblem(t, resp, body)
			if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
				t.Fatalf("status %d Allow %q, want %d %q", resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
			}
			if up.Count() != 0 {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}
}

// TestOneLogLinePerDeliveryWithoutSecrets checks the delivery log: one
// line each, the fields an operator needs, and no secret, signature or
// body anywhere in Caddy's log at its default level. (At DEBUG, Caddy's
// own modules print the config and proxied headers.)
func TestOneLogLinePerDeliveryWithoutSecrets(t *testing.T) {
	g, _ := startE2E(t, routes)
	stripe := routes[0]
	good := stripe.signed(t, stripe.secret, time.Now(), stripe.body)
	bad := stripe.signed(t, "whsec_wrong", time.Now(), stripe.body)
	post(t, g, "/stripe", good, stripe.body)
	post(t, g, "/stripe", bad, stripe.body)

	logs := g.Logs(t)
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs))
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry["logger"] == "http.handlers.webhook_gateway" {
			lines = append(lines, entry)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d gateway log lines, want 2:\n%s", len(lines), logs)
	}
	want := []struct{ outcome, reason string }{{"forwarded", ""}, {"refused", "signature_mismatch"}}
	for i, w := range want {
		l := lines[i]
		if l["outcome"] != w.outcome || (w.reason != "" && l["reason"] != w.reason) || l["event_id"] == nil || l["duration"] == nil {
			t.Errorf("line %d = %v, want outcome %s reason %q", i, l, w.outcome, w.reason)
		}
	}
	if l := lines[0]; l["event_id"] != "evt_1" || l["upstream_status"] != float64(200) {
		t.Errorf("forwarded line %v lacks event id or upstream status", l)
	}
	for _, secret := range []string{stripe.secret, "whsec_wrong", sigOf(good), sigOf(bad), `"type":"invoice.paid"`} {
		if bytes.Contains(logs, []byte(secret)) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
}

// sigOf is the v1 value of a Stripe-Signature header.
func sigOf(h http.Header) string {
	_, v1, _ := strings.Cut(h.Get("Stripe-Signature"), "v1=")
	return v1
}

// TestLogBodyOptIn: with log_body the delivery's line carries the body,
// cut at the configured size; other routes' lines never do.
func TestLogBodyOptIn(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", `route /logged {
		webhook_gateway github {
			secret s
			source github_logged
			log_body 16B
		}
		reverse_proxy `+up.Addr()+`
	}
	route /quiet {
		webhook_gateway github {
			secret s
		}
		reverse_proxy `+up.Addr()+`
	}`)
	github := routes[1]
	for _, path := range []string{"/logged", "/quiet"} {
		body := `{"path":"` + path + `","secret_field":"customer data"}`
		if resp, _ := post(t, g, path, github.signed(t, "s", time.Now(), body), body); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
	logs := string(g.Logs(t))
	if !strings.Contains(logs, `"body":"{\"path\":\"/logged",`) {
		t.Errorf("the first 16 bytes of the logged route's body are not in the log:\n%s", logs)
	}
	for _, leaked := range []string{"/quiet", "customer data"} {
		if strings.Contains(logs, leaked) {
			t.Errorf("the log contains %q beyond what log_body allows", leaked)
		}
	}
}
