package provider

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/providertest"
)

// A keypair test signs with the private key (the secret `webhook-gateway
// sign` takes) and verifies with the public key (the secret a route is
// configured with); a symmetric scheme uses one secret for both.
type keyPair struct{ name, sign, verify string }

var testNow = time.Unix(1700000000, 0)

// TestCatalog signs a delivery for every provider with its own scheme,
// then checks that it verifies and that the usual forgeries do not.
func TestCatalog(t *testing.T) {
	for _, p := range All() {
		pairs := testKeys(t, p.Scheme)
		for i, kp := range pairs {
			other := pairs[(i+1)%len(pairs)]
			if len(pairs) == 1 || other.verify == kp.verify {
				other = testKeys(t, p.Scheme)[i]
			}
			t.Run(p.Name+"/"+kp.name, func(t *testing.T) { testProvider(t, p, kp, other) })
		}
	}
}

func testProvider(t *testing.T, p *Provider, kp, other keyPair) {
	good := signFor(t, p, kp.sign, testNow)
	// The tolerance as shipped: a row without one must still bound a
	// signed time.
	cfg := testConfig(p, kp.verify)
	mustVerify(t, p, cfg, good)
	sig := signatureOf(good)

	t.Run("rotation", func(t *testing.T) {
		rot := testConfig(p, other.verify, kp.verify)
		mustVerify(t, p, rot, good)
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := testConfig(p, other.verify)
		mustRefuse(t, p, bad, good, sig)
	})
	t.Run("body changed", func(t *testing.T) {
		if !coversBody(p.Scheme) {
			t.Skip("the scheme does not authenticate the body")
		}
		r := good.clone()
		var ok bool
		if r.Body, ok = providertest.ChangedBody(good.deliveries()); !ok {
			t.Fatal("test body lacks " + providertest.Marker)
		}
		mustRefuse(t, p, cfg, r, sig)
	})
	t.Run("signature missing", func(t *testing.T) {
		for _, r := range stripped(t, p, good) {
			mustRefuse(t, p, cfg, r, sig)
		}
	})
	if tol := p.DefaultTolerance(); timestamped(p.Scheme) {
		for _, skew := range []time.Duration{-tol - time.Minute, tol + time.Minute} {
			t.Run(fmt.Sprintf("skew %s", skew), func(t *testing.T) {
				r := signFor(t, p, kp.sign, testNow.Add(skew))
				var perr *Error
				err := runVerify(t, p, cfg, r)
				if !errors.As(err, &perr) || (perr.Reason != ReasonTimestampTooOld && perr.Reason != ReasonTimestampInFuture) {
					t.Fatalf("want a timestamp refusal, got %v", err)
				}
			})
		}
	}
}

// TestShippedTolerance: every provider whose signature covers a time
// refuses a delivery signed a day ago, or a day ahead, with the
// configuration as shipped; only `tolerance off` lets it through.
func TestShippedTolerance(t *testing.T) {
	for _, p := range All() {
		if !timestamped(p.Scheme) {
			continue
		}
		kp := testKeys(t, p.Scheme)[0]
		cfg := testConfig(p, kp.verify)
		for _, c := range []struct {
			name string
			skew time.Duration
			want Reason
		}{
			{"day old", -24 * time.Hour, ReasonTimestampTooOld},
			{"day ahead", 24 * time.Hour, ReasonTimestampInFuture},
		} {
			t.Run(p.Name+"/"+c.name, func(t *testing.T) {
				r := signFor(t, p, kp.sign, testNow.Add(c.skew))
				var perr *Error
				if err := runVerify(t, p, cfg, r); !errors.As(err, &perr) || perr.Reason != c.want {
					t.Fatalf("got %v, want %s with the shipped tolerance %s", err, c.want, p.DefaultTolerance())
				}
				off := cfg
				off.Tolerance = -1
				if _, ownExpiry := p.Scheme.(*GooglePush); ownExpiry && c.skew < 0 {
					// Past its own exp a token stays refused: `tolerance
					// off` lifts the bound on iat, never the token's life.
					if err := runVerify(t, p, off, r); !errors.As(err, &perr) || perr.Reason != ReasonTimestampTooOld {
						t.Fatalf("an expired token with tolerance off: got %v, want %s", err, ReasonTimestampTooOld)
					}
					return
				}
				mustVerify(t, p, off, r)
			})
		}
	}
}

// testConfig configures a route with the keys that verify: its secrets,
// or, for a provider whose keys are fetched, a KeySource serving the last
// of them and the topic testMessage sends from.
func testConfig(p *Provider, verify ...string) VerifierConfig {
	if _, ok := p.Scheme.(SNS); ok {
		return VerifierConfig{Keys: &snsKeySource{doc: []byte(verify[len(verify)-1])}, Topics: []string{testTopic}}
	}
	cfg := VerifierConfig{WebhookID: "WH-1", ServiceAccount: testServiceAccount, ClientID: testClientID}
	return withSecrets(cfg, verify...)
}

// testRequest is a signed delivery and what it was before signing.
type testRequest struct {
	Request
	unsigned Message
}

func (r *testRequest) clone() *testRequest {
	c := *r
	c.Header = r.Header.Clone()
	c.Body = bytes.Clone(r.Body)
	return &c
}

// deliveries are r before and after signing, as providertest reads them.
func (r *testRequest) deliveries() (unsigned, signed providertest.Delivery) {
	return providertest.Delivery{URL: r.unsigned.URL, Header: r.unsigned.Header, Body: r.unsigned.Body},
		providertest.Delivery{URL: r.URL, Header: r.Header, Body: r.Body}
}

func signFor(t *testing.T, p *Provider, secret string, at time.Time) *testRequest {
	t.Helper()
	m := testMessage(p, at)
	unsigned := m
	unsigned.Header = m.Header.Clone()
	if err := p.Scheme.Sign(secret, &m); err != nil {
		t.Fatalf("sign: %v", err)
	}
	return &testRequest{
		Request:  Request{Method: m.Method, URL: m.URL, Header: m.Header, Body: m.Body, Now: testNow},
		unsigned: unsigned,
	}
}

// testMessage is a delivery shaped as the provider sends it (see
// providertest.Shape); an SNS one comes from testTopic.
func testMessage(p *Provider, at time.Time) Message {
	m := Message{
		Method: "POST", URL: "https://hooks.example.com/in?x=1", ID: "msg_1", Timestamp: at, WebhookID: "WH-1",
	}
	m.Header, m.Body = providertest.Shape(p.Name, at)
	if p.Name == "sns" {
		m.KeyURL = testCertURL
		m.Header.Set("X-Amz-Sns-Topic-Arn", testTopic)
	}
	return m
}

// stripped are the signed request without each piece the signer added.
func stripped(t *testing.T, p *Provider, good *testRequest) []*testRequest {
	var out []*testRequest
	for _, d := range providertest.Stripped(good.deliveries()) {
		r := good.clone()
		r.URL, r.Header, r.Body = d.URL, d.Header, d.Body
		out = append(out, r)
	}
	if len(out) == 0 {
		t.Fatalf("%s: signing changed nothing", p.Name)
	}
	return out
}

func runVerify(t *testing.T, p *Provider, cfg VerifierConfig, r *testRequest) error {
	t.Helper()
	v, err := p.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	_, err = v.Verify(&r.Request)
	return err
}

func mustVerify(t *testing.T, p *Provider, cfg VerifierConfig, r *testRequest) {
	t.Helper()
	if err := runVerify(t, p, cfg, r); err != nil {
		t.Fatalf("genuine delivery refused: %v", err)
	}
}

// mustRefuse wants a refusal that shows no secret and no signature.
func mustRefuse(t *testing.T, p *Provider, cfg VerifierConfig, r *testRequest, secrets []string) {
	t.Helper()
	err := runVerify(t, p, cfg, r)
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("want a refusal, got %v", err)
	}
	for _, s := range append(secrets, cfg.Secrets...) {
		if len(s) >= 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("refusal %q shows secret material", err)
		}
	}
}

// signatureOf lists the values a refusal must never show: every header
// and body value the signer wrote.
func signatureOf(r *testRequest) []string {
	var out []string
	for name, vs := range r.Header {
		if _, before := r.unsigned.Header[name]; !before {
			out = append(out, vs...)
		}
	}
	return out
}

// coversBody says whether a scheme authenticates the body at all.
func coversBody(s Scheme) bool {
	switch s := s.(type) {
	case *Token, *ClientState:
		return false
	case *JWT:
		return s.BodyHashClaim != ""
	case *GooglePush:
		return false
	}
	return true
}

func timestamped(s Scheme) bool {
	switch s := s.(type) {
	case *HMAC:
		return s.HasTimestamp()
	case *QuerySignature:
		return s.Layout.HasTimestamp()
	case *PublicKey:
		return s.Layout.HasTimestamp()
	case *BodyHMAC:
		return s.Timestamp != ""
	case *Contentful, SNS:
		return true
	case *byKeyPrefix:
		return timestamped(s.Scheme)
	case *JWT:
		return s.IssuedAt
	case *GooglePush, *Plaid:
		return true
	}
	return false
}

// testKeys makes fresh key material in the form each scheme reads:
// providertest's, or for a provider whose keys are fetched, what this
// package's test KeySources serve.
func testKeys(t *testing.T, s Scheme) []keyPair {
	t.Helper()
	switch s.(type) {
	case SNS:
		return []keyPair{certPair(t)}
	case *GooglePush, *Plaid:
		return []keyPair{tokenKeyPair(t, s)}
	}
	pairs, ok := providertest.Keys(s)
	if !ok {
		t.Fatalf("no test key for %T", s)
	}
	out := make([]keyPair, len(pairs))
	for i, kp := range pairs {
		out[i] = keyPair{kp.Name, kp.Sign, kp.Verify}
	}
	return out
}
