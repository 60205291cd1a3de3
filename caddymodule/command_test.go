package caddymodule

import (
	"bytes"
	"cmp"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
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
		{"unset_env_secret", signOptions{Provider: "stripe", Secret: "{env.WG_TEST_NOT_SET}"}, "environment variable WG_TEST_NOT_SET is not set"},
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
// exit code: anything but a 2xx is an error that says what came back.
func TestSendDelivery(t *testing.T) {
	var got []byte
	var gotSig string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		gotSig = r.Header.Get("X-Hub-Signature-256")
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusUnauthorized)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/moved":
			w.WriteHeader(http.StatusNotModified)
		}
		io.WriteString(w, "answer")
	}))
	defer srv.Close()
	cases := []struct {
		name, path string
		code       int
		err        string
	}{
		{"accepted", "/ok", 0, ""},
		{"refused", "/fail", 1, "answered 401 Unauthorized"},
		{"unavailable", "/down", 1, "answered 503 Service Unavailable"},
		{"not_2xx", "/moved", 1, "answered 304 Not Modified"},
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
			if code != c.code {
				t.Fatalf("exit %d, want %d", code, c.code)
			}
			if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
			if string(got) != "payload" || !strings.HasPrefix(gotSig, "sha256=") {
				t.Fatalf("server got %q sig %q", got, gotSig)
			}
			if c.code == 0 && !strings.Contains(out.String(), "answer") {
				t.Fatalf("printed %q", out.String())
			}
		})
	}
}

// TestSignAddsWhatTheSenderSends: the headers a provider sends beside
// its signature, which its SDK or an app checks, are in what sign
// prints; a --header the user gave wins.
func TestSignAddsWhatTheSenderSends(t *testing.T) {
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	cases := []struct {
		name, provider string
		header         http.Header
		want           map[string]string // "" means any value matching uuidRE
	}{
		{"box_sdk_headers", "box", nil, map[string]string{"Box-Signature-Version": "1", "Box-Signature-Algorithm": "HmacSHA256", "Box-Delivery-Id": ""}},
		{"github_delivery_guid", "github", nil, map[string]string{"X-Github-Delivery": ""}},
		{"github_delivery_given", "github", http.Header{"X-Github-Delivery": {"given-guid"}}, map[string]string{"X-Github-Delivery": "given-guid"}},
		{"bitbucket_request_uuid", "bitbucket", nil, map[string]string{"X-Request-Uuid": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := signDelivery(signOptions{Provider: c.provider, Secret: "s3cret", Body: []byte(`{"trigger":"FILE.UPLOADED"}`), Header: c.header})
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range c.want {
				got := m.Header.Get(k)
				if want == "" && !uuidRE.MatchString(got) || want != "" && got != want {
					t.Errorf("%s: %q, want %q", k, got, cmp.Or(want, "a random UUID"))
				}
			}
			if len(m.Header.Values("X-Github-Delivery")) > 1 {
				t.Errorf("X-GitHub-Delivery sent twice: %q", m.Header.Values("X-Github-Delivery"))
			}
		})
	}
}

// TestSignFromConfig signs as a route of a config file: a custom scheme
// that no built-in provider describes, and a built-in one, each with the
// route's own secret; what comes out is what that route accepts.
func TestSignFromConfig(t *testing.T) {
	body := []byte(`{"id":"evt_cfg"}`)
	// Caddyfile.example's acme route, which signs its delivery id.
	exampleAcme := &provider.HMAC{Header: []string{"X-Acme-Signature"}, Prefix: "sha256=", TimestampHeader: []string{"X-Acme-Timestamp"}, IDHeader: []string{"X-Acme-Delivery"}, Content: "{id}.{timestamp}.{body}"}
	cases := []struct {
		name, route, secret string
		verifier            func(t *testing.T) provider.Verifier
		wantHeader          string
		wantErr             string
	}{
		{"acme_custom_scheme", "acme", "", func(t *testing.T) provider.Verifier {
			p := &provider.Provider{Name: "acme", Scheme: exampleAcme}
			return verifierFor(t, p, "demo-acme-secret")
		}, "X-Acme-Signature", ""},
		{"builtin_route_secret", "github", "", func(t *testing.T) provider.Verifier {
			p, _ := provider.Lookup("github")
			return verifierFor(t, p, "demo-github-secret")
		}, "X-Hub-Signature-256", ""},
		{"secret_flag_wins", "acme", "other", nil, "", ""},
		{"no_such_route", "stripee", "", nil, "", `no webhook_gateway route for "stripee"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := signDelivery(signOptions{Provider: c.route, Config: "../Caddyfile.example", Secret: c.secret, Body: body})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.verifier == nil {
				// Signed with the flag's secret, not the route's.
				v := verifierFor(t, &provider.Provider{Name: "acme", Scheme: exampleAcme}, "other")
				if _, err := v.Verify(&provider.Request{Method: "POST", Header: m.Header, Body: body, Now: time.Now()}); err != nil {
					t.Fatalf("--secret was not used: %v", err)
				}
				return
			}
			if m.Header.Get(c.wantHeader) == "" {
				t.Fatalf("no %s in %v", c.wantHeader, m.Header)
			}
			req := &provider.Request{Method: "POST", Header: m.Header, Body: body, Now: time.Now()}
			if _, err := c.verifier(t).Verify(req); err != nil {
				t.Fatalf("the route would refuse what sign produced: %v", err)
			}
		})
	}
}

func verifierFor(t *testing.T, p *provider.Provider, secret string) provider.Verifier {
	t.Helper()
	v, err := p.NewVerifier(provider.VerifierConfig{Secrets: []string{secret}, Tolerance: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return v
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
