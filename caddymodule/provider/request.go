package provider

import (
	"context"
	"net/http"
	"time"
)

// Request is what a verifier sees of a delivery: the exact bytes received
// and the few request properties that some providers sign.
type Request struct {
	Method string
	// URL is the public URL the provider called (scheme, host, path and
	// query), which is what URL-signing providers put in their content.
	URL    string
	Header http.Header
	Body   []byte
	// Now is the verification clock; tests pin it to a vector's time.
	Now time.Time
	// Client is the sender's IP address as Caddy resolved it (with the
	// server's trusted_proxies applied): what a handshake's rate limit
	// is keyed on, so that one client's flood spends no one else's
	// allowance. Empty when unknown.
	Client string
	// Context is the request's: a verifier that waits for a key fetch
	// stops waiting when it ends. Nil means context.Background().
	Context context.Context
}

// Ctx returns the request's context, never nil.
func (r *Request) Ctx() context.Context {
	if r.Context == nil {
		return context.Background()
	}
	return r.Context
}

// Verified is what a successful verification authenticated. Every later
// decision (freshness, the idempotency key, what is forwarded) is taken
// from it, never from the request itself: a part of the request that no
// signature covers is whatever the last sender wanted it to be.
type Verified struct {
	// Timestamp is the signed send time, zero when the scheme signs none.
	Timestamp time.Time

	// ID is the event id when the signature covers one outside the body
	// (Standard Webhooks' webhook-id of the header family that verified,
	// Mailgun's token). Empty when the scheme signs none: the provider's
	// EventID fields are then trusted only where Body or Headers say the
	// signature covers them.
	ID string

	// Nonce is a signed single-use value that must not be accepted twice
	// within the tolerance (Mailgun's token, which is all Mailgun signs
	// besides the time). Empty for schemes without one.
	Nonce string

	// Body says how much of the body the signature covers.
	Body Coverage

	// Headers are the canonical names of the request headers the
	// signature covers. It is the verifier's own slice, shared by every
	// request: read it, never change it.
	Headers []string

	// Secret is the position, in VerifierConfig.Secrets, of the secret
	// that verified, so that an answer signed back (Zoom's
	// url_validation) uses the same one.
	Secret int
}

// Coverage says how much of a body a signature authenticates. The zero
// value trusts nothing, so a scheme that forgets to say is safe.
type Coverage uint8

const (
	// BodyNone: no byte of the body is signed (token, URL-only form).
	BodyNone Coverage = iota
	// BodyParts: a signature inside the body covers some of its fields
	// (Adyen's items, Braintree's payload); the rest is not signed.
	BodyParts
	// BodyWhole: every byte of the body is signed.
	BodyWhole
)

// Credentials names the parts of a request that carry a secret or a
// signature, so that the gateway strips or redacts them.
type Credentials struct {
	// TokenHeaders carry a static shared secret (X-Gitlab-Token, basic
	// auth's Authorization): stripped before forwarding unless the
	// route keeps them, redacted wherever the gateway logs or shows a
	// request.
	TokenHeaders []string
	// TokenQuery are URL query parameters that carry a static secret
	// (Mailchimp's ?secret=): stripped and redacted like TokenHeaders.
	TokenQuery []string
	// SignatureHeaders carry signatures, which reveal no secret: they
	// are forwarded, so that an app can verify too, and redacted in logs.
	SignatureHeaders []string
	// SignatureQuery are URL query parameters that carry signatures
	// (PandaDoc's ?signature=): forwarded like SignatureHeaders, and
	// redacted wherever the gateway shows a URL.
	SignatureQuery []string
	// BodyFields are the body fields that hold signatures (gjson paths
	// for JSON bodies, field names for forms): redacted in logged bodies.
	BodyFields []string
}

// Verifier checks deliveries for one route. It is built once at provision
// time, with the secrets already decoded, and is safe for concurrent use.
type Verifier interface {
	Verify(r *Request) (Verified, error)
}

// Message is what a signer needs to produce a delivery's headers.
type Message struct {
	Method    string
	URL       string
	ID        string
	Timestamp time.Time
	Body      []byte
	// Header holds headers that the signed content refers to; the signer
	// adds its own to it.
	Header http.Header
	// WebhookID is the subscription's id, for schemes that sign it.
	WebhookID string
	// KeyURL is where verifiers fetch the signer's certificate, for
	// schemes that name it in the message (SNS's SigningCertURL).
	KeyURL string
}

// Scheme is a family of signatures (HMAC of some content, a token, …).
// Providers are rows of data over a few schemes.
type Scheme interface {
	// NewVerifier decodes the secrets and prepares a verifier. Its error
	// names the problem but never shows a secret.
	NewVerifier(cfg VerifierConfig) (Verifier, error)
	// Sign adds to m.Header the headers a provider would send; it lets
	// users and tests produce genuine deliveries. Schemes that carry the
	// signature in the body or the URL rewrite m.Body or m.URL. For
	// public-key schemes the secret is the private key.
	Sign(secret string, m *Message) error
	// Describe summarises the scheme for the providers table.
	Describe() Description
}

// VerifierConfig is a route's verification settings.
type VerifierConfig struct {
	// Secrets are tried in order; several allow rotation.
	Secrets []string
	// Tolerance bounds the distance between the signed timestamp and now,
	// in both directions. Zero means the scheme's default; negative
	// disables the check.
	Tolerance time.Duration
	// WebhookID is the provider's id for the subscription, which some
	// sign (PayPal's webhook_id).
	WebhookID string

	// Keys fetches keys for providers that verify with a fetched key
	// (Provider.Secretless ones and Plaid); nil for the others, and
	// such a provider's verifier refuses to build without it.
	Keys KeySource
	// KeysURL replaces the provider's default key location (a JWKS URL,
	// an API's base URL); its host must then be allowed by the
	// KeySource's configuration.
	KeysURL string
	// Topics lists the AWS SNS topic ARNs a route accepts; a message
	// from any other topic is refused before anything is fetched.
	Topics []string
	// Audience is the aud claim a token must carry (Google Pub/Sub
	// push); empty means the request's public URL.
	Audience string
	// ServiceAccount is the email claim a token must carry (the service
	// account of a Google Pub/Sub push subscription).
	ServiceAccount string
	// ClientID identifies the account to a key API that needs one
	// (Plaid's client_id; the route's secret is the API secret).
	ClientID string
}

// Description is a human summary of a scheme, for `webhook-gateway providers`.
type Description struct {
	Kind      string
	Headers   []string
	Tolerance time.Duration
	// Replay says what stops a captured delivery from being sent again:
	// one of the Replay* values.
	Replay string
	// Credentials names the request parts that carry a secret or a
	// signature.
	Credentials Credentials
	// Body is how much of a body the signature covers in every
	// delivery, at the least: a key such as {webhook.body_sha256} stops
	// replays only where it is BodyWhole.
	Body Coverage
}

// What a scheme's signature offers against replays, for the providers
// table: a signed timestamp bounds a replay to the tolerance; a signed
// id lets idempotency refuse it; with neither, only a key an attacker
// cannot vary, such as {webhook.body_sha256}, stops one.
const (
	ReplayTimestampAndID = "signed timestamp and id"
	ReplayTimestamp      = "signed timestamp"
	ReplayID             = "signed id"
	ReplayBodyHash       = "body hash only"
	ReplayNone           = "none"
)
