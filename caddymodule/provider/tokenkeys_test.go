package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/providertest"
)

// The test stand-ins for the services that hand out keys: a KeySource
// that answers as Google's JWKS and Plaid's key API would, from the key
// material the test generated.

const (
	testServiceAccount = "push@test-project.iam.gserviceaccount.com"
	testClientID       = "plaid-client-1"
	// testPlaidSecret prefixes a test Plaid API secret, which carries
	// the public key the test key API answers with.
	testPlaidSecret = "plaid-secret-"
)

// tokenConfig is a route's configuration for a key pair: the KeySource
// serves every fetched-key provider from the route's own secrets.
func tokenConfig(kp keyPair) VerifierConfig {
	cfg := VerifierConfig{WebhookID: "WH-1", ServiceAccount: testServiceAccount, ClientID: testClientID}
	return withSecrets(cfg, kp.verify)
}

// withSecrets is cfg with other secrets, which its KeySource serves.
func withSecrets(cfg VerifierConfig, secrets ...string) VerifierConfig {
	cfg.Secrets = secrets
	cfg.Keys = &testKeySource{jwks: secrets}
	return cfg
}

// tokenKeyPair makes key material for the token schemes: a service
// account key file and its public key (Google), a P-256 private key and
// an API secret that names its public key (Plaid), an RSA private and
// public key (a body JWT).
func tokenKeyPair(t testing.TB, s Scheme) keyPair {
	t.Helper()
	switch s.(type) {
	case *GooglePush:
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		return keyPair{"rsa-jwks", googleKeyFileJSON(t, k, testServiceAccount), publicPEM(t, &k.PublicKey)}
	case *Plaid:
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		return keyPair{"es256-api", privatePEM(t, k), testPlaidSecret + hex.EncodeToString(der)}
	case *BodyJWT:
		kp := providertest.RSA()
		return keyPair{kp.Name, kp.Sign, kp.Verify}
	}
	t.Fatalf("no token key for %T", s)
	return keyPair{}
}

func googleKeyFileJSON(t testing.TB, k *rsa.PrivateKey, email string) string {
	b, err := json.Marshal(googleKeyFile{PrivateKey: privatePEM(t, k), ClientEmail: email, ClientID: "1234567890"})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func privatePEM(t testing.TB, k crypto.Signer) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func publicPEM(t testing.TB, k crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// testKeySource answers a GET with a JWKS of the public keys in jwks
// (each with its thumbprint as kid), and a POST as Plaid's key API: the
// key whose thumbprint is key_id, when the secret names that key and
// client_id is testClientID. It counts its fetches.
type testKeySource struct {
	jwks    []string
	fetches atomic.Int64
	// expired, when set, marks Plaid's keys as expired.
	expired bool
}

var errTestKeyUnknown = errors.New("test key API: no such key for these credentials")

func (s *testKeySource) Fetch(ctx context.Context, req KeyRequest) (KeyDocument, error) {
	s.fetches.Add(1)
	var (
		body []byte
		err  error
	)
	if req.Method == "POST" {
		body, err = s.plaidAnswer(req.Body)
	} else {
		body, err = testJWKS(s.jwks)
	}
	return KeyDocument{Body: body, Fetched: time.Now()}, err
}

func (s *testKeySource) plaidAnswer(reqBody []byte) ([]byte, error) {
	var q struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"secret"`
		KeyID    string `json:"key_id"`
	}
	if err := json.Unmarshal(reqBody, &q); err != nil || q.ClientID != testClientID {
		return nil, errTestKeyUnknown
	}
	der, err := hex.DecodeString(strings.TrimPrefix(q.Secret, testPlaidSecret))
	if err != nil {
		return nil, errTestKeyUnknown
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errTestKeyUnknown
	}
	jwk, err := testJWK(pub)
	if err != nil || jwk["kid"] != q.KeyID {
		return nil, errTestKeyUnknown
	}
	key := map[string]any{"created_at": 1560466143, "expired_at": nil}
	for k, v := range jwk {
		key[k] = v
	}
	if s.expired {
		key["expired_at"] = 1560466150
	}
	return json.Marshal(map[string]any{"key": key, "request_id": "req-1"})
}

// testJWKS is the key set of the public keys among secrets.
func testJWKS(secrets []string) ([]byte, error) {
	var keys []map[string]string
	for _, s := range secrets {
		pub, err := parsePublicKey(RSASHA256, s)
		if err != nil {
			continue
		}
		jwk, err := testJWK(pub)
		if err != nil {
			return nil, err
		}
		keys = append(keys, jwk)
	}
	return json.Marshal(map[string]any{"keys": keys})
}

// testJWK is a public key's JWK with its thumbprint as kid.
func testJWK(pub crypto.PublicKey) (map[string]string, error) {
	jwk, err := publicJWK(pub)
	if err != nil {
		return nil, err
	}
	kid, err := jwkThumbprint(pub)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	jwk["kid"] = kid
	return jwk, nil
}
