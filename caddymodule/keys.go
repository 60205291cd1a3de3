package caddymodule

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/webrev/webhook-gateway/caddymodule/keyfetch"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// keyUnavailableRetry is the Retry-After of a delivery refused because
// its key could not be fetched: the delivery may be genuine, and a fetch
// that failed is tried again after keyfetch.FailureTTL at the latest.
const keyUnavailableRetry = 5 * time.Second

// provisionKeys builds the config's key fetcher, which every route whose
// provider fetches keys shares. Each config has its own: a reload starts
// with an empty cache, which costs one fetch per key still in use.
func (a *App) provisionKeys(ctx caddy.Context) error {
	var cfg keyfetch.Config
	if a.KeyFetch != nil {
		cfg = *a.KeyFetch
	}
	f, err := keyfetch.New(cfg)
	if err != nil {
		return fmt.Errorf("key_fetch: %w", err)
	}
	observe, err := registerKeyFetchMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		f.Close()
		return fmt.Errorf("registering key fetch metrics: %w", err)
	}
	a.keys = f.Observed(observe)
	a.releasers = append(a.releasers, func() error { f.Close(); return nil })
	return nil
}

// registerKeyFetchMetrics counts key fetches by provider and outcome
// (keyfetch.Outcome*).
func registerKeyFetchMetrics(reg *prometheus.Registry) (keyfetch.Observer, error) {
	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "webhook_gateway",
		Name:      "key_fetches_total",
		Help:      "Key fetches by provider and outcome (fetched, failed, cached, stale, failure_cached, refused, busy).",
	}, []string{"provider", "outcome"})
	if reg != nil {
		var err error
		if fetches, err = register(reg, fetches); err != nil {
			return nil, err
		}
	}
	return func(provider, outcome string) { fetches.WithLabelValues(provider, outcome).Inc() }, nil
}

// keyStringOptions are the single-valued route options that only
// providers whose keys are fetched read, by their config names.
func (h *Handler) keyStringOptions() []struct {
	name  string
	value *string
} {
	return []struct {
		name  string
		value *string
	}{{"audience", &h.Audience}, {"service_account", &h.ServiceAccount}, {"client_id", &h.ClientID}, {"keys_url", &h.KeysURL}}
}

// setKeyOptions names the key-fetch options the route sets
// (provider.Provider.Options spells them the same way).
func (h *Handler) setKeyOptions() []string {
	var set []string
	if len(h.Topics) > 0 {
		set = append(set, "topics")
	}
	for _, o := range h.keyStringOptions() {
		if *o.value != "" {
			set = append(set, o.name)
		}
	}
	return set
}

// checkKeyOptions refuses an option the provider does not read: set on
// the wrong route, it would look like a restriction that is not applied.
func (h *Handler) checkKeyOptions(p *provider.Provider) error {
	if opt := h.unreadKeyOption(p); opt != "" {
		return fmt.Errorf("provider %s does not read %s", p.Name, opt)
	}
	return nil
}

// unreadKeyOption is the first key-fetch option the route sets and its
// provider does not read, or "".
func (h *Handler) unreadKeyOption(p *provider.Provider) string {
	for _, name := range h.setKeyOptions() {
		if !slices.Contains(p.Options, name) {
			return name
		}
	}
	return ""
}

// resolveKeyOptions expands {env.*} and {file.*} in the key-fetch options.
func (h *Handler) resolveKeyOptions() error {
	var err error
	if h.topics, err = resolveOptions("topics", h.Topics); err != nil {
		return err
	}
	for _, o := range h.keyStringOptions() {
		if *o.value, err = resolveOption(o.name, *o.value); err != nil {
			return err
		}
	}
	return nil
}

// verifierConfig is what the route gives its provider's verifier.
func (h *Handler) verifierConfig(secrets []string, keys provider.KeySource) provider.VerifierConfig {
	return provider.VerifierConfig{
		Secrets:        secrets,
		Tolerance:      time.Duration(h.Tolerance),
		WebhookID:      h.WebhookID,
		Keys:           keys,
		KeysURL:        h.KeysURL,
		Topics:         h.topics,
		Audience:       h.Audience,
		ServiceAccount: h.ServiceAccount,
		ClientID:       h.ClientID,
	}
}

// needsSecret says whether a route must configure a secret: not when its
// provider's keys are fetched, nor while its secret awaits a handshake.
func needsSecret(h *Handler) bool {
	if !h.hasCustomScheme() {
		if p, ok := provider.Lookup(h.Provider); ok && p.Secretless {
			return false
		}
	}
	return !awaitsSecret(h)
}

// hasPlaceholder says whether any value is only known at provision.
func hasPlaceholder(values ...string) bool {
	return slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, "{") })
}
