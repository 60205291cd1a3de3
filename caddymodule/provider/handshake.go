package provider

import "net/http"

// Answer is a response the gateway writes itself instead of forwarding.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// HandshakeConfig is what a route knows that a challenge may need.
type HandshakeConfig struct {
	// Secrets are the route's secrets, for challenges answered with a
	// signature (Zoom's encryptedToken).
	Secrets []string
	// VerifyToken is the token some providers echo back in an unsigned
	// challenge (Meta's hub.verify_token).
	VerifyToken string
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
	// AfterVerify answers a signed challenge once its signature holds.
	// It reports false when the request is an ordinary delivery.
	AfterVerify(r *Request, cfg HandshakeConfig) (*Answer, bool)
}
