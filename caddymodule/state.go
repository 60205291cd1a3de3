package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
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
	// Requests whose key resolves to empty all share one bucket, so a
	// missing header cannot skip the limit. Behind a proxy, use
	// {client_ip} with Caddy's trusted_proxies server option rather than
	// a raw header such as CF-Connecting-IP, which any client can send.
	// Default: the route's source for rate_limit, the client IP for
	// flood_limit.
	Key string `json:"key,omitempty"`
}

func (l *RateLimit) limit() store.Limit {
	return store.Limit{Count: l.Count, Period: time.Duration(l.Period), Burst: l.Burst}
}

// emptyKeyBucket is the bucket of every request whose key resolved to
// nothing. Failing closed: an absent header shares one allowance rather
// than escaping the limit. A client that sends this very value only joins
// the same bucket.
const emptyKeyBucket = "(empty key)"

// bucket resolves the limit's key for r, or def when none is configured.
// An empty result goes to emptyKeyBucket and is noted for the log line.
func (l *RateLimit) bucket(r *http.Request, d *delivery, name, def string) string {
	key := def
	if l.Key != "" {
		key = replace(r, l.Key)
	}
	if key == "" {
		d.emptyKeys = append(d.emptyKeys, name)
		return emptyKeyBucket
	}
	return key
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
	// StoreStatus widens which upstream answers are final and stored for
	// replay: status codes ("409") or classes ("4xx"). Every other answer
	// releases the claim, so that a 404 or 401 from an app being deployed
	// does not turn the provider's retries into replays of that error.
	// 5xx, 408 and 429 always release. Default: none beyond 2xx, which is
	// always stored.
	StoreStatus []string `json:"store_status,omitempty"`

	stored statusSet
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
	// pin is how long a release keeps the payload's fingerprint: the
	// retention where the signature does not cover the whole body, so
	// that a captured signature cannot take a released key with another
	// payload; zero otherwise.
	pin time.Duration
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
	key := h.FloodLimit.bucket(r, d, "flood_limit", replace(r, "{http.vars.client_ip}"))
	a := store.Admission{Source: "flood:" + h.source(), RateKey: key, Limit: h.FloodLimit.limit()}
	res, err := h.app.flood.Admit(r.Context(), a)
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
	if h.unkeyed(a, d) {
		d.outcome, d.reason, d.status = outcomeRefused, "unsigned_event_id", http.StatusBadRequest
		writeProblem(w, http.StatusBadRequest, "unsigned_event_id", "this route deduplicates on the signed event id, and no signature covers one in this delivery", 0)
		return nil, true
	}
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
		c := &claim{source: a.Source, key: a.IdemKey, owner: a.Owner, retention: retention}
		if d.coverage != provider.BodyWhole {
			c.pin = retention
		}
		return c, false
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

// unkeyed says that a delivery would go through unchecked although the
// route deduplicates on the signed id: its signature covers no id and
// not the whole body either, so whoever holds a captured delivery could
// reshape it this way (an Adyen item sent as a batch of copies) as often
// as they like. Where the whole body is signed, only the provider can
// send an event without an id.
func (h *Handler) unkeyed(a store.Admission, d *delivery) bool {
	return a.IdemKey == "" && h.Idempotency != nil && h.Idempotency.Key == "" && d.coverage != provider.BodyWhole
}

// admission is what admit asks of the store, and how long a claim it
// takes keeps its answer.
func (h *Handler) admission(r *http.Request, d *delivery) (store.Admission, time.Duration) {
	a := store.Admission{Source: h.source()}
	if rl := h.RateLimit; rl != nil {
		a.RateKey, a.Limit = rl.bucket(r, d, "rate_limit", h.source()), rl.limit()
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
// so that the provider's retry gets through.
func (h *Handler) finish(r *http.Request, d *delivery, c *claim, rec *recorder, upstreamErr error) {
	if shouldRelease(rec.status, upstreamErr, h.storedStatus()) {
		h.release(r, d, c)
		return
	}
	resp := store.Response{Status: rec.status, Header: rec.header}
	if !rec.overflow {
		resp.Body = rec.body.Bytes()
	}
	h.complete(r, d, c, resp)
}

// release gives the claim up, so that the provider's retry gets through.
// Like complete, it runs detached from the client's context: a provider
// that hangs up must not leave a claim stuck until its lease runs out.
func (h *Handler) release(r *http.Request, d *delivery, c *claim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), finishTimeout)
	defer cancel()
	if err := h.app.shared.Release(ctx, c.source, c.key, c.owner, c.pin); err != nil {
		h.metrics.storeError(d.provider, "release")
		h.logger.Error("releasing idempotency claim", zap.String("provider", d.provider), zap.String("event_id", d.eventID), zap.Error(err))
	}
	d.released = true
}

// complete stores the answer a redelivery of the event gets.
func (h *Handler) complete(r *http.Request, d *delivery, c *claim, resp store.Response) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), finishTimeout)
	defer cancel()
	err := h.app.shared.Complete(ctx, c.source, c.key, c.owner, resp, c.retention)
	if err != nil {
		h.metrics.storeError(d.provider, "complete")
		level := h.logger.Error
		if errors.Is(err, store.ErrClaimLost) {
			level = h.logger.Warn
		}
		level("storing the answer", zap.String("provider", d.provider), zap.String("event_id", d.eventID), zap.Error(err))
	}
}

// renew keeps the claim's lease ahead of a slow upstream: every third of
// the lease its owner extends it, so that a redelivery meanwhile gets 409
// rather than a second forward, while a gateway that dies still frees the
// event within one lease. stop ends the renewals and waits for one under
// way, so that none runs once the claim is settled.
func (h *Handler) renew(r *http.Request, d *delivery, c *claim) (stop func()) {
	lease := h.lease()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), lease/3)
			err := h.app.shared.Extend(ctx, c.source, c.key, c.owner, lease)
			cancel()
			if err != nil {
				h.metrics.storeError(d.provider, "extend")
				h.logger.Warn("extending idempotency claim", zap.String("provider", d.provider), zap.String("event_id", d.eventID), zap.Error(err))
				if errors.Is(err, store.ErrClaimLost) {
					return
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// shouldRelease says whether the upstream's answer means the event was
// not handled and the provider's retry must get through: anything but a
// 2xx or a status the route chose to store.
func shouldRelease(status int, err error, stored statusSet) bool {
	switch {
	case err != nil || status == 0 || alwaysRetried(status):
		return true
	case status >= 200 && status <= 299:
		return false
	}
	return !stored.has(status)
}

// storedStatus is store_status: nothing beyond 2xx for a claim taken
// without idempotency (a nonce's).
func (h *Handler) storedStatus() statusSet {
	if h.Idempotency == nil {
		return nil
	}
	return h.Idempotency.stored
}

// alwaysRetried are the answers that say "not now" whatever the route
// stores: storing one would refuse every retry for the retention.
func alwaysRetried(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// statusSet is the store_status list: single codes and whole classes.
type statusSet []statusRange

type statusRange struct{ lo, hi int }

func (s statusSet) has(status int) bool {
	for _, r := range s {
		if status >= r.lo && status <= r.hi {
			return true
		}
	}
	return false
}

// parseStatusSet reads codes ("409") and classes ("4xx"). It refuses
// what could never be stored (1xx) and what must always release.
func parseStatusSet(specs []string) (statusSet, error) {
	set := make(statusSet, 0, len(specs))
	for _, spec := range specs {
		r, err := parseStatusRange(spec)
		if err != nil {
			return nil, err
		}
		set = append(set, r)
	}
	return set, nil
}

func parseStatusRange(spec string) (statusRange, error) {
	bad := func(why string) (statusRange, error) {
		return statusRange{}, fmt.Errorf("store_status %q: %s", spec, why)
	}
	if len(spec) != 3 || spec[0] < '1' || spec[0] > '9' {
		return bad("want a status code such as 409 or a class such as 4xx")
	}
	if class := strings.ToLower(spec[1:]); class == "xx" {
		lo := int(spec[0]-'0') * 100
		if lo < 200 || lo >= 500 {
			return bad("only 2xx, 3xx and 4xx answers can be stored")
		}
		return statusRange{lo, lo + 99}, nil
	}
	code, err := strconv.Atoi(spec)
	switch {
	case err != nil:
		return bad("want a status code such as 409 or a class such as 4xx")
	case code < 200:
		return bad("a 1xx answer is not final")
	case alwaysRetried(code):
		return bad("5xx, 408 and 429 always release the claim, so that the provider retries")
	}
	return statusRange{code, code}, nil
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

// provisionState prepares the idempotency options for the request path.
func (h *Handler) provisionState() error {
	idem := h.Idempotency
	if idem == nil {
		return nil
	}
	var err error
	if idem.stored, err = parseStatusSet(idem.StoreStatus); err != nil {
		return fmt.Errorf("idempotency: %w", err)
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
