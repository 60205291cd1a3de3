package provider

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// fuzzTokenSetup signs one genuine Google push and one genuine Plaid
// delivery with fixed keys, and builds their verifiers.
func fuzzTokenSetup(f *testing.F) (push, plaid *Request, pushV, plaidV Verifier) {
	gkp, pkp := tokenKeyPair(f, &GooglePush{}), tokenKeyPair(f, &Plaid{})
	body := []byte(`{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"evt_1"}`)
	sign := func(name, secret string) *Request {
		m := Message{Method: "POST", URL: pushURL, Timestamp: fuzzNow, Body: body, Header: http.Header{}}
		if err := mustLookup(name).Scheme.Sign(secret, &m); err != nil {
			f.Fatal(err)
		}
		return &Request{Method: "POST", URL: pushURL, Header: m.Header, Body: m.Body, Now: fuzzNow}
	}
	build := func(name string, kp keyPair) Verifier {
		v, err := mustLookup(name).NewVerifier(tokenConfig(kp))
		if err != nil {
			f.Fatal(err)
		}
		return v
	}
	return sign("google_pubsub", gkp.sign), sign("plaid", pkp.sign), build("google_pubsub", gkp), build("plaid", pkp)
}

// signedPart is a token without its signature.
func signedPart(tok string) string {
	tok = strings.TrimSpace(tok)
	return tok[:max(strings.LastIndex(tok, "."), 0)]
}

// FuzzJWS fuzzes the compact JWS parser, and the Google push and Plaid
// verifiers behind it: only the genuine signed content may verify.
func FuzzJWS(f *testing.F) {
	push, plaid, pushV, plaidV := fuzzTokenSetup(f)
	pushTok := strings.TrimPrefix(push.Header.Get("Authorization"), "Bearer ")
	plaidTok := plaid.Header.Get(plaidHeader)
	f.Add(pushTok, plaid.Body)
	f.Add(plaidTok, plaid.Body)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20ifQ.", plaid.Body)
	f.Add("eyJhbGciOiJIUzI1NiIsImtpZCI6ImsifQ.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", []byte("{}"))
	f.Add("eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYjY0Il19.e30.", []byte{})
	f.Add("a.b.c.d", []byte{})
	f.Fuzz(func(t *testing.T, token string, body []byte) {
		if tok, err := parseJWS(token, algRS256, algES256, algHS256); err == nil {
			if !strings.HasPrefix(token, tok.signed+".") || !signatureSized(tok.alg, len(tok.sig)) || len(tok.kid) > maxKeyID {
				t.Fatalf("parsed %q into %+v", token, tok)
			}
		}
		r := Request{Method: "POST", URL: pushURL, Header: http.Header{"Authorization": {"Bearer " + token}}, Body: body, Now: fuzzNow}
		if _, err := pushV.Verify(&r); err == nil && signedPart(token) != signedPart(pushTok) {
			t.Fatalf("google push accepted a forged token %q", token)
		}
		r.Header = http.Header{plaidHeader: {token}}
		if _, err := plaidV.Verify(&r); err == nil && (signedPart(token) != signedPart(plaidTok) || !bytes.Equal(body, plaid.Body)) {
			t.Fatalf("plaid accepted a forged token %q for body %q", token, body)
		}
	})
}

// FuzzJWK fuzzes the JWK, JWKS and Plaid key parsers: any key accepted
// is an RSA key of the bounded size or a P-256 point, and reads back the
// same from its own JWK.
func FuzzJWK(f *testing.F) {
	for _, s := range []Scheme{&GooglePush{}, &BodyJWT{}} {
		set, _ := testJWKS([]string{tokenKeyPair(f, s).verify})
		f.Add(set)
	}
	src := &testKeySource{}
	pkp := tokenKeyPair(f, &Plaid{})
	key, _ := parsePrivateKey(ECDSAP256, pkp.sign)
	kid, _ := jwkThumbprint(key.Public())
	q, _ := json.Marshal(map[string]string{"client_id": testClientID, "secret": pkp.verify, "key_id": kid})
	answer, _ := src.plaidAnswer(q)
	f.Add(answer)
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if k, err := parseJWK(raw); err == nil {
			checkKeyRoundTrip(t, k)
		}
		if set, err := parseJWKS(raw); err == nil {
			if len(set) == 0 || len(set) > maxJWKSKeys {
				t.Fatalf("a set of %d keys", len(set))
			}
			for kid, k := range set {
				if kid == "" || kid != k.kid {
					t.Fatalf("key %q filed under %q", k.kid, kid)
				}
				checkKeyRoundTrip(t, k)
			}
		}
		if k, err := parsePlaidKey(raw); err == nil && k.key.alg != algES256 {
			t.Fatalf("plaid key of alg %s", k.key.alg)
		}
	})
}

func checkKeyRoundTrip(t *testing.T, k jwkKey) {
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		if bits := key.N.BitLen(); k.alg != algRS256 || bits < minRSABits || bits > maxRSABits {
			t.Fatalf("accepted an RSA key of %d bits for %s", bits, k.alg)
		}
	case *ecdsa.PublicKey:
		if k.alg != algES256 || key.Curve != elliptic.P256() {
			t.Fatalf("accepted an EC key for %s", k.alg)
		}
	default:
		t.Fatalf("accepted a key of type %T", k.key)
	}
	m, err := publicJWK(k.key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	again, err := parseJWK(b)
	if err != nil || !again.key.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.key) {
		t.Fatalf("key does not read back from its own JWK: %v", err)
	}
}
