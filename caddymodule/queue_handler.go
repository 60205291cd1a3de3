package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
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
	if h.provider.SecretByHandshake() {
		h.handshakeUpstream, err = handshakeProxy(cfg)
	}
	return err
}

// handshakeProxy passes a handshake that only the app can answer
// (Asana's X-Hook-Secret) to the queue's app at once: a queued route
// has no upstream after it to take it, and the provider needs the
// app's own answer.
func handshakeProxy(cfg *queue.Config) (caddyhttp.Handler, error) {
	tlsConfig, err := cfg.ClientTLS()
	if err != nil {
		return nil, err
	}
	to, err := url.Parse(cfg.To)
	if err != nil {
		return nil, fmt.Errorf("queue: to: %w", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *to
			pr.Out.URL, pr.Out.Host = &u, ""
		},
		// Handshakes are rare: no connection outlives one, nor a config.
		Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true},
		// The log line of the delivery tells the status; the error
		// would name to, whose query may hold a token.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	timeout := time.Duration(cfg.Timeout)
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		rp.ServeHTTP(w, r.WithContext(ctx))
		return nil
	}), nil
}
