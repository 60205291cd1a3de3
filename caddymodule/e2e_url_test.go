package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestURLSigningUsesTheURLTheProviderCalled: without public_url, a
// provider that signs the URL is checked against the URL the client used
// (https from the connection, host and port from the request), before
// the rewrite that runs ahead of the gateway in the route; with
// public_url, against that.
func TestURLSigningUsesTheURLTheProviderCalled(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	site := fmt.Sprintf(`route /twilio {
		rewrite * /rewritten?internal=1
		webhook_gateway twilio {
			secret twilio-token
		}
		reverse_proxy %s
	}
	route /pinned {
		webhook_gateway twilio {
			secret twilio-token
			source twilio_pinned
			public_url https://hooks.example.com/voice
		}
		reverse_proxy %s
	}`, up.Addr(), up.Addr())
	g := gatewaytest.Start(t, "", site)
	twilio, _ := provider.Lookup("twilio")
	body := "CallSid=CA1234&Digits=1234&From=%2B14158675309"
	cases := []struct {
		name, path, signedURL string
		status                int
	}{
		{"url_as_called", "/twilio?foo=1", g.URL + "/twilio?foo=1", http.StatusOK},
		{"rewritten_url_is_not_it", "/twilio?foo=1", g.URL + "/rewritten?internal=1", http.StatusUnauthorized},
		{"plain_http_scheme_is_not_it", "/twilio?foo=1", "http" + g.URL[len("https"):] + "/twilio?foo=1", http.StatusUnauthorized},
		{"public_url_pinned", "/pinned?foo=1", "https://hooks.example.com/voice?foo=1", http.StatusOK},
		{"pinned_ignores_host", "/pinned?foo=1", g.URL + "/pinned?foo=1", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			m := &provider.Message{Method: http.MethodPost, URL: c.signedURL, Timestamp: time.Now(), Body: []byte(body),
				Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}
			if err := twilio.Scheme.Sign("twilio-token", m); err != nil {
				t.Fatal(err)
			}
			resp, got := post(t, g, c.path, m.Header, string(m.Body))
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, c.status)
			}
			want := map[bool]int{true: 1, false: 0}[c.status == http.StatusOK]
			if n := up.Count(); n != want {
				t.Fatalf("upstream got %d requests, want %d", n, want)
			}
			if want == 1 && c.path == "/twilio?foo=1" && up.Received()[0].Path != "/rewritten" {
				t.Errorf("upstream path %q: the rewrite did not apply", up.Received()[0].Path)
			}
		})
	}
}

// TestPublicURLQueryIsNeverTrusted: a public_url that carries a query
// (the URL Mailchimp was given, ?secret= included) lends no part of it to
// the request: a token is read, and a URL signed, only from what the
// client sent.
func TestPublicURLQueryIsNeverTrusted(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	site := fmt.Sprintf(`route /mc {
		webhook_gateway mailchimp {
			secret s3cret
			public_url "https://hooks.example.com/mc?secret=s3cret"
		}
		reverse_proxy %s
	}
	route /pinned {
		webhook_gateway twilio {
			secret twilio-token
			public_url "https://hooks.example.com/voice?foo=1"
		}
		reverse_proxy %s
	}`, up.Addr(), up.Addr())
	g := gatewaytest.Start(t, "", site)
	twilio, _ := provider.Lookup("twilio")
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	twilioSigned := func(u string) http.Header {
		m := &provider.Message{Method: http.MethodPost, URL: u, Body: []byte("CallSid=CA1"), Header: form.Clone()}
		if err := twilio.Scheme.Sign("twilio-token", m); err != nil {
			t.Fatal(err)
		}
		return m.Header
	}
	cases := []struct {
		name, path string
		header     http.Header
		status     int
	}{
		{"mailchimp_without_secret", "/mc", form, http.StatusUnauthorized},
		{"mailchimp_wrong_secret", "/mc?secret=guess", form, http.StatusUnauthorized},
		{"mailchimp_with_secret", "/mc?secret=s3cret", form, http.StatusOK},
		{"twilio_query_not_sent", "/pinned", twilioSigned("https://hooks.example.com/voice?foo=1"), http.StatusUnauthorized},
		{"twilio_other_query_sent", "/pinned?foo=2", twilioSigned("https://hooks.example.com/voice?foo=1"), http.StatusUnauthorized},
		{"twilio_query_as_sent", "/pinned?foo=1", twilioSigned("https://hooks.example.com/voice?foo=1"), http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			resp, got := post(t, g, c.path, c.header, "CallSid=CA1")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, c.status)
			}
			if want := map[bool]int{true: 1, false: 0}[c.status == http.StatusOK]; up.Count() != want {
				t.Fatalf("upstream got %d requests, want %d", up.Count(), want)
			}
		})
	}
}
