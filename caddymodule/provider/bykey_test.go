package provider

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
)

// TestStandardWebhooksAmbiguousKey: a secret that reads as an Ed25519
// public key and carries no prefix to say which it is must not become an
// HMAC key that anyone holding the public key could sign with.
func TestStandardWebhooksAmbiguousKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	b64 := base64.StdEncoding.EncodeToString(pub)
	raw := make([]byte, 24)
	rand.Read(raw)
	hmacSecret := base64.StdEncoding.EncodeToString(raw)
	cases := []struct {
		name    string
		secrets []string
		wantErr string // empty: accepted
	}{
		{"base64 public key", []string{b64}, "secret #1 "},
		{"unpadded base64 public key", []string{strings.TrimRight(b64, "=")}, "secret #1 "},
		{"hex public key", []string{hex.EncodeToString(pub)}, "secret #1 "},
		{"pem public key", []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}, "secret #1 "},
		{"second of two", []string{"whsec_" + hmacSecret, b64}, "secret #2 "},
		{"whpk_ public key", []string{"whpk_" + b64}, ""},
		{"whsec_ 32-byte secret", []string{"whsec_" + b64}, ""},
		{"unprefixed 24-byte secret", []string{hmacSecret}, ""},
	}
	p := mustLookup("standard_webhooks")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.NewVerifier(VerifierConfig{Secrets: c.secrets})
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantErr == "":
			case err == nil:
				t.Fatal("an ambiguous key was accepted")
			case !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "whpk_"):
				t.Fatalf("error %q does not name the secret and the prefix to use", err)
			}
			for _, s := range c.secrets {
				if err != nil && strings.Contains(err.Error(), strings.TrimSpace(s)[:16]) {
					t.Fatalf("error %q shows the secret", err)
				}
			}
		})
	}
}
