package provider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// JWT is the scheme of providers that send an HS256 JSON Web Token
// signed with the shared secret (Netlify, monday.com). Only HS256 is
// accepted, so neither "none" nor a public-key algorithm can be slipped
// in. Tolerance is the leeway on exp and nbf.
type JWT struct {
	// Header carries the token. Required.
	Header string `json:"header"`

	// Prefix, when the value starts with it, is removed ("Bearer ").
	Prefix string `json:"prefix,omitempty"`

	// Issuer, when set, must equal the iss claim (Netlify: "netlify").
	Issuer string `json:"issuer,omitempty"`

	// BodyHashClaim names a claim holding the hex SHA-256 of the body,
	// which ties the token to the body (Netlify's "sha256"). Without
	// one the body is not authenticated.
	BodyHashClaim string `json:"body_hash_claim,omitempty"`

	// AudienceURL requires the aud claim to be the public URL
	// (monday.com).
	AudienceURL bool `json:"audience_url,omitempty"`

	// RequireExpiry refuses tokens without an exp claim.
	RequireExpiry bool `json:"require_expiry,omitempty"`

	// IssuedAt makes iat the signed time: required, and within the
	// tolerance of now in both directions (Vonage, whose tokens carry
	// no exp).
	IssuedAt bool `json:"issued_at,omitempty"`
}

// Describe implements Scheme.
func (s *JWT) Describe() Description {
	body, kind := BodyNone, "jwt-hs256 (body unsigned)"
	if s.BodyHashClaim != "" {
		body, kind = BodyWhole, "jwt-hs256"
	}
	// Only a required exp or a bounded iat limits a token's life; the
	// id a token may carry is not read.
	return Description{
		Kind: kind, Headers: []string{s.Header},
		Replay:      replayOf(s.RequireExpiry || s.IssuedAt, false, body),
		Body:        body,
		Credentials: Credentials{SignatureHeaders: []string{http.CanonicalHeaderKey(s.Header)}},
	}
}

// NewVerifier implements Scheme.
func (s *JWT) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	if s.Header == "" {
		return nil, fmt.Errorf("jwt scheme: header is required")
	}
	keys, err := decodeKeys(SecretRaw, cfg.Secrets)
	if err != nil {
		return nil, err
	}
	return &jwtVerifier{s: s, header: http.CanonicalHeaderKey(s.Header), keys: keys, leeway: cfg.Tolerance}, nil
}

// Sign implements Scheme: a token with iss, iat, exp (five minutes on,
// unless iat is the signed time: Vonage sends none) and, as configured,
// the body hash and the audience.
func (s *JWT) Sign(secret string, m *Message) error {
	if secret == "" {
		return fmt.Errorf("secret is empty")
	}
	claims := map[string]any{"iat": m.Timestamp.Unix()}
	if !s.IssuedAt || s.RequireExpiry {
		claims["exp"] = m.Timestamp.Add(5 * time.Minute).Unix()
	}
	if s.Issuer != "" {
		claims["iss"] = s.Issuer
	}
	if s.BodyHashClaim != "" {
		sum := sha256.Sum256(m.Body)
		claims[s.BodyHashClaim] = hex.EncodeToString(sum[:])
	}
	if s.AudienceURL {
		claims["aud"] = m.URL
	}
	tok, err := signJWS(algHS256, "", claims, []byte(secret))
	if err != nil {
		return err
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	m.Header.Set(s.Header, s.Prefix+tok)
	return nil
}

type jwtVerifier struct {
	s      *JWT
	header string
	keys   [][]byte
	leeway time.Duration
}

func (v *jwtVerifier) Verify(r *Request) (Verified, error) {
	raw := strings.TrimSpace(headerValue(r.Header, v.header))
	if raw == "" {
		return Verified{}, refuse(ReasonMissingSignature, "header %s is missing", v.header)
	}
	raw = strings.TrimPrefix(raw, v.s.Prefix)
	tok, err := parseJWT(raw)
	if err != nil {
		return Verified{}, refuse(ReasonMalformedSignature, "header %s: %v", v.header, err)
	}
	secret, ok := v.signedByKey(tok)
	if !ok {
		return Verified{}, refuse(ReasonSignatureMismatch, "token in header %s is not signed by a configured secret", v.header)
	}
	out, err := v.checkClaims(tok.claims, r)
	if err != nil {
		return Verified{}, err
	}
	out.Secret = secret
	if v.s.BodyHashClaim != "" {
		out.Body = BodyWhole
	}
	return out, nil
}

// signedByKey returns the position of the secret that signed the token.
func (v *jwtVerifier) signedByKey(tok *jwtToken) (int, bool) {
	return keyThatSigns(v.keys, sha256.New, tok.sig, func(w io.Writer) { io.WriteString(w, tok.signed) })
}

// checkClaims runs only on a token whose signature holds.
func (v *jwtVerifier) checkClaims(claims gjson.Result, r *Request) (Verified, error) {
	var out Verified
	if iat := claims.Get("iat"); iat.Type == gjson.Number {
		out.Timestamp = time.Unix(iat.Int(), 0)
	}
	if v.s.IssuedAt {
		if _, err := issuedAt(claims, r.Now, v.leeway); err != nil {
			return out, err
		}
	}
	if err := unexpired(claims, r.Now, v.leeway, v.s.RequireExpiry); err != nil {
		return out, err
	}
	if nbf := claims.Get("nbf"); nbf.Type == gjson.Number && r.Now.Add(v.leeway).Before(time.Unix(nbf.Int(), 0)) {
		return out, refuse(ReasonTimestampInFuture, "token not valid yet")
	}
	if v.s.Issuer != "" && claims.Get("iss").String() != v.s.Issuer {
		return out, refuse(ReasonSignatureMismatch, "token issuer is not %q", v.s.Issuer)
	}
	if v.s.AudienceURL && !hasAudience(claims.Get("aud"), r.URL) {
		return out, refuse(ReasonSignatureMismatch, "token audience is not this endpoint's public URL")
	}
	if v.s.BodyHashClaim != "" {
		sum := sha256.Sum256(r.Body)
		got, err := hex.DecodeString(claims.Get(v.s.BodyHashClaim).String())
		if err != nil || subtle.ConstantTimeCompare(got, sum[:]) != 1 {
			return out, refuse(ReasonSignatureMismatch, "token claim %s does not match the body", v.s.BodyHashClaim)
		}
	}
	return out, nil
}

func hasAudience(aud gjson.Result, want string) bool {
	if aud.IsArray() {
		for _, a := range aud.Array() {
			if a.String() == want {
				return true
			}
		}
		return false
	}
	return aud.Type == gjson.String && aud.String() == want
}

// parseJWT accepts only a three-part HS256 token with JSON header and
// claims.
func parseJWT(raw string) (*jwtToken, error) { return parseJWS(raw, algHS256) }

// Interface guards
var (
	_ Scheme   = (*JWT)(nil)
	_ Verifier = (*jwtVerifier)(nil)
)
