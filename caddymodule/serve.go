package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// Headers the upstream receives with a verified delivery. Any copy sent
// by the client is removed first, so the upstream can trust them; the
// event id and type are sent only when a signature covers them, encoded
// by queue.HeaderSafe.
const (
	HeaderProvider  = "Webhook-Gateway-Provider"
	HeaderEventID   = "Webhook-Gateway-Event-Id"
	HeaderEventType = "Webhook-Gateway-Event-Type"
)

// Outcomes of a delivery, as logged and counted.
const (
	outcomeForwarded = "forwarded"
	outcomeRefused   = "refused"
	outcomeAnswered  = "answered" // a handshake the gateway answered itself
)

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	d := &delivery{start: now(), provider: h.provider.Name}
	defer h.logDelivery(d)

	if !h.methodAllowed(r.Method) {
		w.Header().Set("Allow", strings.Join(h.methods, ", "))
		return h.refuseUnread(w, r, d, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not accepted here")
	}
	if h.FloodLimit != nil && h.flood(w, r, d) {
		return nil
	}
	body, err := readBody(r, h.maxBody())
	if errors.Is(err, errBodyTooLarge) {
		return h.refuseUnread(w, r, d, http.StatusRequestEntityTooLarge, "body_too_large", "body exceeds the limit of "+formatBytes(h.maxBody()))
	}
	if err != nil {
		return h.refuseUnread(w, r, d, http.StatusBadRequest, "body_unreadable", "the request body could not be read")
	}
	defer body.release()
	restoreBody(r, body)
	raw := body.bytes()
	d.bytes = int64(len(raw))
	if h.LogBody > 0 {
		d.body = h.loggedBody(r, raw)
	}

	req := &provider.Request{Method: r.Method, URL: h.publicURL(r), Header: r.Header, Body: raw, Now: d.start,
		Context: r.Context(), Client: replace(r, "{http.vars.client_ip}")}
	if ans, ok := h.handshake(req, nil); ok {
		if ans.Forward {
			return h.forwardHandshake(w, r, d, ans, next)
		}
		return h.answer(w, d, ans)
	}
	verified, err := h.verifier.Verify(req)
	if err != nil {
		return h.refuseVerification(w, d, err)
	}
	if ans, ok := h.handshake(req, &verified); ok {
		return h.answer(w, d, ans)
	}
	unmark(r.Header)
	h.identify(r, req, d, verified)
	h.dropCredentials(r)
	c, answered := h.admit(w, r, d)
	if answered {
		return nil
	}
	if h.queue != nil {
		return h.enqueue(w, r, d, c, raw)
	}
	return h.forward(w, r, d, c, next)
}

func (h *Handler) methodAllowed(method string) bool {
	for _, m := range h.methods {
		if m == method {
			return true
		}
	}
	return false
}

func (h *Handler) answer(w http.ResponseWriter, d *delivery, ans *provider.Answer) error {
	d.outcome = outcomeAnswered
	for k, vs := range ans.Header {
		w.Header()[k] = vs
	}
	status := ans.Status
	if status == 0 {
		status = http.StatusOK
	}
	d.status = status
	w.WriteHeader(status)
	_, err := w.Write(ans.Body)
	return err
}

func (h *Handler) refuseVerification(w http.ResponseWriter, d *delivery, err error) error {
	var perr *provider.Error
	if !errors.As(err, &perr) {
		perr = &provider.Error{Reason: provider.ReasonSignatureMismatch, Detail: "the signature could not be verified"}
	}
	// Why a key could not be had is logged for the operator too: the key
	// fetcher's details name no secret.
	switch perr.Reason {
	case provider.ReasonKeyUnavailable:
		// The delivery may be genuine: the provider is asked to retry.
		d.err = perr
		d.outcome, d.reason, d.status = outcomeRefused, string(perr.Reason), http.StatusServiceUnavailable
		writeProblem(w, http.StatusServiceUnavailable, string(perr.Reason), perr.Detail, keyUnavailableRetry)
		return nil
	case provider.ReasonKeyNotAllowed:
		d.err = perr
	}
	return h.refuse(w, d, h.refusalStatus(), string(perr.Reason), perr.Detail)
}

// refuse answers for the gateway itself; the request goes no further.
func (h *Handler) refuse(w http.ResponseWriter, d *delivery, status int, reason, detail string) error {
	d.outcome, d.reason, d.status = outcomeRefused, reason, status
	writeProblem(w, status, reason, detail, 0)
	return nil
}

// refuseUnread refuses a request whose body has not been read whole. It
// closes an HTTP/1 connection after the answer: otherwise Go's server
// would first drain the body, and a client that holds its body back
// (Expect: 100-continue, or a large declared length) would wait for an
// answer that never comes. HTTP/2 resets the stream instead.
func (h *Handler) refuseUnread(w http.ResponseWriter, r *http.Request, d *delivery, status int, reason, detail string) error {
	closeUnread(w, r)
	return h.refuse(w, d, status, reason, detail)
}

// closeUnread asks Go's HTTP/1 server to close the connection after the
// answer instead of reading the rest of the body.
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// identify reads what the delivery says about itself and publishes it as
// placeholders and upstream headers. The placeholders and the log line
// show the event id and type even when no signature covers them, for
// information; only signed ones reach the upstream's headers or become
// the default idempotency key, and only a signed nonce is remembered.
func (h *Handler) identify(r *http.Request, req *provider.Request, d *delivery, v provider.Verified) {
	idFields, typeFields := h.eventFields(h.provider)
	var idSigned, typeSigned bool
	d.eventID, idSigned = provider.Identify(idFields, req, v)
	if idSigned {
		d.signedID = d.eventID
	}
	d.nonce, d.coverage = v.Nonce, v.Body
	d.eventType, typeSigned = provider.Read(typeFields, req, v)
	sum := sha256.Sum256(req.Body)
	d.bodySHA256 = hex.EncodeToString(sum[:])

	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("webhook.provider", d.provider)
		repl.Set("webhook.event_id", d.eventID)
		repl.Set("webhook.event_type", d.eventType)
		// Only a hash of bytes that were all signed cannot be varied.
		repl.Set("webhook.body_sha256", signedOnly(d.bodySHA256, v.Body == provider.BodyWhole))
		ts := ""
		if !v.Timestamp.IsZero() {
			ts = v.Timestamp.UTC().Format(time.RFC3339)
		}
		repl.Set("webhook.timestamp", ts)
	}
	// The names are canonical already, so the map is used directly.
	r.Header[HeaderProvider] = []string{d.provider}
	// The app trusts these headers, so they carry only what was signed;
	// the provider's own headers still tell it the rest.
	setOrDelete(r.Header, HeaderEventID, queue.HeaderSafe(d.signedID))
	setOrDelete(r.Header, HeaderEventType, queue.HeaderSafe(signedOnly(d.eventType, typeSigned)))
}

// signedOnly is value where a signature covers it, else nothing.
func signedOnly(value string, signed bool) string {
	if signed {
		return value
	}
	return ""
}

// forward passes the delivery on, notes the upstream's answer and, when
// it holds a claim, renews it while the upstream works, then completes or
// releases it.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, d *delivery, c *claim, next caddyhttp.Handler) (err error) {
	keep := int64(0)
	stopRenewing := func() {}
	if c != nil {
		keep = h.keepResponse()
		stopRenewing = h.renew(r, d, c)
	}
	rec := newRecorder(w, keep)
	// reverse_proxy panics with http.ErrAbortHandler when the upstream
	// breaks mid-answer: the claim and the log line are settled all the
	// same (a stranded claim would refuse the provider's retry for the
	// whole lease), then the panic goes on to the server.
	defer func() {
		p := recover()
		if p != nil {
			d.reason, err = panicError(p)
		}
		stopRenewing()
		h.noteUpstream(d, rec, err)
		if c != nil {
			h.finish(r, d, c, rec, err)
		}
		if p != nil {
			panic(p)
		}
	}()
	return next.ServeHTTP(rec, r)
}

// noteUpstream records the upstream's answer for the log line.
func (h *Handler) noteUpstream(d *delivery, rec *recorder, err error) {
	d.outcome, d.status, d.upstreamBytes = outcomeForwarded, rec.status, rec.bytes
	var herr caddyhttp.HandlerError
	if errors.As(err, &herr) && rec.status == 0 {
		d.status = herr.StatusCode
	}
	d.err = err
}

// panicError describes a panic of the next handler for the log line:
// http.ErrAbortHandler is how reverse_proxy gives up on an upstream that
// broke mid-answer; anything else is a bug further down the chain.
func panicError(p any) (reason string, err error) {
	if p == http.ErrAbortHandler {
		return "upstream_aborted", fmt.Errorf("next handler aborted: %w", http.ErrAbortHandler)
	}
	return "handler_panicked", fmt.Errorf("next handler panicked: %v", p)
}

// publicURL is what URL-signing providers signed: the configured public
// URL, else the URL the client used, before any rewrite. Caddy keeps the
// request URI as received (not its host or TLS state, which a rewrite
// cannot change anyway).
func (h *Handler) publicURL(r *http.Request) string {
	uri := r.RequestURI
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.RequestURI != "" {
		uri = orig.RequestURI
	}
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if h.PublicURL != "" {
		// The query is always the request's own: a configured one would
		// be signed or compared in place of what the sender sent
		// (Mailchimp's ?secret= in public_url let any POST through).
		base, _, _ := strings.Cut(h.PublicURL, "?")
		if _, query, ok := strings.Cut(uri, "?"); ok {
			return base + "?" + query
		}
		return base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + uri
}

// setOrDelete sets a header, or removes it (and any client copy) when
// there is no value.
func setOrDelete(h http.Header, name, value string) {
	if value == "" {
		delete(h, name)
		return
	}
	h[name] = []string{value}
}
