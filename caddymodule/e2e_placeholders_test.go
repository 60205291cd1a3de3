package caddymodule_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// TestStartupPlaceholdersThroughCaddy configures every option that
// takes a secret or an address from {env.*} or {file.*}: the value the
// placeholder names is what the route checks, and the placeholder's own
// text is refused like any other wrong value.
func TestStartupPlaceholdersThroughCaddy(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubFile := writeFile("paypal.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})))

	t.Setenv("WG_T_GITHUB_SECRET", "github-from-env")
	t.Setenv("WG_T_VERIFY", "verify-from-env")
	t.Setenv("WG_T_PUBLIC_URL", "https://hooks.example.com/square-public")
	t.Setenv("WG_T_WEBHOOK_ID", "WH-FROM-ENV")
	githubFile := writeFile("github.secret", "github-from-file")
	verifyFile := writeFile("verify.token", "verify-from-file")

	// Each route names the option under test in its path.
	routes := map[string]string{
		"secret_env":       "github {\nsecret {env.WG_T_GITHUB_SECRET}\n}",
		"secret_file":      fmt.Sprintf("github {\nsecret {file.%s}\n}", githubFile),
		"verify_token_env": "meta {\nsecret s\nverify_token {env.WG_T_VERIFY}\n}",
		"verify_token_file": fmt.Sprintf("meta {\nsecret s\nverify_token {file.%s}\n}",
			verifyFile),
		"public_url_env": "square {\nsecret square-secret\npublic_url {env.WG_T_PUBLIC_URL}\n}",
		"webhook_id_env": fmt.Sprintf("paypal {\nsecret {file.%s}\nwebhook_id {env.WG_T_WEBHOOK_ID}\n}", pubFile),
	}
	up := gatewaytest.NewUpstream(t)
	var site strings.Builder
	for path, block := range routes {
		// Each route is its own sender, whatever its provider.
		block = strings.Replace(block, "{\n", "{\nsource "+path+"\n", 1)
		fmt.Fprintf(&site, "route /%s {\nwebhook_gateway %s\nreverse_proxy %s\n}\n", path, block, up.Addr())
	}
	// The store's address is an option resolved the same way.
	t.Setenv("WG_T_REDIS_URL", testredis.Start(t).URL())
	g := gatewaytest.Start(t, "webhook_gateway {\nredis {env.WG_T_REDIS_URL}\n}", site.String())

	body := `{"id":"evt_placeholder"}`
	sign := func(name, secret, url, webhookID string) http.Header {
		p, _ := provider.Lookup(name)
		m := &provider.Message{Method: http.MethodPost, URL: url, ID: "msg-ph", WebhookID: webhookID, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
		if err := p.Scheme.Sign(secret, m); err != nil {
			t.Fatal(err)
		}
		return m.Header
	}
	meta := func(path, token string) string {
		return "/" + path + "?hub.mode=subscribe&hub.challenge=4242&hub.verify_token=" + token
	}
	cases := []struct {
		name, method, path string
		header             http.Header
		status             int
		forwarded          bool
	}{
		{"secret_env", "POST", "/secret_env", sign("github", "github-from-env", "", ""), 200, true},
		{"secret_env_literal_refused", "POST", "/secret_env", sign("github", "{env.WG_T_GITHUB_SECRET}", "", ""), 401, false},
		{"secret_file", "POST", "/secret_file", sign("github", "github-from-file", "", ""), 200, true},
		{"verify_token_env", "GET", meta("verify_token_env", "verify-from-env"), nil, 200, false},
		{"verify_token_env_literal_refused", "GET", meta("verify_token_env", "%7Benv.WG_T_VERIFY%7D"), nil, 403, false},
		{"verify_token_file", "GET", meta("verify_token_file", "verify-from-file"), nil, 200, false},
		{"public_url_env", "POST", "/public_url_env", sign("square", "square-secret", "https://hooks.example.com/square-public", ""), 200, true},
		{"public_url_env_literal_refused", "POST", "/public_url_env", sign("square", "square-secret", "{env.WG_T_PUBLIC_URL}", ""), 401, false},
		{"webhook_id_env", "POST", "/webhook_id_env", sign("paypal", privPEM, "", "WH-FROM-ENV"), 200, true},
		{"webhook_id_env_literal_refused", "POST", "/webhook_id_env", sign("paypal", privPEM, "", "{env.WG_T_WEBHOOK_ID}"), 401, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			req, _ := http.NewRequest(c.method, g.URL+c.path, strings.NewReader(body))
			for k, v := range c.header {
				req.Header[k] = v
			}
			resp, err := g.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, c.status)
			}
			if c.method == "GET" && c.status == 200 && string(got) != "4242" {
				t.Errorf("challenge answered %q, want 4242", got)
			}
			if n := up.Count(); (n == 1) != c.forwarded || n > 1 {
				t.Errorf("%d deliveries reached the upstream, forwarded=%v wanted", n, c.forwarded)
			}
		})
	}
}
