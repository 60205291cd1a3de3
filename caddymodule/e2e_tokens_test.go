package caddymodule_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/jwktest"
	"github.com/webrev/webhook-gateway/internal/testtls"
)

// The token providers end to end: a real Caddy with the gateway, whose
// key fetcher reaches a local TLS server standing in for Google's JWKS
// and Plaid's key API, admitted by an allow-list entry naming its exact
// host and port.

const (
	e2eServiceAccount = "push@e2e-project.iam.gserviceaccount.com"
	e2eClientID       = "plaid-e2e-client"
	e2ePlaidSecret    = "plaid-e2e-api-secret-2f6c1d"
	e2eVonageSecret   = "vonage-e2e-signature-secret-91ab"
)

// tokenKeyServer serves a JWKS at /certs and answers Plaid's
// /webhook_verification_key/get, counting what it serves.
type tokenKeyServer struct {
	*httptest.Server
	caFile string

	mu          sync.Mutex
	jwksFetches int
	plaidCalls  int
	jwks        []byte
	plaidKeys   map[string][]byte // kid → answer
}

func newTokenKeyServer(t *testing.T) *tokenKeyServer {
	ks := &tokenKeyServer{plaidKeys: map[string][]byte{}}
	ks.Server = httptest.NewTLSServer(http.HandlerFunc(ks.serve))
	t.Cleanup(ks.Close)
	ks.caFile = testtls.CAFile(t, ks.Server)
	return ks
}

func (ks *tokenKeyServer) serve(w http.ResponseWriter, r *http.Request) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	switch r.URL.Path {
	case "/certs":
		ks.jwksFetches++
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(ks.jwks)
	case "/webhook_verification_key/get":
		ks.plaidCalls++
		var q struct{ ClientID, Secret, KeyID string }
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &struct {
			ClientID *string `json:"client_id"`
			Secret   *string `json:"secret"`
			KeyID    *string `json:"key_id"`
		}{&q.ClientID, &q.Secret, &q.KeyID})
		answer, ok := ks.plaidKeys[q.KeyID]
		if !ok || q.ClientID != e2eClientID || q.Secret != e2ePlaidSecret {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error_code":"INVALID_API_KEYS"}`)
			return
		}
		w.Write(answer)
	default:
		http.NotFound(w, r)
	}
}

func (ks *tokenKeyServer) counts() (jwks, plaid int) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.jwksFetches, ks.plaidCalls
}

// tokenSetup is the gateway, its upstream and key server, and the keys
// Google and Plaid would sign with.
type tokenSetup struct {
	g       *gatewaytest.Gateway
	globals string
	wix     *rsa.PrivateKey
	up      *gatewaytest.Upstream
	ks      *tokenKeyServer
	google  *rsa.PrivateKey
	plaid   *ecdsa.PrivateKey
	keyFile string // the service account key file `sign` takes
}

const googleKid, plaidKid = "e2e-google-key-1", "e2e-plaid-key-1"

func startTokenGateway(t *testing.T) *tokenSetup {
	s := &tokenSetup{ks: newTokenKeyServer(t), up: gatewaytest.NewUpstream(t)}
	s.google, _ = rsa.GenerateKey(rand.Reader, 2048)
	s.plaid, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.ks.jwks, _ = json.Marshal(map[string]any{"keys": []any{jwktest.JWK(&s.google.PublicKey, googleKid)}})
	key := jwktest.JWK(&s.plaid.PublicKey, plaidKid)
	key["created_at"], key["expired_at"] = 1560466143, nil
	s.ks.plaidKeys[plaidKid], _ = json.Marshal(map[string]any{"key": key, "request_id": "e2e"})
	kf, _ := json.Marshal(map[string]string{"private_key": jwktest.PrivatePEM(s.google), "private_key_id": googleKid, "client_email": e2eServiceAccount})
	s.keyFile = string(kf)
	s.wix, _ = rsa.GenerateKey(rand.Reader, 2048)
	wixPub, _ := x509.MarshalPKIXPublicKey(&s.wix.PublicKey)
	wixFile := filepath.Join(t.TempDir(), "wix.pem")
	if err := os.WriteFile(wixFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: wixPub}), 0o600); err != nil {
		t.Fatal(err)
	}

	host := strings.TrimPrefix(s.ks.URL, "https://")
	globals := fmt.Sprintf(`webhook_gateway {
		key_fetch {
			allow %s
			tls_ca %s
		}
	}`, host, s.ks.caFile)
	site := fmt.Sprintf(`
	route /pubsub {
		webhook_gateway google_pubsub {
			service_account %s
			keys_url %s/certs
			log_body 4096
		}
		reverse_proxy %s
	}
	route /pubsub-aud {
		webhook_gateway pubsub {
			service_account %s
			audience my-audience
			keys_url %s/certs
		}
		reverse_proxy %s
	}
	route /plaid {
		webhook_gateway plaid {
			secret %s
			client_id %s
			keys_url %s
			log_body 4096
		}
		reverse_proxy %s
	}
	route /wix {
		webhook_gateway wix {
			secret {file.%s}
		}
		reverse_proxy %s
	}
	route /vonage {
		webhook_gateway vonage {
			secret %s
		}
		reverse_proxy %s
	}`, e2eServiceAccount, s.ks.URL, s.up.Addr(), e2eServiceAccount, s.ks.URL, s.up.Addr(),
		e2ePlaidSecret, e2eClientID, s.ks.URL, s.up.Addr(), wixFile, s.up.Addr(), e2eVonageSecret, s.up.Addr())
	s.globals = globals
	s.g = gatewaytest.Start(t, globals, site)
	return s
}

// pushBody is a Pub/Sub push body.
func pushBody(id string) string {
	return fmt.Sprintf(`{"message":{"attributes":{"k":"v"},"data":"aGVsbG8=","messageId":"%s","publishTime":"2026-12-01T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`, id)
}

// googleToken signs claims as Google would, with edit applied.
func (s *tokenSetup) googleToken(t *testing.T, url string, edit func(h, c map[string]any)) string {
	now := time.Now()
	h := map[string]any{"alg": "RS256", "kid": googleKid, "typ": "JWT"}
	c := map[string]any{"iss": "https://accounts.google.com", "aud": url, "email": e2eServiceAccount, "email_verified": true,
		"sub": "1", "azp": "1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(h, c)
	}
	return jwktest.Token(h, c, func(signed []byte) []byte {
		if h["alg"] == "HS256" {
			return hs256(s.ks.jwks, signed) // keyed with the public key set itself
		}
		if h["alg"] == "none" {
			return nil
		}
		return jwktest.RS256(s.google)(signed)
	})
}

func hs256(key, msg []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(msg)
	return mac.Sum(nil)
}

// TestTokenProvidersThroughCaddy: genuine Pub/Sub and Plaid deliveries
// are forwarded byte for byte; every forgery is refused before the
// upstream; one JWKS fetch serves many deliveries; Plaid's credentials
// never reach the log.
func TestTokenProvidersThroughCaddy(t *testing.T) {
	s := startTokenGateway(t)
	pushURL := s.g.URL + "/pubsub"

	t.Run("pubsub valid, signed by webhook-gateway sign's scheme", func(t *testing.T) {
		p, _ := provider.Lookup("google_pubsub")
		for i := range 20 {
			s.up.Reset()
			body := pushBody(fmt.Sprintf("m-%d", i))
			m := &provider.Message{Method: "POST", URL: pushURL, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
			if err := p.Scheme.Sign(s.keyFile, m); err != nil {
				t.Fatal(err)
			}
			resp, answer := post(t, s.g, "/pubsub", m.Header, body)
			if resp.StatusCode != http.StatusOK || string(answer) != "ok" {
				t.Fatalf("delivery %d: status %d %q", i, resp.StatusCode, answer)
			}
			got := s.up.Received()
			if len(got) != 1 || !bytes.Equal(got[0].Body, []byte(body)) {
				t.Fatalf("upstream got %d requests, want the body byte for byte", len(got))
			}
			// The message id is not signed: the app is not told it is.
			checkHeader(t, got[0].Header, "Webhook-Gateway-Event-Id", "")
		}
		if jwks, _ := s.ks.counts(); jwks != 1 {
			t.Fatalf("20 deliveries made %d JWKS fetches, want 1", jwks)
		}
	})

	t.Run("pubsub configured audience", func(t *testing.T) {
		s.up.Reset()
		h := http.Header{"Authorization": {"Bearer " + s.googleToken(t, "my-audience", nil)}}
		if resp, answer := post(t, s.g, "/pubsub-aud", h, pushBody("a-1")); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %q", resp.StatusCode, answer)
		}
	})

	for _, c := range []struct {
		name   string
		edit   func(h, c map[string]any)
		status int
		reason string
	}{
		{"wrong audience", func(h, c map[string]any) { c["aud"] = "https://elsewhere.example.com/pubsub" }, 401, "signature_mismatch"},
		{"wrong service account", func(h, c map[string]any) { c["email"] = "other@e2e-project.iam.gserviceaccount.com" }, 401, "sender_not_allowed"},
		{"email not verified", func(h, c map[string]any) { c["email_verified"] = false }, 401, "sender_not_allowed"},
		{"expired", func(h, c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
		}, 401, "timestamp_too_old"},
		{"alg none", func(h, c map[string]any) { h["alg"] = "none" }, 401, "malformed_signature"},
		{"HS256 keyed with the JWKS", func(h, c map[string]any) { h["alg"] = "HS256" }, 401, "malformed_signature"},
		{"unknown kid", func(h, c map[string]any) { h["kid"] = "forged-kid" }, 401, "signature_mismatch"},
	} {
		t.Run("pubsub "+c.name, func(t *testing.T) {
			s.up.Reset()
			h := http.Header{"Authorization": {"Bearer " + s.googleToken(t, pushURL, c.edit)}}
			resp, answer := post(t, s.g, "/pubsub", h, pushBody("f-1"))
			if resp.StatusCode != c.status || !strings.Contains(string(answer), c.reason) {
				t.Fatalf("status %d %q, want %d %s", resp.StatusCode, answer, c.status, c.reason)
			}
			if s.up.Count() != 0 {
				t.Fatal("a forgery reached the upstream")
			}
		})
	}

	plaidBody := `{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"item-1"}`
	plaidSigned := func(t *testing.T, body string) http.Header {
		sum := sha256.Sum256([]byte(body))
		tok := jwktest.Token(map[string]any{"alg": "ES256", "kid": plaidKid, "typ": "JWT"},
			map[string]any{"iat": time.Now().Unix(), "request_body_sha256": fmt.Sprintf("%x", sum)},
			jwktest.ES256(s.plaid))
		return http.Header{"Plaid-Verification": {tok}}
	}
	t.Run("plaid valid", func(t *testing.T) {
		for range 5 {
			s.up.Reset()
			resp, answer := post(t, s.g, "/plaid", plaidSigned(t, plaidBody), plaidBody)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d %q", resp.StatusCode, answer)
			}
			if got := s.up.Received(); len(got) != 1 || string(got[0].Body) != plaidBody {
				t.Fatalf("upstream got %v", got)
			}
		}
		if _, calls := s.ks.counts(); calls != 1 {
			t.Fatalf("5 deliveries made %d key API calls, want 1", calls)
		}
	})
	t.Run("plaid body changed", func(t *testing.T) {
		s.up.Reset()
		h := plaidSigned(t, plaidBody)
		changed := strings.Replace(plaidBody, "item-1", "item-2", 1)
		resp, answer := post(t, s.g, "/plaid", h, changed)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(answer), "signature_mismatch") || s.up.Count() != 0 {
			t.Fatalf("status %d %q, upstream %d", resp.StatusCode, answer, s.up.Count())
		}
	})
	t.Run("plaid key the API does not give", func(t *testing.T) {
		s.up.Reset()
		h := plaidSigned(t, plaidBody)
		forged := jwktest.Token(map[string]any{"alg": "ES256", "kid": "rotated-away"}, map[string]any{"iat": time.Now().Unix()}, jwktest.ES256(s.plaid))
		h.Set("Plaid-Verification", forged)
		resp, answer := post(t, s.g, "/plaid", h, plaidBody)
		// Plaid may be failing: a retry later may succeed.
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(answer), "key_unavailable") || s.up.Count() != 0 {
			t.Fatalf("status %d %q, upstream %d", resp.StatusCode, answer, s.up.Count())
		}
	})
	t.Run("plaid credentials never logged", func(t *testing.T) {
		logs, err := os.ReadFile(s.g.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(logs, []byte(e2ePlaidSecret)) {
			t.Fatal("the Plaid API secret appears in the log")
		}
		if !bytes.Contains(logs, []byte("plaid")) {
			t.Fatal("the log holds no plaid line: the check above proves nothing")
		}
	})

	// The secret-keyed token providers need no key fetch.
	for _, c := range []struct {
		name, secret string
		alter        func(h http.Header, body string) (http.Header, string)
		want         int
	}{
		{"wix", jwktest.PrivatePEM(s.wix), nil, http.StatusOK},
		{"wix", jwktest.PrivatePEM(s.wix), func(h http.Header, body string) (http.Header, string) {
			return h, body[:len(body)-2] + "AA" // the token's signature
		}, http.StatusUnauthorized},
		{"vonage", e2eVonageSecret, nil, http.StatusOK},
		{"vonage", "another-secret-entirely", nil, http.StatusUnauthorized},
	} {
		t.Run(fmt.Sprintf("%s %d", c.name, c.want), func(t *testing.T) {
			s.up.Reset()
			p, _ := provider.Lookup(c.name)
			m := &provider.Message{Method: "POST", URL: s.g.URL + "/" + c.name, Timestamp: time.Now(), Body: []byte(`{"message_uuid":"m-1","status":"delivered"}`), Header: http.Header{}}
			if err := p.Scheme.Sign(c.secret, m); err != nil {
				t.Fatal(err)
			}
			h, body := m.Header, string(m.Body)
			if c.alter != nil {
				h, body = c.alter(h, body)
			}
			resp, answer := post(t, s.g, "/"+c.name, h, body)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, answer, c.want)
			}
			got := s.up.Received()
			if c.want != http.StatusOK {
				if len(got) != 0 {
					t.Fatal("a forgery reached the upstream")
				}
				return
			}
			if len(got) != 1 || string(got[0].Body) != body {
				t.Fatalf("upstream got %d requests, want the body byte for byte", len(got))
			}
		})
	}

	t.Run("pubsub without service_account is refused at load", func(t *testing.T) {
		err := s.g.TryReload(s.globals, fmt.Sprintf(`route /x {
			webhook_gateway google_pubsub {
				keys_url %s/certs
			}
			respond ok
		}`, s.ks.URL))
		if err == nil || !strings.Contains(err.Error(), "service_account is required") {
			t.Fatalf("loaded, or refused for another reason: %v", err)
		}
	})
}
