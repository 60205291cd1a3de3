package provider

import (
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
}

// Verified is what a successful verification learned about the delivery.
type Verified struct {
	// Timestamp is the signed send time, zero when the scheme has none.
	Timestamp time.Time
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
}

// Description is a human summary of a scheme, for `webhook-gateway providers`.
type Description struct {
	Kind      string
	Headers   []string
	Tolerance time.Duration
}
