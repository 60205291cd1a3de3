package provider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// Plaid's key API (plaid.com/docs/api/webhooks/webhook-verification/).
const (
	plaidBaseURL = "https://production.plaid.com"
	plaidKeyPath = "/webhook_verification_key/get"
	plaidHeader  = "Plaid-Verification"
)

var plaidHosts = []string{"production.plaid.com", "sandbox.plaid.com"}

// Plaid is Plaid's webhook signature: an ES256 JWT in Plaid-Verification
// whose kid names a key that Plaid's API hands out to the account's
// client_id and secret, and whose claims bind the body's SHA-256 and the
// time. The route's secret is the Plaid API secret (several are tried in
// order, for rotation); ClientID is the client_id.
type Plaid struct{}

// Describe implements Scheme.
func (s *Plaid) Describe() Description {
	return signedTimeToken("jwt-es256/plaid-key", plaidHeader, BodyWhole)
}

// NewVerifier implements Scheme. cfg.KeysURL replaces the API's base URL
// (https://sandbox.plaid.com, say).
func (s *Plaid) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	switch {
	case cfg.Keys == nil:
		return nil, fmt.Errorf("plaid: no key source to fetch Plaid's keys with")
	case cfg.ClientID == "":
		return nil, fmt.Errorf("plaid: client_id is required")
	case len(cfg.Secrets) == 0:
		return nil, fmt.Errorf("plaid: no secret configured (the Plaid API secret)")
	}
	return &plaidVerifier{
		cfg:    cfg,
		url:    strings.TrimSuffix(orDefault(cfg.KeysURL, plaidBaseURL), "/") + plaidKeyPath,
		parsed: newParsedDocs(parsePlaidKey),
	}, nil
}

// Sign implements Scheme. The secret is a P-256 private key; its RFC 7638
// thumbprint is the kid, which a key API serving that key must answer to.
func (s *Plaid) Sign(secret string, m *Message) error {
	key, err := parsePrivateKey(ECDSAP256, secret)
	if err != nil {
		return err
	}
	kid, err := jwkThumbprint(key.Public())
	if err != nil {
		return err
	}
	sum := sha256.Sum256(m.Body)
	claims := map[string]any{"iat": m.Timestamp.Unix(), "request_body_sha256": hex.EncodeToString(sum[:])}
	tok, err := signJWS(algES256, kid, claims, key)
	if err != nil {
		return err
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	m.Header.Set(plaidHeader, tok)
	return nil
}

type plaidVerifier struct {
	cfg    VerifierConfig
	url    string
	parsed *parsedDocs[plaidKey]
}

func (v *plaidVerifier) Verify(r *Request) (Verified, error) {
	raw := strings.TrimSpace(headerValue(r.Header, plaidHeader))
	if raw == "" {
		return Verified{}, refuse(ReasonMissingSignature, "header %s is missing", plaidHeader)
	}
	tok, err := parseJWS(raw, algES256)
	if err != nil {
		return Verified{}, refuse(ReasonMalformedSignature, "header %s: %v", plaidHeader, err)
	}
	if tok.kid == "" {
		return Verified{}, refuse(ReasonMalformedSignature, "header %s: token names no key id", plaidHeader)
	}
	key, secret, perr := v.key(r, tok.kid)
	if perr != nil {
		return Verified{}, perr
	}
	if !verifyJWS(key.key, tok) {
		return Verified{}, refuse(ReasonSignatureMismatch, "token in header %s is not signed by Plaid's key %q", plaidHeader, tok.kid)
	}
	at, err := issuedAt(tok.claims, r.Now, v.cfg.Tolerance)
	if err != nil {
		return Verified{}, err
	}
	sum := sha256.Sum256(r.Body)
	got, err := hex.DecodeString(tok.claims.Get("request_body_sha256").String())
	if err != nil || subtle.ConstantTimeCompare(got, sum[:]) != 1 {
		return Verified{}, refuse(ReasonSignatureMismatch, "token claim request_body_sha256 does not match the body")
	}
	return Verified{Timestamp: at, Body: BodyWhole, Secret: secret}, nil
}

// key asks Plaid's API for kid with each configured secret in turn and
// returns the key with the position of the secret that got it. Every
// key id is an authenticated call of its own, so forged ones could spend
// the account's API quota: the KeySource's pace per provider bounds
// them (keyfetch: a burst, then one a second), and keeps each failure a
// while, so a forged id repeated costs nothing more.
func (v *plaidVerifier) key(r *Request, kid string) (jwkKey, int, *Error) {
	last := refuse(ReasonKeyUnavailable, "the signing key could not be fetched")
	for i, secret := range v.cfg.Secrets {
		// The body carries the API secret: the KeySource keys its
		// cache with it but never logs it, and neither does this.
		body, err := json.Marshal(map[string]string{"client_id": v.cfg.ClientID, "secret": secret, "key_id": kid})
		if err != nil {
			return jwkKey{}, 0, refuse(ReasonKeyUnavailable, "key request: %v", err)
		}
		doc, err := v.cfg.Keys.Fetch(r.Ctx(), KeyRequest{
			Provider: "plaid", URL: v.url, Method: http.MethodPost,
			Body: body, ContentType: "application/json", Hosts: plaidHosts,
		})
		if err != nil {
			last = keyRefusal(err)
			continue
		}
		k, err := v.parsed.get(kid+"\x00"+fmt.Sprint(i), doc.Body)
		switch {
		case err != nil:
			last = refuse(ReasonKeyUnavailable, "Plaid's answer: %v", err)
		case k.key.kid != kid:
			last = refuse(ReasonKeyUnavailable, "Plaid answered with another key than %q", kid)
		case k.expired:
			return jwkKey{}, 0, refuse(ReasonSignatureMismatch, "token names key %q, which Plaid has expired", kid)
		default:
			return k.key, i, nil
		}
	}
	return jwkKey{}, 0, last
}

// plaidKey is a key from /webhook_verification_key/get.
type plaidKey struct {
	key     jwkKey
	expired bool
}

// parsePlaidKey reads {"key": JWK, "request_id": …}. The key must be an
// ES256 key on P-256; one with an expired_at is refused, as Plaid's own
// example does.
func parsePlaidKey(body []byte) (plaidKey, error) {
	if len(body) > maxJWKS || !gjson.ValidBytes(body) {
		return plaidKey{}, fmt.Errorf("answer is not JSON")
	}
	raw := gjson.GetBytes(body, "key")
	if !raw.IsObject() {
		return plaidKey{}, fmt.Errorf("answer holds no key")
	}
	k, err := parseJWK([]byte(raw.Raw))
	if err != nil {
		return plaidKey{}, err
	}
	if k.alg != algES256 {
		return plaidKey{}, fmt.Errorf("key is not an ES256 key")
	}
	exp := raw.Get("expired_at")
	return plaidKey{key: k, expired: exp.Exists() && exp.Type != gjson.Null}, nil
}

// Interface guards
var (
	_ Scheme   = (*Plaid)(nil)
	_ Verifier = (*plaidVerifier)(nil)
)
