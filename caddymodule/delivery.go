package caddymodule

import (
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// delivery accumulates what the log line and the metrics say about one
// request. It holds no secret and no body.
type delivery struct {
	start         time.Time
	provider      string
	eventID       string
	signedID      string            // eventID when the signature covers it
	nonce         string            // the signed single-use value, if any
	bodySHA256    string            // hex, set once verified
	coverage      provider.Coverage // how much of the body the signature covered
	eventType     string
	outcome       string
	reason        string
	status        int
	bytes         int64
	body          []byte // only with log_body: the logged prefix
	upstreamBytes int64
	err           error
	storeErr      error
	unchecked     bool     // forwarded without the store, per on_store_error allow
	released      bool     // the claim was released for the provider's retry
	emptyKeys     []string // limits whose key resolved to empty (shared bucket)
	deliveryID    string   // the queued event's id
}

// logDelivery writes the delivery's single log line and counts it.
func (h *Handler) logDelivery(d *delivery) {
	elapsed := now().Sub(d.start)
	h.metrics.observe(d, elapsed)
	fields := []zap.Field{
		zap.String("provider", d.provider),
		zap.String("event_id", d.eventID),
		zap.String("event_type", d.eventType),
		zap.String("outcome", d.outcome),
		zap.Int("status", d.status),
		zap.Int64("bytes", d.bytes),
		zap.Duration("duration", elapsed),
	}
	if d.eventID != "" {
		fields = append(fields, zap.Bool("event_id_signed", d.signedID != ""))
	}
	if d.deliveryID != "" {
		fields = append(fields, zap.String("delivery_id", d.deliveryID))
	}
	if d.reason != "" {
		fields = append(fields, zap.String("reason", d.reason))
	}
	if d.body != nil {
		fields = append(fields, zap.ByteString("body", d.body))
	}
	if d.outcome == outcomeForwarded {
		fields = append(fields, zap.Int("upstream_status", d.status), zap.Int64("upstream_bytes", d.upstreamBytes))
	}
	if d.err != nil {
		fields = append(fields, zap.Error(d.err))
	}
	if d.storeErr != nil {
		fields = append(fields, zap.NamedError("store_error", d.storeErr))
	}
	if d.unchecked {
		fields = append(fields, zap.Bool("unchecked", true))
	}
	if d.released {
		fields = append(fields, zap.Bool("claim_released", true))
	}
	if d.emptyKeys != nil {
		fields = append(fields, zap.Strings("empty_limit_key", d.emptyKeys))
	}
	switch {
	case d.err != nil || d.status >= 500 || d.storeErr != nil:
		h.logger.Error("delivery", fields...)
	case d.outcome == outcomeRefused:
		h.logger.Warn("delivery", fields...)
	default:
		h.logger.Info("delivery", fields...)
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
