package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/jwktest"
)

func signedWith(t *testing.T, alg string, key any) func([]byte) []byte {
	return func(b []byte) []byte {
		sig, err := jwsSignature(alg, key, b)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	var perr *Error
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	if !errors.As(err, &perr) || perr.Reason != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

const pushURL = "https://hooks.example.com/pubsub"

func TestGooglePush(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	kid, _ := jwkThumbprint(&k.PublicKey)
	otherKid, _ := jwkThumbprint(&other.PublicKey)
	header := map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": "https://accounts.google.com", "aud": pushURL, "azp": "1", "sub": "1",
			"email": testServiceAccount, "email_verified": true,
			"iat": testNow.Add(-10 * time.Minute).Unix(), "exp": testNow.Add(50 * time.Minute).Unix(),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	rs := signedWith(t, algRS256, k)
	// Algorithm confusion: an HMAC keyed with what a verifier might
	// hold for the RSA key (its PEM, its modulus).
	pemHMAC := signedWith(t, algHS256, []byte(publicPEM(t, &k.PublicKey)))
	modHMAC := signedWith(t, algHS256, k.N.Bytes())
	cases := []struct {
		name   string
		header map[string]any
		claims map[string]any
		sign   func([]byte) []byte
		auth   string // replaces "Bearer <token>" when set
		cfg    func(*VerifierConfig)
		want   Reason
	}{
		{name: "valid", header: header, claims: claims(nil), sign: rs},
		{name: "plain issuer", header: header, claims: claims(func(c map[string]any) { c["iss"] = "accounts.google.com" }), sign: rs},
		{name: "configured audience", header: header, claims: claims(func(c map[string]any) { c["aud"] = "my-audience" }), sign: rs,
			cfg: func(c *VerifierConfig) { c.Audience = "my-audience" }},
		{name: "wrong audience", header: header, claims: claims(func(c map[string]any) { c["aud"] = "https://other.example.com/" }), sign: rs, want: ReasonSignatureMismatch},
		{name: "URL audience when one is configured", header: header, claims: claims(nil), sign: rs,
			cfg: func(c *VerifierConfig) { c.Audience = "my-audience" }, want: ReasonSignatureMismatch},
		{name: "other issuer", header: header, claims: claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), sign: rs, want: ReasonSignatureMismatch},
		{name: "other service account", header: header, claims: claims(func(c map[string]any) { c["email"] = "x@evil.iam.gserviceaccount.com" }), sign: rs, want: ReasonNotAllowed},
		{name: "email not verified", header: header, claims: claims(func(c map[string]any) { c["email_verified"] = false }), sign: rs, want: ReasonNotAllowed},
		{name: "email_verified a string", header: header, claims: claims(func(c map[string]any) { c["email_verified"] = "true" }), sign: rs, want: ReasonNotAllowed},
		{name: "expired", header: header, claims: claims(func(c map[string]any) {
			c["iat"], c["exp"] = testNow.Add(-3*time.Hour).Unix(), testNow.Add(-2*time.Hour).Unix()
		}), sign: rs, want: ReasonTimestampTooOld},
		{name: "expired within its hour", header: header, claims: claims(func(c map[string]any) {
			c["exp"] = testNow.Add(-2 * time.Minute).Unix()
		}), sign: rs, cfg: func(c *VerifierConfig) { c.Tolerance = time.Minute }, want: ReasonTimestampTooOld},
		{name: "no exp", header: header, claims: claims(func(c map[string]any) { delete(c, "exp") }), sign: rs, want: ReasonMissingTimestamp},
		// The token is all that authenticates a push (the body is
		// unsigned): with the tolerance off it still expires.
		{name: "expired, tolerance off", header: header, claims: claims(func(c map[string]any) {
			c["iat"], c["exp"] = testNow.Add(-50*time.Hour).Unix(), testNow.Add(-49*time.Hour).Unix()
		}), sign: rs, cfg: func(c *VerifierConfig) { c.Tolerance = -1 }, want: ReasonTimestampTooOld},
		{name: "no exp, tolerance off", header: header, claims: claims(func(c map[string]any) { delete(c, "exp") }), sign: rs,
			cfg: func(c *VerifierConfig) { c.Tolerance = -1 }, want: ReasonMissingTimestamp},
		{name: "old iat, tolerance off", header: header, claims: claims(func(c map[string]any) { c["iat"] = testNow.Add(-50 * time.Hour).Unix() }), sign: rs,
			cfg: func(c *VerifierConfig) { c.Tolerance = -1 }},
		{name: "issued in the future", header: header, claims: claims(func(c map[string]any) { c["iat"] = testNow.Add(2 * time.Hour).Unix() }), sign: rs, want: ReasonTimestampInFuture},
		{name: "issued six minutes ahead", header: header, claims: claims(func(c map[string]any) { c["iat"] = testNow.Add(6 * time.Minute).Unix() }), sign: rs, want: ReasonTimestampInFuture},
		{name: "issued a minute ahead", header: header, claims: claims(func(c map[string]any) { c["iat"] = testNow.Add(time.Minute).Unix() }), sign: rs},
		{name: "alg none", header: map[string]any{"alg": "none", "kid": kid}, claims: claims(nil), sign: func([]byte) []byte { return nil }, want: ReasonMalformedSignature},
		{name: "HS256 keyed with the PEM", header: map[string]any{"alg": "HS256", "kid": kid}, claims: claims(nil), sign: pemHMAC, want: ReasonMalformedSignature},
		{name: "HS256 keyed with the modulus", header: map[string]any{"alg": "HS256", "kid": kid}, claims: claims(nil), sign: modHMAC, want: ReasonMalformedSignature},
		{name: "ES256", header: map[string]any{"alg": "ES256", "kid": kid}, claims: claims(nil), sign: func([]byte) []byte { return make([]byte, 64) }, want: ReasonMalformedSignature},
		{name: "no kid", header: map[string]any{"alg": "RS256"}, claims: claims(nil), sign: rs, want: ReasonMalformedSignature},
		{name: "kid not a string", header: map[string]any{"alg": "RS256", "kid": 7}, claims: claims(nil), sign: rs, want: ReasonMalformedSignature},
		{name: "critical extension", header: map[string]any{"alg": "RS256", "kid": kid, "crit": []string{"b64"}}, claims: claims(nil), sign: rs, want: ReasonMalformedSignature},
		{name: "unknown kid", header: map[string]any{"alg": "RS256", "kid": "not-a-google-key"}, claims: claims(nil), sign: rs, want: ReasonSignatureMismatch},
		{name: "signed by a key of the set under another kid", header: map[string]any{"alg": "RS256", "kid": otherKid}, claims: claims(nil), sign: rs, want: ReasonSignatureMismatch},
		{name: "signed by another key", header: header, claims: claims(nil), sign: signedWith(t, algRS256, other), want: ReasonSignatureMismatch},
		{name: "not Bearer", auth: "Basic dXNlcjpwYXNz", want: ReasonMalformedSignature},
		{name: "missing", auth: " ", want: ReasonMissingSignature},
	}
	p := mustLookup("google_pubsub")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &testKeySource{jwks: []string{publicPEM(t, &k.PublicKey), publicPEM(t, &other.PublicKey)}}
			cfg := VerifierConfig{Keys: src, ServiceAccount: testServiceAccount}
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			v, err := p.NewVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			auth := c.auth
			if auth == "" {
				auth = "Bearer " + jwktest.Token(c.header, c.claims, c.sign)
			}
			r := &Request{Method: "POST", URL: pushURL, Header: http.Header{"Authorization": {auth}}, Body: []byte(`{"message":{"messageId":"1"}}`), Now: testNow}
			got, err := v.Verify(r)
			wantReason(t, err, c.want)
			if err == nil && (got.Body != BodyNone || !got.Timestamp.Equal(time.Unix(c.claims["iat"].(int64), 0))) {
				t.Fatalf("verified %+v: the body is never signed, the time is iat", got)
			}
			if id, signed := Identify(p.EventID, r, got); err == nil && (id != "1" || signed) {
				t.Fatalf("event id %q signed=%v: the message id is not signed", id, signed)
			}
			if c.name == "unknown kid" && src.fetches.Load() != 2 {
				t.Fatalf("an unknown kid made %d fetches, want the cached set and one refresh", src.fetches.Load())
			}
		})
	}
}

// errSource fails every fetch with err.
type errSource struct{ err error }

func (s errSource) Fetch(context.Context, KeyRequest) (KeyDocument, error) {
	return KeyDocument{}, s.err
}

// recordSource records the requests it is asked for.
type recordSource struct {
	testKeySource
	reqs []KeyRequest
}

func (s *recordSource) Fetch(ctx context.Context, req KeyRequest) (KeyDocument, error) {
	s.reqs = append(s.reqs, req)
	return s.testKeySource.Fetch(ctx, req)
}

// TestFetchedKeyErrors: a KeySource's refusal reaches the sender as it
// is; any other failure asks for a retry; the verifier asks for the
// right document.
func TestFetchedKeyErrors(t *testing.T) {
	google, plaid := mustLookup("google_pubsub"), mustLookup("plaid")
	gkp, pkp := tokenKeyPair(t, &GooglePush{}), tokenKeyPair(t, &Plaid{})
	gReq, pReq := signFor(t, google, gkp.sign, testNow), signFor(t, plaid, pkp.sign, testNow)
	for _, c := range []struct {
		name string
		err  error
		want Reason
	}{
		{"refusal kept", refuse(ReasonKeyNotAllowed, "host not allowed"), ReasonKeyNotAllowed},
		{"unavailable kept", refuse(ReasonKeyUnavailable, "timeout"), ReasonKeyUnavailable},
		{"other error", errors.New("dial tcp: refused"), ReasonKeyUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, x := range []struct {
				p *Provider
				r *testRequest
				s string
			}{{google, gReq, gkp.verify}, {plaid, pReq, pkp.verify}} {
				cfg := tokenConfig(keyPair{verify: x.s})
				cfg.Keys = errSource{c.err}
				wantReason(t, runVerify(t, x.p, cfg, x.r), c.want)
			}
		})
	}
	t.Run("requests", func(t *testing.T) {
		src := &recordSource{testKeySource: testKeySource{jwks: []string{gkp.verify}}}
		cfg := tokenConfig(gkp)
		cfg.Keys = src
		mustVerify(t, google, cfg, gReq)
		cfg = tokenConfig(pkp)
		cfg.Keys, cfg.KeysURL = src, "https://sandbox.plaid.com/"
		mustVerify(t, plaid, cfg, pReq)
		g, p := src.reqs[0], src.reqs[1]
		if g.URL != googleCertsURL || g.Method != "" || strings.Join(g.Hosts, ",") != "www.googleapis.com" {
			t.Fatalf("google request %+v", g)
		}
		if p.URL != "https://sandbox.plaid.com/webhook_verification_key/get" || p.Method != "POST" || p.ContentType != "application/json" ||
			strings.Join(p.Hosts, ",") != "production.plaid.com,sandbox.plaid.com" || !strings.Contains(string(p.Body), `"secret":"`+pkp.verify+`"`) {
			t.Fatalf("plaid request %+v", p)
		}
	})
}

func TestPlaid(t *testing.T) {
	p := mustLookup("plaid")
	kp := tokenKeyPair(t, &Plaid{})
	good := signFor(t, p, kp.sign, testNow)
	key, _ := parsePrivateKey(ECDSAP256, kp.sign)
	kid, _ := jwkThumbprint(key.Public())
	tok := func(header, claims map[string]any) *testRequest {
		r := good.clone()
		r.Header.Set(plaidHeader, jwktest.Token(header, claims, signedWith(t, algES256, key)))
		return r
	}
	sum := hexSHA256(good.Body)
	for _, c := range []struct {
		name string
		r    *testRequest
		cfg  func(*VerifierConfig)
		want Reason
	}{
		{name: "valid", r: good},
		{name: "body changed", r: func() *testRequest { r := good.clone(); r.Body = append(r.Body, ' '); return r }(), want: ReasonSignatureMismatch},
		{name: "key expired", r: good, cfg: func(c *VerifierConfig) { c.Keys = &testKeySource{expired: true} }, want: ReasonSignatureMismatch},
		{name: "other client_id", r: good, cfg: func(c *VerifierConfig) { c.ClientID = "someone-else" }, want: ReasonKeyUnavailable},
		{name: "old", r: tok(map[string]any{"alg": "ES256", "kid": kid}, map[string]any{"iat": testNow.Add(-6 * time.Minute).Unix(), "request_body_sha256": sum}), want: ReasonTimestampTooOld},
		{name: "no iat", r: tok(map[string]any{"alg": "ES256", "kid": kid}, map[string]any{"request_body_sha256": sum}), want: ReasonMissingTimestamp},
		{name: "no body hash", r: tok(map[string]any{"alg": "ES256", "kid": kid}, map[string]any{"iat": testNow.Unix()}), want: ReasonSignatureMismatch},
		{name: "upper-case hash", r: tok(map[string]any{"alg": "ES256", "kid": kid}, map[string]any{"iat": testNow.Unix(), "request_body_sha256": strings.ToUpper(sum)})},
		{name: "RS256", r: func() *testRequest {
			r := good.clone()
			rk, _ := rsa.GenerateKey(rand.Reader, 2048)
			r.Header.Set(plaidHeader, jwktest.Token(map[string]any{"alg": "RS256", "kid": kid}, map[string]any{"iat": testNow.Unix()}, signedWith(t, algRS256, rk)))
			return r
		}(), want: ReasonMalformedSignature},
		{name: "ASN.1 signature", r: func() *testRequest {
			r := good.clone()
			r.Header.Set(plaidHeader, jwktest.Token(map[string]any{"alg": "ES256", "kid": kid}, map[string]any{"iat": testNow.Unix(), "request_body_sha256": sum}, func(b []byte) []byte {
				sig, _ := key.(*ecdsa.PrivateKey).Sign(rand.Reader, sha256Of(b), nil)
				return sig
			}))
			return r
		}(), want: ReasonMalformedSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tokenConfig(kp)
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			wantReason(t, runVerify(t, p, cfg, c.r), c.want)
		})
	}
	// Fetches of forged key ids are bounded by the KeySource's pace
	// per provider (keyfetch: FetchBurst, then one per FetchInterval;
	// TestPlaidForgedKeyIDsOverKeyFetch), not by the verifier: a forged
	// id does not hold up the genuine new one that follows it.
	t.Run("a new key id right after a forged one", func(t *testing.T) {
		v, err := p.NewVerifier(tokenConfig(kp))
		if err != nil {
			t.Fatal(err)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		otherKid, _ := jwkThumbprint(&other.PublicKey)
		forged := good.clone()
		forged.Header.Set(plaidHeader, jwktest.Token(map[string]any{"alg": "ES256", "kid": otherKid}, map[string]any{"iat": testNow.Unix()}, signedWith(t, algES256, other)))
		_, err = v.Verify(&forged.Request)
		wantReason(t, err, ReasonKeyUnavailable) // fetched: the test API knows no such key
		_, err = v.Verify(&good.Request)
		wantReason(t, err, "")
	})
}

func TestBodyJWT(t *testing.T) {
	p := mustLookup("wix")
	kp := tokenKeyPair(t, &BodyJWT{})
	key, _ := parsePrivateKey(RSASHA256, kp.sign)
	body := func(header, claims map[string]any, sign func([]byte) []byte) *testRequest {
		return &testRequest{Request: Request{Method: "POST", URL: pushURL, Header: http.Header{}, Body: []byte(jwktest.Token(header, claims, sign)), Now: testNow}}
	}
	rs := signedWith(t, algRS256, key)
	h := map[string]any{"alg": "RS256", "kid": "qG1kD2dz"}
	data := `{"eventType":"OrderCanceled","instanceId":"i-1","data":"{}"}`
	for _, c := range []struct {
		name string
		r    *testRequest
		want Reason
	}{
		{"valid", body(h, map[string]any{"data": data, "iat": testNow.Unix(), "exp": testNow.Add(83 * time.Hour).Unix()}, rs), ""},
		{"trailing newline", func() *testRequest {
			r := body(h, map[string]any{"data": data, "exp": testNow.Add(time.Hour).Unix()}, rs)
			r.Body = append(r.Body, '\n')
			return r
		}(), ""},
		// The body is the event: an order with its line items runs to
		// tens of KiB, far past what a header's token may be.
		{"large event", body(h, map[string]any{"data": strings.Repeat("x", 64<<10), "iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix()}, rs), ""},
		{"token over the body cap", body(h, map[string]any{"data": strings.Repeat("x", maxBodyJWT), "iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix()}, rs), ReasonMalformedSignature},
		{"expired", body(h, map[string]any{"data": data, "iat": testNow.Add(-time.Hour).Unix(), "exp": testNow.Add(-6 * time.Minute).Unix()}, rs), ReasonTimestampTooOld},
		{"no exp", body(h, map[string]any{"data": data, "iat": testNow.Unix()}, rs), ReasonMissingTimestamp},
		{"issued in the future", body(h, map[string]any{"data": data, "iat": testNow.Add(time.Hour).Unix(), "exp": testNow.Add(2 * time.Hour).Unix()}, rs), ReasonTimestampInFuture},
		{"HS256 keyed with the public key", body(map[string]any{"alg": "HS256"}, map[string]any{"data": data, "exp": testNow.Add(time.Hour).Unix()},
			signedWith(t, algHS256, []byte(kp.verify))), ReasonMalformedSignature},
		{"JSON body", &testRequest{Request: Request{Body: []byte(data), Now: testNow}}, ReasonMalformedSignature},
		{"empty", &testRequest{Request: Request{Now: testNow}}, ReasonMissingSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantReason(t, runVerify(t, p, tokenConfig(kp), c.r), c.want)
		})
	}
}

func TestVonage(t *testing.T) {
	p := mustLookup("vonage")
	secret := "vonage-signature-secret-0123456789"
	sign := signedWith(t, algHS256, []byte(secret))
	claims := func(iss string, iat time.Time) map[string]any {
		return map[string]any{"iat": iat.Unix(), "jti": "c5ba8f24", "iss": iss, "payload_hash": "00", "api_key": "a1b2c3d"}
	}
	req := func(c map[string]any) *testRequest {
		h := http.Header{"Authorization": {"Bearer " + jwktest.Token(map[string]any{"alg": "HS256", "typ": "JWT"}, c, sign)}}
		return &testRequest{Request: Request{Method: "POST", Header: h, Body: []byte(`{"message_uuid":"m-1"}`), Now: testNow}}
	}
	cfg := VerifierConfig{Secrets: []string{secret}}
	for _, c := range []struct {
		name string
		r    *testRequest
		want Reason
	}{
		// Vonage's documented claims: no exp, payload_hash not the
		// body's (it is not checked).
		{"documented claims", req(claims("Vonage", testNow.Add(-time.Minute))), ""},
		{"other issuer", req(claims("Nexmo", testNow)), ReasonSignatureMismatch},
		{"old", req(claims("Vonage", testNow.Add(-6*time.Minute))), ReasonTimestampTooOld},
		{"ahead", req(claims("Vonage", testNow.Add(6*time.Minute))), ReasonTimestampInFuture},
		{"no iat", req(map[string]any{"iss": "Vonage"}), ReasonMissingTimestamp},
	} {
		t.Run(c.name, func(t *testing.T) { wantReason(t, runVerify(t, p, cfg, c.r), c.want) })
	}
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

func hexSHA256(b []byte) string { return hex.EncodeToString(sha256Of(b)) }

// TestTokenVerifiersConcurrent: one verifier serves many deliveries at
// once (the parsed key cache is shared); run with -race.
func TestTokenVerifiersConcurrent(t *testing.T) {
	for _, name := range []string{"google_pubsub", "plaid", "wix"} {
		t.Run(name, func(t *testing.T) {
			p := mustLookup(name)
			kp := tokenKeyPair(t, p.Scheme)
			good := signFor(t, p, kp.sign, testNow)
			cfg := tokenConfig(kp)
			v, err := p.NewVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 32)
			for range cap(errs) {
				go func() {
					r := good.clone()
					_, err := v.Verify(&r.Request)
					errs <- err
				}()
			}
			for range cap(errs) {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// cachedSource answers every request after the first from the first
// answer, as the gateway's cache would.
type cachedSource struct {
	src KeySource
	doc *KeyDocument
}

func (s *cachedSource) Fetch(ctx context.Context, req KeyRequest) (KeyDocument, error) {
	if s.doc == nil {
		doc, err := s.src.Fetch(ctx, req)
		if err != nil {
			return doc, err
		}
		s.doc = &doc
	}
	return *s.doc, nil
}

// BenchmarkTokenVerify measures a verification whose key is cached: the
// signature check dominates (RSA-2048 or P-256).
func BenchmarkTokenVerify(b *testing.B) {
	for _, name := range []string{"google_pubsub", "plaid", "wix", "vonage"} {
		b.Run(name, func(b *testing.B) {
			p := mustLookup(name)
			kp := keyPair{"symmetric", "vonage-secret-0123456789", "vonage-secret-0123456789"}
			if name != "vonage" {
				kp = tokenKeyPair(b, p.Scheme)
			}
			m := testMessage(p, testNow)
			if err := p.Scheme.Sign(kp.sign, &m); err != nil {
				b.Fatal(err)
			}
			cfg := tokenConfig(kp)
			cfg.Keys = &cachedSource{src: cfg.Keys}
			v, err := p.NewVerifier(cfg)
			if err != nil {
				b.Fatal(err)
			}
			r := &Request{Method: m.Method, URL: m.URL, Header: m.Header, Body: m.Body, Now: testNow}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
