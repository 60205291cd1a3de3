package caddymodule_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/vectors"
)

// TestVectorsThroughCaddy sends every vector of testdata/vectors.json
// through a real Caddy, one route per vector with its secrets read from
// files, at the vector's pinned time: valid ones reach the upstream byte
// for byte, handshakes are answered, the rest are refused and go nowhere.
func TestVectorsThroughCaddy(t *testing.T) {
	vs, err := vectors.Load()
	if err != nil {
		t.Fatal(err)
	}
	up := gatewaytest.NewUpstream(t)
	dir := t.TempDir()
	var site strings.Builder
	for i := range vs {
		site.WriteString(vectorRoute(t, dir, i, &vs[i], up.Addr()))
	}
	g := gatewaytest.Start(t, "", site.String())
	for i, v := range vs {
		t.Run(v.Name(i), func(t *testing.T) {
			up.Reset()
			restore := caddymodule.SetClock(v.Clock)
			defer restore()
			p, _ := provider.Lookup(v.ProviderName())
			req := vectorRequest(t, g, i, &v, p)
			resp, err := g.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case v.IsHandshake():
				if resp.StatusCode != http.StatusOK || up.Count() != 0 {
					t.Fatalf("handshake: status %d, %d upstream requests; want 200 answered by the gateway", resp.StatusCode, up.Count())
				}
			case v.ExpectedValid:
				got := up.Received()
				if resp.StatusCode != http.StatusOK || len(got) != 1 || !bytes.Equal(got[0].Body, []byte(v.Body)) {
					t.Fatalf("valid vector: status %d body %q, upstream %d requests; notes: %s", resp.StatusCode, body, len(got), v.Notes)
				}
			default:
				decodeProblem(t, resp, body)
				if resp.StatusCode < 400 || up.Count() != 0 {
					t.Fatalf("invalid vector: status %d, %d upstream requests", resp.StatusCode, up.Count())
				}
			}
		})
	}
}

// vectorRoute writes the vector's secrets to files and returns its route.
func vectorRoute(t *testing.T, dir string, i int, v *vectors.Vector, upstream string) string {
	secrets, webhookID := []string{v.Secret, v.SecondarySecret}, ""
	if v.PublicCertPEM != "" {
		// PayPal's vectors keep the webhook id where others keep the secret.
		secrets, webhookID = []string{v.PublicCertPEM}, v.Secret
	}
	var block strings.Builder
	for j, s := range secrets {
		if s == "" {
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("%02d-%d.secret", i, j))
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&block, "secret {file.%s}\n", path)
	}
	if webhookID != "" {
		fmt.Fprintf(&block, "webhook_id %q\n", webhookID)
	}
	if v.URL != "" {
		base, _, _ := strings.Cut(v.URL, "?")
		fmt.Fprintf(&block, "public_url %q\n", base)
	}
	fmt.Fprintf(&block, "methods POST %s\n", method(v))
	// Several vectors share a provider: each route is its own sender.
	fmt.Fprintf(&block, "source v%02d\n", i)
	return fmt.Sprintf("route /v/%02d {\nwebhook_gateway %s {\n%s}\nreverse_proxy %s\n}\n", i, v.ProviderName(), block.String(), upstream)
}

func method(v *vectors.Vector) string {
	if v.Method == "" {
		return http.MethodPost
	}
	return v.Method
}

// vectorRequest builds the vector's request; a handshake vector holds
// only its body and is signed here as the provider would.
func vectorRequest(t *testing.T, g *gatewaytest.Gateway, i int, v *vectors.Vector, p *provider.Provider) *http.Request {
	h := v.Header()
	if v.IsHandshake() {
		m := &provider.Message{Method: method(v), URL: v.URL, Timestamp: v.Clock(), Body: []byte(v.Body), Header: h}
		if err := p.Scheme.Sign(v.Secret, m); err != nil {
			t.Fatal(err)
		}
	}
	target := fmt.Sprintf("%s/v/%02d", g.URL, i)
	if _, query, ok := strings.Cut(v.URL, "?"); ok {
		// The query is read from the request, as the provider sends it.
		target += "?" + query
	}
	req, err := http.NewRequest(method(v), target, strings.NewReader(v.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	return req
}
