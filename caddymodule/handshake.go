package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// Headers that mark a request forwarded without verification: a
// handshake that hands the app a secret only the app can keep (Asana's
// X-Hook-Secret). A verified delivery never carries them: a client's
// copies are removed.
const (
	HeaderVerified         = "Webhook-Gateway-Verified"
	HeaderUnverifiedReason = "Webhook-Gateway-Unverified-Reason"
)

// outcomeHandshakeForwarded is a handshake passed on to the app.
const outcomeHandshakeForwarded = "handshake_forwarded"

// handshake runs one phase of the provider's challenge handling: before
// verification when verified is nil, after it otherwise.
func (h *Handler) handshake(req *provider.Request, verified *provider.Verified) (*provider.Answer, bool) {
	hs := h.provider.Handshake
	if hs == nil {
		return nil, false
	}
	cfg := provider.HandshakeConfig{Secrets: h.secrets, VerifyToken: h.VerifyToken, Keys: h.keys, Topics: h.topics}
	if verified == nil {
		return hs.BeforeVerify(req, cfg)
	}
	return hs.AfterVerify(req, *verified, cfg)
}

// forwardHandshake passes an unauthenticated handshake on to the app with
// nothing of the request but the challenge's headers: no body, no other
// header, no event id. It is not an event, so neither the rate limit nor
// idempotency sees it; the log line names the outcome, never the
// challenge's value.
func (h *Handler) forwardHandshake(w http.ResponseWriter, r *http.Request, d *delivery, ans *provider.Answer, next caddyhttp.Handler) error {
	hdr := ans.Header.Clone()
	hdr[HeaderProvider] = []string{d.provider}
	hdr[HeaderVerified] = []string{"false"}
	hdr[HeaderUnverifiedReason] = []string{"handshake"}
	r.Header = hdr
	// Closing the replayable body lets its buffer go back to the pool.
	r.Body.Close()
	r.Body, r.GetBody, r.ContentLength, r.TransferEncoding = http.NoBody, nil, 0, nil
	d.body = nil
	if h.handshakeUpstream != nil {
		next = h.handshakeUpstream
	}
	err := h.forward(w, r, d, nil, next)
	d.outcome = outcomeHandshakeForwarded
	return err
}

// unmark removes a client's copies of the gateway's headers, whatever
// their name: the marks of an unverified request, and those of a queued
// attempt (Delivery-Id, Replay-Of, …), which the app trusts and a stored
// event would otherwise keep. The gateway sets its own afterwards.
func unmark(h http.Header) {
	for name := range h {
		if len(name) >= len(gatewayHeaderPrefix) && strings.EqualFold(name[:len(gatewayHeaderPrefix)], gatewayHeaderPrefix) {
			delete(h, name)
		}
	}
}

// gatewayHeaderPrefix starts the name of every header the gateway sets.
const gatewayHeaderPrefix = "Webhook-Gateway-"

// awaitsSecret reports a route with no secret yet, whose provider hands
// it over in a handshake that the gateway forwards (Asana): it may be
// configured so, forwards handshakes and refuses every delivery.
func awaitsSecret(h *Handler) bool {
	if len(h.Secrets) > 0 || h.hasCustomScheme() {
		return false
	}
	p, ok := provider.Lookup(h.Provider)
	return ok && p.SecretByHandshake()
}
