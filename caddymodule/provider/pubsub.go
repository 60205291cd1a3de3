package provider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Google's key set for the OIDC tokens of service accounts, and the
// issuers those tokens name (docs.cloud.google.com/pubsub/docs/
// authenticate-push-subscriptions; google.golang.org/api/idtoken).
const (
	googleCertsURL  = "https://www.googleapis.com/oauth2/v3/certs"
	googleCertsHost = "www.googleapis.com"
)

var googleIssuers = []string{"accounts.google.com", "https://accounts.google.com"}

// unknownKeyRefresh: a token naming a key id the cached set lacks has the
// set fetched again once the cached copy is older than this, since Google
// rotates its keys. The KeySource still runs one fetch at a time and
// keeps failures, so forged key ids cannot make it fetch at will.
const unknownKeyRefresh = time.Minute

// GooglePush is Google Cloud Pub/Sub's authenticated push: an OIDC token
// in Authorization, RS256-signed by Google for the subscription's service
// account, checked against Google's published key set. Nothing is
// configured but the service account (and the audience when the
// subscription sets one).
//
// The token does not sign the body: it says that Google pushed to this
// endpoint for that account within the token's life (an hour), not what
// it pushed. A captured delivery can therefore be replayed, with any
// body, until the tolerance on iat runs out. The tolerance (an hour by
// default, as Pub/Sub reuses a token that long) bounds iat's age and is
// the leeway on exp; an iat ahead of now by more than five minutes (or
// the tolerance, if smaller) is refused; `tolerance off` turns the
// checks of iat off, while exp is still required and holds, with no
// leeway.
type GooglePush struct{}

// Describe implements Scheme.
func (s *GooglePush) Describe() Description {
	return signedTimeToken("oidc-rs256/jwks (body unsigned)", "Authorization", BodyNone)
}

// NewVerifier implements Scheme: it needs the KeySource and the service
// account; cfg.KeysURL replaces Google's key set URL.
func (s *GooglePush) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	if cfg.Keys == nil {
		return nil, fmt.Errorf("google push: no key source to fetch Google's keys with")
	}
	if cfg.ServiceAccount == "" {
		return nil, fmt.Errorf("google push: service_account is required (the subscription's push service account)")
	}
	return &googlePushVerifier{
		cfg:    cfg,
		req:    KeyRequest{Provider: "google_pubsub", URL: orDefault(cfg.KeysURL, googleCertsURL), Hosts: []string{googleCertsHost}},
		parsed: newParsedDocs(parseJWKS),
	}, nil
}

// googleKeyFile is what Sign reads: the fields of a service account's
// JSON key file that a token needs.
type googleKeyFile struct {
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
}

// Sign implements Scheme. The secret is a service account's JSON key file
// (private_key, client_email, and private_key_id, else the key's RFC 7638
// thumbprint is the kid); the token is for m.URL, as Pub/Sub's default
// audience is the push endpoint. Only a verifier whose key set holds
// that key accepts it: Google's own tokens are signed with Google's keys.
func (s *GooglePush) Sign(secret string, m *Message) error {
	var kf googleKeyFile
	if err := json.Unmarshal([]byte(secret), &kf); err != nil || kf.PrivateKey == "" || kf.ClientEmail == "" {
		return fmt.Errorf("secret is not a service account key file (JSON with private_key and client_email)")
	}
	key, err := parsePrivateKey(RSASHA256, kf.PrivateKey)
	if err != nil {
		return err
	}
	kid := kf.PrivateKeyID
	if kid == "" {
		if kid, err = jwkThumbprint(key.Public()); err != nil {
			return err
		}
	}
	claims := map[string]any{
		"iss": "https://accounts.google.com", "aud": m.URL,
		"azp": orDefault(kf.ClientID, kf.ClientEmail), "sub": orDefault(kf.ClientID, kf.ClientEmail),
		"email": kf.ClientEmail, "email_verified": true,
		"iat": m.Timestamp.Unix(), "exp": m.Timestamp.Add(time.Hour).Unix(),
	}
	tok, err := signJWS(algRS256, kid, claims, key)
	if err != nil {
		return err
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	m.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

type googlePushVerifier struct {
	cfg    VerifierConfig
	req    KeyRequest
	parsed *parsedDocs[map[string]jwkKey]
}

func (v *googlePushVerifier) Verify(r *Request) (Verified, error) {
	raw := strings.TrimSpace(headerValue(r.Header, "Authorization"))
	if raw == "" {
		return Verified{}, refuse(ReasonMissingSignature, "header Authorization is missing")
	}
	bearer, ok := strings.CutPrefix(raw, "Bearer ")
	if !ok {
		return Verified{}, refuse(ReasonMalformedSignature, "header Authorization is not a Bearer token")
	}
	tok, err := parseJWS(strings.TrimSpace(bearer), algRS256)
	if err != nil {
		return Verified{}, refuse(ReasonMalformedSignature, "header Authorization: %v", err)
	}
	if tok.kid == "" {
		return Verified{}, refuse(ReasonMalformedSignature, "header Authorization: token names no key id")
	}
	key, perr := v.key(r, tok.kid)
	if perr != nil {
		return Verified{}, perr
	}
	if !verifyJWS(key.key, tok) {
		return Verified{}, refuse(ReasonSignatureMismatch, "token in header Authorization is not signed by Google's key %q", tok.kid)
	}
	return v.checkClaims(tok.claims, r)
}

// key finds kid in Google's key set, fetching the set again once when
// the cached copy lacks it.
func (v *googlePushVerifier) key(r *Request, kid string) (jwkKey, *Error) {
	req := v.req
	for range 2 {
		doc, err := v.cfg.Keys.Fetch(r.Ctx(), req)
		if err != nil {
			return jwkKey{}, keyRefusal(err)
		}
		set, err := v.parsed.get(req.URL, doc.Body)
		if err != nil {
			return jwkKey{}, refuse(ReasonKeyUnavailable, "the key set fetched: %v", err)
		}
		if k, ok := set[kid]; ok {
			return k, nil
		}
		req.RefreshOlderThan = unknownKeyRefresh
	}
	return jwkKey{}, refuse(ReasonSignatureMismatch, "token names key %q, which is not in the key set", kid)
}

// checkClaims runs only on a token whose signature holds: Google signed
// it, but for whom, and when, is in the claims.
func (v *googlePushVerifier) checkClaims(claims gjson.Result, r *Request) (Verified, error) {
	if iss := claims.Get("iss").String(); !slices.Contains(googleIssuers, iss) {
		return Verified{}, refuse(ReasonSignatureMismatch, "token issuer is not Google")
	}
	if !hasAudience(claims.Get("aud"), orDefault(v.cfg.Audience, r.URL)) {
		return Verified{}, refuse(ReasonSignatureMismatch, "token audience is not this route's (audience, else the public URL)")
	}
	leeway := v.cfg.Tolerance
	at, err := issuedAt(claims, r.Now, leeway)
	if err != nil {
		return Verified{}, err
	}
	// The hour of tolerance is for tokens Google reuses; none is issued
	// ahead of time, so the future side gets only a clock's skew.
	if skew := min(leeway, DefaultTolerance); leeway > 0 && at.Sub(r.Now) > skew {
		return Verified{}, refuse(ReasonTimestampInFuture, "token issued more than %s in the future", skew)
	}
	// exp holds even with the tolerance off (no leeway then): the
	// token is all that authenticates a push, so one that never
	// expired would let whoever saw it post any body for good.
	if err := unexpired(claims, r.Now, leeway, true); err != nil {
		return Verified{}, err
	}
	if claims.Get("email").String() != v.cfg.ServiceAccount {
		return Verified{}, refuse(ReasonNotAllowed, "token is not for the configured service account")
	}
	if claims.Get("email_verified").Type != gjson.True {
		return Verified{}, refuse(ReasonNotAllowed, "token's service account email is not verified")
	}
	return Verified{Timestamp: at, Body: BodyNone}, nil
}

// Interface guards
var (
	_ Scheme   = (*GooglePush)(nil)
	_ Verifier = (*googlePushVerifier)(nil)
)
