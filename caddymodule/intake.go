package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/redisstore"
	"github.com/webrev/webhook-gateway/caddymodule/store"
)

const (
	outcomeQueued = "queued"

	// enqueueTimeout bounds storing an event while the provider waits
	// (a replicated queue waits for its replica within it).
	enqueueTimeout = 5 * time.Second
	// fullRetryAfter is when a provider refused for a full queue is
	// asked to come back: the app has a backlog to work through.
	fullRetryAfter = 60 * time.Second
)

// enqueue stores a verified, admitted delivery and answers the provider
// at once; the app's workers deliver it. A 2xx is only ever sent for an
// event that is stored: when the backend refuses or fails, the provider
// is told to retry (see settleRefused for its claim). A claim held is completed
// with the answer, so a redelivery is answered from the store with the
// same delivery id and never queued twice.
func (h *Handler) enqueue(w http.ResponseWriter, r *http.Request, d *delivery, c *claim, body []byte) error {
	ev := h.event(r, d, body)
	if c != nil {
		// Should this gateway die before the claim records the answer,
		// the provider's retry finds the event stored under this key.
		ev.DedupKey = c.key
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), enqueueTimeout)
	err := h.queue.backend.Enqueue(ctx, h.queue.spec, ev)
	cancel()
	if err != nil {
		h.settleRefused(r, d, c, ev.ID, err)
		return h.refuseEnqueue(w, d, err)
	}
	d.outcome, d.deliveryID = outcomeQueued, ev.ID
	resp := queuedAnswer(ev.ID, h.Queue.Answer)
	if c != nil {
		h.complete(r, d, c, resp)
	}
	d.status = resp.Status
	hdr := w.Header()
	for k, vs := range resp.Header {
		hdr[k] = vs
	}
	hdr.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, err = w.Write(resp.Body)
	return err
}

// settleRefused settles the claim of an event the provider is refused:
// released, so that its retry is queued, unless the event was stored
// all the same (on a primary no replica acknowledged, which delivers
// it): then the retry is answered with its delivery id, not queued
// again under another.
func (h *Handler) settleRefused(r *http.Request, d *delivery, c *claim, id string, err error) {
	if c == nil {
		return
	}
	if errors.Is(err, redisstore.ErrNotReplicated) {
		d.deliveryID = id
		h.complete(r, d, c, queuedAnswer(id, h.Queue.Answer))
		return
	}
	h.release(r, d, c)
}

// event is the delivery as the queue keeps it: the request as verified,
// with the headers the app would get from the synchronous path. Its
// event id and type are what the log line shows, signed or not, so an
// operator can find a delivery by the id the provider's dashboard gives;
// the app's Webhook-Gateway-* headers still carry only signed values.
func (h *Handler) event(r *http.Request, d *delivery, body []byte) *queue.Event {
	ev := &queue.Event{
		ID:        queue.NewID(d.start),
		Queue:     h.queue.spec.Name,
		Provider:  d.provider,
		EventID:   d.eventID,
		EventType: d.eventType,
		Method:    r.Method,
		// Hop-by-hop headers and forged copies of an attempt's own are
		// dropped by each attempt. Enqueue copies the headers and the
		// body (still the pooled buffer) before it returns.
		Header:     r.Header,
		Body:       body,
		ReceivedAt: d.start,
		Status:     queue.StatusQueued,
		Budget:     h.queue.spec.Attempts,
	}
	if h.Queue.Order != "" {
		ev.OrderKey = replace(r, h.Queue.Order)
	}
	return ev
}

// queuedAnswer is the provider's answer for a stored event; a
// redelivery gets it again from the idempotency store.
func queuedAnswer(id string, status int) store.Response {
	body, _ := json.Marshal(struct {
		DeliveryID string `json:"delivery_id"`
		Status     string `json:"status"`
	}{id, string(queue.StatusQueued)})
	return store.Response{
		Status: status,
		Header: http.Header{
			"Content-Type":         {"application/json"},
			"Cache-Control":        {"no-store"},
			queue.HeaderDeliveryID: {id},
		},
		Body: body,
	}
}

// refuseEnqueue answers 503 for an event the queue did not store, so
// that the provider retries it later.
func (h *Handler) refuseEnqueue(w http.ResponseWriter, d *delivery, err error) error {
	reason, detail, retry := "queue_unavailable", "the delivery queue is unavailable; retry later", storeRetryAfter
	if errors.Is(err, queue.ErrFull) {
		reason, detail, retry = "queue_full", "the delivery queue is full; retry later", fullRetryAfter
	} else {
		d.storeErr = err
		h.metrics.storeError(d.provider, "enqueue")
	}
	d.outcome, d.reason, d.status = outcomeRefused, reason, http.StatusServiceUnavailable
	writeProblem(w, http.StatusServiceUnavailable, reason, detail, retry)
	return nil
}
