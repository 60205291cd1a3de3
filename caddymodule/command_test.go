package caddymodule

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// TestSignDeliveryVerifies signs as each provider and checks the result
// with the provider's own verifier, so `sign` output is what a route
// accepts.
func TestSignDeliveryVerifies(t *testing.T) {
	cases := []struct {
		name, provider, secret string
	}{
		{"stripe", "stripe", "whsec_cli"},
		{"github", "github", "cli secret"},
		{"standard_webhooks", "standard_webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{"svix", "svix", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{"shopify", "shopify", "cli"},
		{"slack", "slack", "cli"},
		{"alias_clerk", "clerk", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	}
	body := []byte(`{"id":"evt_cli"}`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := signDelivery(signOptions{Provider: c.provider, Secret: c.secret, Body: body, URL: "https://h.example/x"})
			if err != nil {
				t.Fatalf("signing: %v", err)
			}
			h := m.Header
			p, _ := provider.Lookup(c.provider)
			v, err := p.NewVerifier(provider.VerifierConfig{Secrets: []string{c.secret}})
			if err != nil {
				t.Fatal(err)
			}
			req := &provider.Request{Method: "POST", URL: "https://h.example/x", Header: h, Body: body, Now: time.Now()}
			if _, err := v.Verify(req); err != nil {
				t.Fatalf("the route would refuse what sign produced: %v", err)
			}
			req.Body = []byte(`{"id":"evt_cl1"}`)
			if _, err := v.Verify(req); err == nil {
				t.Fatal("a changed body still verified")
			}
		})
	}
}

func TestSignDeliveryErrors(t *testing.T) {
	cases := []struct {
		name string
		o    signOptions
		want string
	}{
		{"unknown_provider", signOptions{Provider: "stripee", Secret: "s"}, `unknown provider "stripee"`},
		{"empty_env_secret", signOptions{Provider: "stripe", Secret: "{env.WG_TEST_NOT_SET}"}, "resolved to an empty value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := signDelivery(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestSendDelivery sends a signed payload and maps the answer to an
// exit code.
func TestSendDelivery(t *testing.T) {
	var got []byte
	var gotSig string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		gotSig = r.Header.Get("X-Hub-Signature-256")
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusUnauthorized)
		}
		io.WriteString(w, "answer")
	}))
	defer srv.Close()
	cases := []struct {
		name, path string
		code       int
	}{
		{"accepted", "/ok", 0},
		{"refused", "/fail", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := signOptions{Provider: "github", Secret: "s", Body: []byte("payload"), URL: srv.URL + c.path}
			m, err := signDelivery(o)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			code, err := sendDelivery(srv.Client(), m, &out)
			if err != nil || code != c.code {
				t.Fatalf("exit %d, %v; want %d", code, err, c.code)
			}
			if string(got) != "payload" || !strings.HasPrefix(gotSig, "sha256=") || !strings.Contains(out.String(), "answer") {
				t.Fatalf("server got %q sig %q; printed %q", got, gotSig, out.String())
			}
		})
	}
}

func TestWriteProvidersListsRegistry(t *testing.T) {
	var out bytes.Buffer
	if err := writeProviders(&out); err != nil {
		t.Fatal(err)
	}
	for _, p := range provider.All() {
		if !strings.Contains(out.String(), "\n"+p.Name+" ") {
			t.Errorf("provider %s missing from:\n%s", p.Name, out.String())
		}
	}
}
