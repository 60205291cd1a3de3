package provider

import (
	"bytes"
	"crypto"
	"fmt"
	"time"
)

// BodyJWT is the scheme of providers whose whole body is an RS256 JWT
// signed with the sender's private key, the event being in its claims
// (Wix: the app's public key from the app dashboard verifies it; the
// event is the "data" claim). The route's secrets are the public keys
// (PEM). The token's exp bounds its life, with the tolerance as leeway;
// an iat further than the tolerance in the future is refused. The bound
// in the past is the sender's exp, not the tolerance: Wix's sample token
// expires 300,000 s (about 83 h) after its iat, and Wix's own SDK checks
// exp only, so a retry that resends the token stays valid until then
// (dev.wix.com/docs/build-apps/build-your-app/authentication/verify-wix-requests).
type BodyJWT struct{}

// wixLifetime is the life Wix gives its tokens (exp - iat of its sample).
const wixLifetime = 300000 * time.Second

// Describe implements Scheme.
func (s *BodyJWT) Describe() Description {
	return Description{Kind: "jwt-rs256-body", Replay: ReplayTimestamp, Body: BodyWhole}
}

// NewVerifier implements Scheme.
func (s *BodyJWT) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("no public key configured")
	}
	v := &bodyJWTVerifier{leeway: cfg.Tolerance}
	for i, secret := range cfg.Secrets {
		key, err := parsePublicKey(RSASHA256, secret)
		if err != nil {
			return nil, fmt.Errorf("public key #%d: %w", i+1, err)
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// Sign implements Scheme: the body becomes a token whose data claim is
// the body as a string, valid for five minutes. The secret is the RSA
// private key.
func (s *BodyJWT) Sign(secret string, m *Message) error {
	key, err := parsePrivateKey(RSASHA256, secret)
	if err != nil {
		return err
	}
	claims := map[string]any{
		"data": string(m.Body),
		"iat":  m.Timestamp.Unix(), "exp": m.Timestamp.Add(wixLifetime).Unix(),
	}
	tok, err := signJWS(algRS256, "", claims, key)
	if err != nil {
		return err
	}
	m.Body = []byte(tok)
	return nil
}

// maxBodyJWT bounds a body that is a token. It carries the whole event
// (an order with its line items, JSON escaped twice over), so the bound
// is a body's, not a header token's (maxJWT); the route's max_body
// applies too.
const maxBodyJWT = 1 << 20

type bodyJWTVerifier struct {
	keys   []crypto.PublicKey
	leeway time.Duration
}

func (v *bodyJWTVerifier) Verify(r *Request) (Verified, error) {
	raw := bytes.TrimSpace(r.Body)
	if len(raw) == 0 {
		return Verified{}, refuse(ReasonMissingSignature, "the body is empty, not a token")
	}
	tok, err := parseJWSUpTo(string(raw), maxBodyJWT, algRS256)
	if err != nil {
		return Verified{}, refuse(ReasonMalformedSignature, "body: %v", err)
	}
	secret := -1
	for i, key := range v.keys {
		if verifyJWS(key, tok) {
			secret = i
			break
		}
	}
	if secret < 0 {
		return Verified{}, refuse(ReasonSignatureMismatch, "the body's token is not signed by a configured public key")
	}
	var out Verified
	if iat := tok.claims.Get("iat"); iat.Exists() {
		at, err := issuedAt(tok.claims, r.Now, 0)
		if err != nil {
			return out, err
		}
		if v.leeway > 0 && at.Sub(r.Now) > v.leeway {
			return out, refuse(ReasonTimestampInFuture, "token issued more than %s in the future", v.leeway)
		}
		out.Timestamp = at
	}
	if err := unexpired(tok.claims, r.Now, v.leeway, true); err != nil {
		return out, err
	}
	out.Body, out.Secret = BodyWhole, secret
	return out, nil
}

// Interface guards
var (
	_ Scheme   = (*BodyJWT)(nil)
	_ Verifier = (*bodyJWTVerifier)(nil)
)
