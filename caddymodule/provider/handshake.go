package provider

import "net/http"

// Answer is a response the gateway writes itself instead of forwarding,
// or, with Forward, a challenge it passes on to the app.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte

	// Forward sends the challenge to the app, marked unverified, with no
	// body and only Header's headers, instead of answering it: the app
	// alone can keep what it carries (Asana's X-Hook-Secret, the secret
	// of the route to come) and answer as the provider expects. The
	// gateway never logs it nor adopts it as a secret: nobody
	// authenticated the sender. Status and Body are unused.
	Forward bool
}

// HandshakeConfig is what a route knows that a challenge may need.
type HandshakeConfig struct {
	// Secrets are the route's secrets, for challenges answered with a
	// signature (Zoom's encryptedToken).
	Secrets []string
	// VerifyToken is the token some providers echo back in an unsigned
	// challenge (Meta's hub.verify_token).
	VerifyToken string
	// Keys makes the outbound calls a handshake needs (confirming an
	// AWS SNS subscription), under the same URL rules as key fetches.
	Keys KeySource
	// Topics are the AWS SNS topic ARNs a route accepts: only their
	// subscriptions are confirmed.
	Topics []string
}

// Handshake answers a provider's endpoint-verification challenge, so
// that subscribing an endpoint works with the gateway in front.
type Handshake interface {
	// Methods lists methods, besides the route's, that challenges
	// arrive with (a GET for Meta, a HEAD for Trello).
	Methods() []string
	// BeforeVerify answers an unsigned challenge. It reports false
	// when the request is not one, and the request goes on to verify.
	BeforeVerify(r *Request, cfg HandshakeConfig) (*Answer, bool)
	// AfterVerify answers a signed challenge once its signature holds;
	// an answer signed back uses the secret that verified. It reports
	// false when the request is an ordinary delivery.
	AfterVerify(r *Request, v Verified, cfg HandshakeConfig) (*Answer, bool)
}

// oracle is a handshake whose answer signs, under the delivery secret, a
// value the caller chose (X's CRC): its guard wraps the provider's
// verifier so that no delivery verifies on what an answer signed.
type oracle interface {
	guard(Verifier) Verifier
}

// SecretByHandshake reports whether the provider hands the route's secret
// over in a handshake that the gateway forwards (Asana's X-Hook-Secret):
// such a route may be configured before it has a secret, so that the
// handshake can reach the app.
func (p *Provider) SecretByHandshake() bool {
	c, ok := p.Handshake.(HeaderChallenge)
	return ok && c.Forward
}

// awaitingSecret is the verifier of a route whose secret is still to come
// by handshake: it refuses every delivery, saying what to do.
type awaitingSecret struct{ header string }

func (v awaitingSecret) Verify(*Request) (Verified, error) {
	return Verified{}, refuse(ReasonSignatureMismatch,
		"this route has no secret yet: configure the %s that the subscription's handshake delivered to the app", v.header)
}

// Interface guards
var _ Verifier = awaitingSecret{}
