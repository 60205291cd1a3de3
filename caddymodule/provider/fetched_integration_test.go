package provider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/keyfetch"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/jwktest"
	"github.com/webrev/webhook-gateway/internal/testtls"
)

// The token verifiers over the gateway's real key fetcher and a real
// TLS key server, admitted by an allow entry naming its host and port.

const (
	itServiceAccount = "push@it-project.iam.gserviceaccount.com"
	itClientID       = "it-client"
	itSecret         = "it-plaid-api-secret-7c1e"
)

type itServer struct {
	*httptest.Server
	hits atomic.Int64
	jwks []byte
	// plaid answers key ids with these answers.
	plaid map[string][]byte
}

func newITServer(t *testing.T) (*itServer, *keyfetch.Fetcher) {
	s := &itServer{plaid: map[string][]byte{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Path == "/certs" {
			w.Write(s.jwks)
			return
		}
		var q struct {
			ClientID string `json:"client_id"`
			Secret   string `json:"secret"`
			KeyID    string `json:"key_id"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &q)
		if a, ok := s.plaid[q.KeyID]; ok && q.ClientID == itClientID && q.Secret == itSecret {
			w.Write(a)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(s.Close)
	ca := testtls.CAFile(t, s.Server)
	f, err := keyfetch.New(keyfetch.Config{Allow: []string{strings.TrimPrefix(s.URL, "https://")}, TLSCA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return s, f
}

// plaidJWK is a key as Plaid's API answers it.
func plaidJWK(pub *ecdsa.PublicKey, kid string) map[string]any {
	k := jwktest.JWK(pub, kid)
	k["created_at"], k["expired_at"] = 1560466143, nil
	return k
}

func reasonOf(err error) provider.Reason {
	var perr *provider.Error
	if errors.As(err, &perr) {
		return perr.Reason
	}
	return ""
}

func TestGooglePushOverKeyFetch(t *testing.T) {
	s, f := newITServer(t)
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	s.jwks, _ = json.Marshal(map[string]any{"keys": []any{jwktest.JWK(&k.PublicKey, "g1")}})
	kf, _ := json.Marshal(map[string]string{"private_key": jwktest.PrivatePEM(k), "private_key_id": "g1", "client_email": itServiceAccount})
	forged, _ := json.Marshal(map[string]string{"private_key": jwktest.PrivatePEM(k), "private_key_id": "forged", "client_email": itServiceAccount})
	p, _ := provider.Lookup("google_pubsub")
	v, err := p.NewVerifier(provider.VerifierConfig{Keys: f, KeysURL: s.URL + "/certs", ServiceAccount: itServiceAccount})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(keyFile []byte) error {
		m := &provider.Message{Method: "POST", URL: "https://hooks.example.com/pubsub", Timestamp: time.Now(), Body: []byte(`{"message":{"messageId":"1"}}`), Header: http.Header{}}
		if err := p.Scheme.Sign(string(keyFile), m); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(&provider.Request{Method: "POST", URL: m.URL, Header: m.Header, Body: m.Body, Now: time.Now()})
		return err
	}
	for i := range 100 {
		if err := deliver(kf); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("100 deliveries made %d fetches, want 1", n)
	}
	// Forged key ids find the set too fresh to fetch again.
	for range 50 {
		if r := reasonOf(deliver(forged)); r != provider.ReasonSignatureMismatch {
			t.Fatalf("forged kid: %s", r)
		}
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("50 forged key ids made %d more fetches, want none", n-1)
	}
	// A keys_url the allow list does not name is refused unfetched.
	other, err := p.NewVerifier(provider.VerifierConfig{Keys: f, KeysURL: "https://127.0.0.2:1/certs", ServiceAccount: itServiceAccount})
	if err != nil {
		t.Fatal(err)
	}
	m := &provider.Message{Method: "POST", URL: "https://hooks.example.com/pubsub", Timestamp: time.Now(), Body: []byte(`{}`), Header: http.Header{}}
	p.Scheme.Sign(string(kf), m)
	_, err = other.Verify(&provider.Request{Method: "POST", URL: m.URL, Header: m.Header, Body: m.Body, Now: time.Now()})
	if r := reasonOf(err); r != provider.ReasonKeyNotAllowed {
		t.Fatalf("keys_url outside the allow list: %v", err)
	}
}

func TestPlaidOverKeyFetch(t *testing.T) {
	s, f := newITServer(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, _ := provider.Lookup("plaid")
	body := []byte(`{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"i-1"}`)
	m := &provider.Message{Method: "POST", Timestamp: time.Now(), Body: body, Header: http.Header{}}
	if err := p.Scheme.Sign(jwktest.PrivatePEM(k), m); err != nil {
		t.Fatal(err)
	}
	// The signer's kid is the key's thumbprint: serve the key under it.
	tok := m.Header.Get("Plaid-Verification")
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var head struct{ Kid string }
	json.Unmarshal(h, &head)
	s.plaid[head.Kid], _ = json.Marshal(map[string]any{"key": plaidJWK(&k.PublicKey, head.Kid), "request_id": "r"})

	for _, c := range []struct {
		name    string
		secrets []string
		want    provider.Reason
	}{
		{"valid", []string{itSecret}, ""},
		{"rotation", []string{"old-secret-no-longer-valid", itSecret}, ""},
		{"wrong secret", []string{"wrong-secret-abcdef"}, provider.ReasonKeyUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := p.NewVerifier(provider.VerifierConfig{Keys: f, KeysURL: s.URL, ClientID: itClientID, Secrets: c.secrets})
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				_, err = v.Verify(&provider.Request{Method: "POST", Header: m.Header, Body: body, Now: time.Now()})
				if reasonOf(err) != c.want || (c.want == "" && err != nil) {
					t.Fatalf("got %v, want %q", err, c.want)
				}
				if err != nil && strings.Contains(err.Error(), c.secrets[0]) {
					t.Fatalf("refusal %q shows the API secret", err)
				}
			}
		})
	}
	// One call per (secret, key id), whatever the number of deliveries;
	// a failed one is kept for a while, not retried per delivery.
	if n := s.hits.Load(); n > 3 {
		t.Fatalf("30 deliveries made %d key API calls, want at most 3", n)
	}
}

// TestPlaidForgedKeyIDsOverKeyFetch: every forged key id is a call to
// Plaid's API with the account's credentials; the fetcher's pace per
// provider (FetchBurst at once, then one per FetchInterval) is what
// bounds them, and a forged id repeated is answered from its kept
// failure.
func TestPlaidForgedKeyIDsOverKeyFetch(t *testing.T) {
	s, f := newITServer(t)
	p, _ := provider.Lookup("plaid")
	v, err := p.NewVerifier(provider.VerifierConfig{Keys: f, KeysURL: s.URL, ClientID: itClientID, Secrets: []string{itSecret}})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	deliver := func(kid string) error {
		tok := jwktest.Token(map[string]any{"alg": "ES256", "kid": kid}, map[string]any{"iat": time.Now().Unix()}, jwktest.ES256(k))
		_, err := v.Verify(&provider.Request{Method: "POST", Header: http.Header{"Plaid-Verification": {tok}}, Body: []byte(`{}`), Now: time.Now()})
		return err
	}
	start := time.Now()
	for i := range 100 {
		for range 3 {
			if r := reasonOf(deliver(fmt.Sprintf("forged-%d", i))); r != provider.ReasonKeyUnavailable {
				t.Fatalf("forged kid %d: %q", i, r)
			}
		}
	}
	// The pace admits one more fetch per interval the loop took.
	limit := int64(keyfetch.FetchBurst) + int64(time.Since(start)/keyfetch.FetchInterval) + 1
	if n := s.hits.Load(); n > limit || n < keyfetch.FetchBurst {
		t.Fatalf("300 deliveries with 100 forged key ids made %d key API calls, want %d to %d", n, keyfetch.FetchBurst, limit)
	}
}
