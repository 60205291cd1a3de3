package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// claimKey is the idempotency key of a delivery and how long its answer
// is kept. A signed nonce takes a claim with or without the idempotency
// option, since remembering it is what makes it single-use: it is kept at
// least as long as its timestamp verifies, both ways of the tolerance,
// and released like any claim when the upstream fails, so that the
// provider's own retry gets through. Otherwise the default key is the
// event id only where the signature covers it.
func (h *Handler) claimKey(r *http.Request, d *delivery) (key string, retention time.Duration) {
	idem := h.Idempotency
	if idem != nil {
		retention = durationOr(idem.Retention, defaultRetention)
	}
	switch {
	case d.nonce != "":
		return d.nonce, max(retention, h.nonceRetention())
	case idem == nil:
		return "", 0
	case idem.Key != "":
		return replace(r, idem.Key), retention
	}
	return d.signedID, retention
}

// nonceRetention spans every moment a nonce's signed timestamp verifies:
// from one tolerance before it to one after. Without a tolerance the
// timestamp bounds nothing, and the default retention is all there is.
func (h *Handler) nonceRetention() time.Duration {
	tol := time.Duration(h.Tolerance)
	if tol == 0 {
		tol = h.provider.DefaultTolerance()
	}
	if tol <= 0 {
		return defaultRetention
	}
	return 2 * tol
}

func (h *Handler) lease() time.Duration {
	if h.Idempotency == nil {
		return defaultLease
	}
	return durationOr(h.Idempotency.Lease, defaultLease)
}

// checkIdempotencyKey refuses a key that a replay could vary: the
// default key where it would be an id no signature covers, and a body
// hash where the signature does not cover the whole body. Whoever
// replays a captured delivery could vary either, and each replay would
// be forwarded as new.
func (h *Handler) checkIdempotencyKey(p *provider.Provider) error {
	if h.Idempotency == nil {
		return nil
	}
	d := p.Describe()
	if h.Idempotency.Key != "" {
		return checkBodyHashKey(h.Idempotency.Key, p.Name, d.Body)
	}
	ids, _ := h.eventFields(p)
	if defaultKeySigned(d.Replay, ids) {
		return nil
	}
	bodyHash := ""
	if d.Body == provider.BodyWhole {
		bodyHash = "set `key {webhook.body_sha256}` (identical bodies count as one event) or, "
	}
	return fmt.Errorf("idempotency: %s signs no event id, so the default key would let a replayed delivery through "+
		"with another id; %saccepting that risk, `key {webhook.event_id}`", p.Name, bodyHash)
}

// checkBodyHashKey refuses {webhook.body_sha256} in a key where the
// signature does not cover every byte of the body: a captured delivery
// re-encoded (a form's fields reordered, an unsigned field added) would
// verify with another hash.
func checkBodyHashKey(key, name string, body provider.Coverage) error {
	if body == provider.BodyWhole || !strings.Contains(key, "{webhook.body_sha256}") {
		return nil
	}
	return fmt.Errorf("idempotency: %s does not sign every byte of the body, so a replay can carry another {webhook.body_sha256}; "+
		"key on an id the provider signs instead", name)
}

// defaultKeySigned says whether the default key can be an id the
// signature covers: one the scheme signs itself, or one read from the
// body of a scheme whose signature covers a body (Identify then checks,
// per delivery, that it covered all of it).
func defaultKeySigned(replay string, ids []provider.Field) bool {
	switch replay {
	case provider.ReplayTimestampAndID, provider.ReplayID:
		return true
	case provider.ReplayNone:
		return false
	}
	if len(ids) == 0 {
		return false
	}
	for _, f := range ids {
		if f.JSON == "" {
			return false
		}
	}
	return true
}
