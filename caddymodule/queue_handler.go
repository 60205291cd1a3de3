package caddymodule

import (
	"fmt"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// checkQueueable refuses a queue for a provider that acts on the body
// of the answer: the gateway's "queued" would reach a user or a call in
// place of the app's reply.
func (h *Handler) checkQueueable(p *provider.Provider) error {
	if h.Queue == nil || p.AnswerMatters == "" {
		return nil
	}
	return fmt.Errorf("queue: %s cannot be queued: %s; forward it with reverse_proxy instead", p.Name, p.AnswerMatters)
}

// provisionQueue fills in the queue's defaults, checks them and
// registers the queue with the app, whose workers deliver it.
func (h *Handler) provisionQueue() error {
	cfg := h.Queue
	if cfg == nil {
		return nil
	}
	if err := h.checkQueueable(h.provider); err != nil {
		return err
	}
	cfg.Provision()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	q, err := h.app.registerQueue(h.source(), cfg, h.credentials)
	if err != nil {
		return err
	}
	h.queue = q
	return nil
}
