package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/webrev/webhook-gateway/internal/vectors"
)

// TestVectors runs every vector through its provider's verifier with the
// vector's clock; a vector whose provider is not registered fails.
func TestVectors(t *testing.T) {
	vs, err := vectors.Load()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		t.Run(v.Name(i), func(t *testing.T) {
			p, ok := Lookup(v.ProviderName())
			if !ok {
				t.Fatalf("provider %q (from %q) is not registered", v.ProviderName(), v.Provider)
			}
			if v.IsHandshake() {
				testHandshakeVector(t, p, v)
				return
			}
			ver, err := p.NewVerifier(vectorConfig(v))
			if err != nil {
				t.Fatalf("building verifier: %v", err)
			}
			_, err = ver.Verify(vectorRequest(v))
			if v.ExpectedValid && err != nil {
				t.Fatalf("want valid, got %v (notes: %s)", err, v.Notes)
			}
			if !v.ExpectedValid {
				var perr *Error
				if !errors.As(err, &perr) {
					t.Fatalf("want a refusal, got %v (notes: %s)", err, v.Notes)
				}
			}
		})
	}
}

// vectorConfig maps a vector's key material onto a route's settings:
// PayPal's vectors carry the certificate apart and the webhook id as
// their secret.
func vectorConfig(v vectors.Vector) VerifierConfig {
	if v.PublicCertPEM != "" {
		return VerifierConfig{Secrets: []string{v.PublicCertPEM}, WebhookID: v.Secret}
	}
	secrets := []string{v.Secret}
	if v.SecondarySecret != "" {
		secrets = append(secrets, v.SecondarySecret)
	}
	return VerifierConfig{Secrets: secrets}
}

func vectorRequest(v vectors.Vector) *Request {
	return &Request{
		Method: orDefault(v.Method, "POST"), URL: v.URL, Header: v.Header(),
		Body: []byte(v.Body), Now: v.Clock(),
	}
}

// testHandshakeVector signs the vector's challenge as the provider would
// (the vector holds only the body), then checks the answer after
// verification against the documented computation.
func testHandshakeVector(t *testing.T, p *Provider, v vectors.Vector) {
	r := vectorRequest(v)
	m := &Message{Method: r.Method, URL: r.URL, Timestamp: r.Now, Body: r.Body, Header: r.Header}
	if err := p.Scheme.Sign(v.Secret, m); err != nil {
		t.Fatal(err)
	}
	cfg := HandshakeConfig{Secrets: []string{v.Secret}}
	if _, answered := p.Handshake.BeforeVerify(r, cfg); answered {
		t.Fatal("a challenge answered with the secret must wait for verification")
	}
	ver, err := p.NewVerifier(vectorConfig(v))
	if err != nil {
		t.Fatal(err)
	}
	verified, err := ver.Verify(r)
	if err != nil {
		t.Fatalf("signed challenge refused: %v", err)
	}
	a, ok := p.Handshake.AfterVerify(r, verified, cfg)
	if !ok || a.Status != 200 {
		t.Fatalf("challenge not answered: %+v", a)
	}
	plain := gjson.GetBytes(r.Body, "payload.plainToken").String()
	mac := hmac.New(sha256.New, []byte(v.Secret))
	mac.Write([]byte(plain))
	if got := gjson.GetBytes(a.Body, "encryptedToken").String(); got != hex.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("encryptedToken = %q", got)
	}
	if got := gjson.GetBytes(a.Body, "plainToken").String(); got != plain {
		t.Fatalf("plainToken = %q, want %q", got, plain)
	}
}
