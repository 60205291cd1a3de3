package provider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Token is the scheme of providers that send a shared secret as it is
// (GitLab, Telegram, Cloudflare, Okta) or as HTTP Basic credentials
// (Postmark, Pipedrive). It proves only that the sender knows the secret:
// the body is not covered, so it is only as safe as TLS.
type Token struct {
	// Header carries the token. Required unless Query is set.
	Header string `json:"header,omitempty"`

	// Prefix precedes the token in the header, as "Bearer ".
	Prefix string `json:"prefix,omitempty"`

	// Query names a query parameter of the public URL that carries the
	// token instead of a header (Mailchimp).
	Query string `json:"query,omitempty"`

	// Basic makes the secret "user:password", sent base64-encoded after
	// "Basic " in the Authorization header.
	Basic bool `json:"basic,omitempty"`
}

// Describe implements Scheme.
func (s *Token) Describe() Description {
	// A static token is the secret itself: it is stripped and redacted,
	// and nothing stops it being sent again.
	d := Description{Kind: "token", Replay: ReplayNone}
	switch {
	case s.Basic:
		d.Kind = "basic"
		d.Headers = []string{"Authorization"}
		d.Credentials.TokenHeaders = d.Headers
	case s.Query != "":
		d.Kind = "token/query:" + s.Query
		d.Credentials.TokenQuery = []string{s.Query}
	default:
		d.Headers = []string{s.Header}
		d.Credentials.TokenHeaders = []string{http.CanonicalHeaderKey(s.Header)}
	}
	return d
}

// Validate checks a token scheme given in a config.
func (s *Token) Validate() error {
	if s.Header == "" && s.Query == "" && !s.Basic {
		return fmt.Errorf("token scheme: header or query is required")
	}
	return nil
}

// expected is the exact value the request must carry for a secret.
func (s *Token) expected(secret string) (string, error) {
	if secret == "" {
		return "", fmt.Errorf("secret is empty")
	}
	if s.Basic {
		if !strings.Contains(secret, ":") {
			return "", fmt.Errorf("basic secret must be user:password")
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(secret)), nil
	}
	return s.Prefix + secret, nil
}

func (s *Token) header() string {
	if s.Basic {
		return "Authorization"
	}
	return http.CanonicalHeaderKey(s.Header)
}

// NewVerifier implements Scheme.
func (s *Token) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("no secret configured")
	}
	v := &tokenVerifier{s: s, header: s.header()}
	for i, secret := range cfg.Secrets {
		want, err := s.expected(secret)
		if err != nil {
			return nil, fmt.Errorf("secret #%d: %w", i+1, err)
		}
		v.digests = append(v.digests, sha256.Sum256([]byte(want)))
	}
	return v, nil
}

// Sign implements Scheme.
func (s *Token) Sign(secret string, m *Message) error {
	if err := s.Validate(); err != nil {
		return err
	}
	want, err := s.expected(secret)
	if err != nil {
		return err
	}
	if s.Query != "" && !s.Basic {
		u, err := url.Parse(m.URL)
		if err != nil {
			return fmt.Errorf("token scheme: url: %w", err)
		}
		q := u.Query()
		q.Set(s.Query, want)
		u.RawQuery = q.Encode()
		m.URL = u.String()
		return nil
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	m.Header.Set(s.header(), want)
	return nil
}

type tokenVerifier struct {
	s       *Token
	header  string
	digests [][sha256.Size]byte
}

// Verify compares digests so that neither the length nor the content of
// a secret shows in the comparison's timing.
func (v *tokenVerifier) Verify(r *Request) (Verified, error) {
	got, where := v.presented(r)
	if got == "" {
		return Verified{}, refuse(ReasonMissingSignature, "%s is missing", where)
	}
	secret, ok := matchDigest(got, v.digests)
	if !ok {
		return Verified{}, refuse(ReasonSignatureMismatch, "%s does not match a configured secret", where)
	}
	return Verified{Secret: secret}, nil
}

// matchDigest returns the position of the digest that got's SHA-256
// equals. Every digest is compared and the position picked without a
// branch, so the timing tells neither which secret matched nor its
// length.
func matchDigest(got string, digests [][sha256.Size]byte) (int, bool) {
	sum := sha256.Sum256([]byte(got))
	match, secret := 0, 0
	for i := range digests {
		eq := subtle.ConstantTimeCompare(sum[:], digests[i][:])
		secret = subtle.ConstantTimeSelect(eq&^match, i, secret)
		match |= eq
	}
	return secret, match == 1
}

func (v *tokenVerifier) presented(r *Request) (value, where string) {
	if v.s.Query != "" && !v.s.Basic {
		where = "query parameter " + v.s.Query
		if u, err := url.Parse(r.URL); err == nil {
			value = u.Query().Get(v.s.Query)
		}
		return value, where
	}
	return headerValue(r.Header, v.header), "header " + v.header
}

// Interface guards
var (
	_ Scheme   = (*Token)(nil)
	_ Verifier = (*tokenVerifier)(nil)
)
