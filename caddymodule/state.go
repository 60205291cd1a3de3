package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// RateLimit is a GCRA limit: Count events per Period, evenly paced,
// with up to Burst of them at once.
type RateLimit struct {
	// Count is how many events each Period allows. Required.
	Count int64 `json:"count"`
	// Period is the window Count applies to. Required.
	Period caddy.Duration `json:"period"`
	// Burst is how many events may arrive at once after a quiet spell.
	// Default: Count.
	Burst int64 `json:"burst,omitempty"`
	// Key names the bucket, with placeholders resolved per request
	// (for example {http.request.header.X-Shopify-Shop-Domain}).
	// Default: the route's source for rate_limit, the client IP for
	// flood_limit.
	Key string `json:"key,omitempty"`
}

func (l *RateLimit) limit() store.Limit {
	return store.Limit{Count: l.Count, Period: time.Duration(l.Period), Burst: l.Burst}
}

// Idempotency makes a redelivered event reach the upstream once: the
// first delivery claims the event id, a concurrent one gets 409, a later
// one gets the stored answer.
type Idempotency struct {
	// Retention is how long a completed event's answer is kept for
	// replay. Default: 24h.
	Retention caddy.Duration `json:"retention,omitempty"`
	// Key is the deduplication key, with placeholders resolved after
	// verification. Default: the event id, only where a signature covers
	// it (Stripe's body id, Standard Webhooks' webhook-id): a provider
	// that signs none (GitHub, Shopify, GitLab, Twilio…) fails the
	// config, since whoever replays a captured delivery could vary an
	// unsigned id. For those, {webhook.body_sha256} (the hex SHA-256 of
	// the body) is a key nobody can vary, but two genuine events with
	// the same body then count as one; {webhook.event_id} takes the
	// provider's id, signed or not, knowingly. A delivery whose key
	// resolves to empty is forwarded without deduplication. A scheme
	// that signs a single-use nonce (Mailgun's token) is always claimed
	// by that nonce, with or without this option.
	Key string `json:"key,omitempty"`
	// Lease bounds how long an in-flight claim blocks redeliveries when
	// its gateway dies before the upstream answers. Default: 60s.
	Lease caddy.Duration `json:"lease,omitempty"`
	// StoreResponse is how many bytes of the upstream's body are kept
	// for replays; a longer body is replayed as its status and headers
	// only. Default: 65536.
	StoreResponse int64 `json:"store_response,omitempty"`
}

// Defaults of the state options.
const (
	defaultRetention     = 24 * time.Hour
	defaultLease         = 60 * time.Second
	defaultStoreResponse = 64 << 10
	defaultStoreTimeout  = 500 * time.Millisecond
	finishTimeout        = 5 * time.Second
	storeRetryAfter      = 5 * time.Second
)

// Response headers the gateway adds to its own answers.
const (
	HeaderReplay = "Webhook-Gateway-Replay"
)

// replayedHeaders are the upstream headers worth keeping for a replay;
// Date, Server and hop-by-hop headers are not.
var replayedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Location", "Cache-Control"}

// claim is an idempotency claim this delivery holds, and how long the
// answer that completes it is kept.
type claim struct {
	source, key, owner string
	retention          time.Duration
}

func (h *Handler) source() string {
	if h.Source != "" {
		return h.Source
	}
	return h.Provider
}

// flood applies flood_limit, before the body is read: a cheap, local
// guard keyed by client IP, so that a flood of forgeries costs neither
// verification nor a Redis round trip.
func (h *Handler) flood(w http.ResponseWriter, r *http.Request, d *delivery) bool {
	key := h.FloodLimit.Key
	if key == "" {
		key = "{http.vars.client_ip}"
	}
	a := store.Admission{Source: "flood:" + h.source(), RateKey: replace(r, key), Limit: h.FloodLimit.limit()}
	res, err := h.app.local.Admit(r.Context(), a)
	if err != nil || res.Rate.Allowed {
		return false
	}
	closeUnread(w, r)
	h.refuseRate(w, d, "flood_limited", res.Rate)
	return true
}

// admit runs the rate limit and the idempotency claim in one store round
// trip. It returns the claim held, if any, and whether the request has
// already been answered.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, d *delivery) (*claim, bool) {
	a, retention := h.admission(r, d)
	if a.RateKey == "" && a.IdemKey == "" {
		return nil, false
	}
	ctx, cancel := h.storeContext(r.Context())
	res, err := h.app.shared.Admit(ctx, a)
	cancel()
	if err != nil {
		return nil, h.storeFailed(w, d, err)
	}
	if !res.Rate.Allowed {
		h.refuseRate(w, d, "rate_limited", res.Rate)
		return nil, true
	}
	switch res.State {
	case store.ClaimAcquired:
		return &claim{source: a.Source, key: a.IdemKey, owner: a.Owner, retention: retention}, false
	case store.ClaimInFlight:
		d.outcome, d.reason, d.status = "in_flight", "in_flight", http.StatusConflict
		writeProblem(w, http.StatusConflict, "in_flight", "this event is being delivered; retry later", res.RetryAfter)
		return nil, true
	case store.ClaimCompleted:
		h.replay(w, d, res.Stored)
		return nil, true
	case store.ClaimConflict:
		d.outcome, d.reason, d.status = outcomeRefused, "payload_mismatch", http.StatusUnprocessableEntity
		writeProblem(w, http.StatusUnprocessableEntity, "payload_mismatch", "this event id was delivered before with a different payload", 0)
		return nil, true
	}
	return nil, false
}

// admission is what admit asks of the store, and how long a claim it
// takes keeps its answer.
func (h *Handler) admission(r *http.Request, d *delivery) (store.Admission, time.Duration) {
	a := store.Admission{Source: h.source()}
	if rl := h.RateLimit; rl != nil {
		a.RateKey, a.Limit = h.source(), rl.limit()
		if rl.Key != "" {
			a.RateKey = replace(r, rl.Key)
		}
	}
	var retention time.Duration
	if a.IdemKey, retention = h.claimKey(r, d); a.IdemKey != "" {
		a.Fingerprint = d.bodySHA256
		a.Owner = newOwner()
		a.Lease = h.lease()
	}
	return a, retention
}

// storeFailed follows on_store_error: refuse with 503, or let the
// delivery through unchecked. It reports whether it answered.
func (h *Handler) storeFailed(w http.ResponseWriter, d *delivery, err error) bool {
	d.storeErr = err
	h.metrics.storeError(d.provider, "admit")
	if h.OnStoreError == "allow" {
		d.unchecked = true
		return false
	}
	d.outcome, d.reason, d.status = outcomeRefused, "store_unavailable", http.StatusServiceUnavailable
	writeProblem(w, http.StatusServiceUnavailable, "store_unavailable", "the gateway's state store is unavailable; retry later", storeRetryAfter)
	return true
}

func (h *Handler) refuseRate(w http.ResponseWriter, d *delivery, reason string, dec store.Decision) {
	hdr := w.Header()
	hdr.Set("RateLimit-Limit", strconv.FormatInt(dec.Limit, 10))
	hdr.Set("RateLimit-Remaining", strconv.FormatInt(dec.Remaining, 10))
	hdr.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(dec.Reset), 10))
	d.outcome, d.reason, d.status = reason, reason, http.StatusTooManyRequests
	writeProblem(w, http.StatusTooManyRequests, reason, "too many deliveries; retry later", max(dec.RetryAfter, time.Second))
}

// replay answers a redelivery with the stored answer of the first one.
func (h *Handler) replay(w http.ResponseWriter, d *delivery, resp *store.Response) {
	hdr := w.Header()
	for k, vs := range resp.Header {
		hdr[k] = vs
	}
	hdr.Set(HeaderReplay, "true")
	// 204 and 304 answers must not carry a length (RFC 9110, 8.6).
	if resp.Status != http.StatusNoContent && resp.Status != http.StatusNotModified {
		hdr.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	}
	d.outcome, d.status = "replayed", resp.Status
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}

// finish completes the claim with the upstream's answer, or releases it
// so that the provider's retry gets through. It runs detached from the
// client's context: a provider that hangs up must not leave a claim
// stuck until its lease runs out.
func (h *Handler) finish(r *http.Request, d *delivery, c *claim, rec *recorder, upstreamErr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), finishTimeout)
	defer cancel()
	if shouldRelease(rec.status, upstreamErr) {
		if err := h.app.shared.Release(ctx, c.source, c.key, c.owner); err != nil {
			h.metrics.storeError(d.provider, "release")
			h.logger.Error("releasing idempotency claim", zap.String("provider", d.provider), zap.String("event_id", d.eventID), zap.Error(err))
		}
		d.released = true
		return
	}
	resp := store.Response{Status: rec.status, Header: rec.header}
	if !rec.overflow {
		resp.Body = rec.body.Bytes()
	}
	err := h.app.shared.Complete(ctx, c.source, c.key, c.owner, resp, c.retention)
	if err != nil {
		h.metrics.storeError(d.provider, "complete")
		level := h.logger.Error
		if errors.Is(err, store.ErrClaimLost) {
			level = h.logger.Warn
		}
		level("storing the upstream's answer", zap.String("provider", d.provider), zap.String("event_id", d.eventID), zap.Error(err))
	}
}

// shouldRelease says whether the upstream's answer means the event was
// not handled and the provider's retry must get through.
func shouldRelease(status int, err error) bool {
	return err != nil || status == 0 || status >= 500 ||
		status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// storeContext bounds a store call made while the provider waits. The
// memory store cannot block, so it is spared the timer.
func (h *Handler) storeContext(parent context.Context) (context.Context, context.CancelFunc) {
	if _, local := h.app.shared.(*store.Memory); local {
		return parent, func() {}
	}
	return context.WithTimeout(parent, durationOr(h.StoreTimeout, defaultStoreTimeout))
}

func (h *Handler) keepResponse() int64 {
	if h.Idempotency != nil && h.Idempotency.StoreResponse > 0 {
		return h.Idempotency.StoreResponse
	}
	return defaultStoreResponse
}

// validateState checks the rate and idempotency options.
func (h *Handler) validateState() error {
	for name, rl := range map[string]*RateLimit{"rate_limit": h.RateLimit, "flood_limit": h.FloodLimit} {
		if rl == nil {
			continue
		}
		if err := rl.limit().Validate(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	switch h.OnStoreError {
	case "", "reject", "allow":
	default:
		return fmt.Errorf("on_store_error %q: want reject or allow", h.OnStoreError)
	}
	if idem := h.Idempotency; idem != nil && (idem.Retention < 0 || idem.Lease < 0 || idem.StoreResponse < 0) {
		return fmt.Errorf("idempotency: retention, lease and store_response must not be negative")
	}
	return nil
}

func replace(r *http.Request, s string) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return s
	}
	return repl.ReplaceKnown(s, "")
}

func newOwner() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
