package caddymodule

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// testClock, when set, replaces the wall clock, so that tests can replay
// signed vectors at the time they were signed.
var testClock atomic.Pointer[func() time.Time]

func now() time.Time {
	if f := testClock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// Handler verifies one provider's webhooks and hands verified deliveries,
// byte for byte, to the next handler (usually reverse_proxy). Everything
// else gets a problem+json refusal and never reaches the next handler.
type Handler struct {
	// Provider names the sender: a built-in provider (list them with
	// `webhook-gateway providers`) or, when a generic scheme such as HMAC
	// is given, a name of your choosing for logs and placeholders.
	// Required.
	Provider string `json:"provider"`

	// HMAC describes a generic HMAC scheme for a sender that is not built
	// in. It cannot be combined with a built-in provider's name.
	HMAC *provider.HMAC `json:"hmac,omitempty"`

	// Token describes a sender that is not built in and proves itself
	// with a static secret (a header it sends as configured, a query
	// parameter, or basic auth) rather than a signature: nothing covers
	// the body, so only TLS and the token's secrecy protect the route.
	// It cannot be combined with HMAC or a built-in provider's name.
	Token *provider.Token `json:"token,omitempty"`

	// Secrets verify signatures. Several are tried in order, so a new
	// secret can be added before the old one is retired. {env.NAME} and
	// {file./path} placeholders are resolved once, at provision time.
	// Required, except by a provider whose handshake hands the secret to
	// the app (Asana): until it is set, every delivery is refused.
	Secrets []string `json:"secrets,omitempty"`

	// Tolerance bounds the distance between a delivery's signed timestamp
	// and the gateway's clock, both ways. Default: the provider's documented
	// value, else 5m for any scheme that signs a time. Negative: no check.
	Tolerance caddy.Duration `json:"tolerance,omitempty"`

	// PublicURL is the URL the provider was told to call, for providers
	// that sign it. Default: the URL of the request as received, before
	// any rewrite, with the scheme from the connection. Only its scheme,
	// host and path are used: the query is always the request's.
	PublicURL string `json:"public_url,omitempty"`

	// MaxBody caps the request body in bytes; a larger one gets 413
	// without being read whole. Default: 1048576 (1 MiB).
	MaxBody int64 `json:"max_body,omitempty"`

	// Methods lists the methods deliveries may use. Default: ["POST"].
	Methods []string `json:"methods,omitempty"`

	// EventID says where the event's id is read, first found wins.
	// Default: the provider's.
	EventID []provider.Field `json:"event_id,omitempty"`

	// EventType says where the event's type is read. Default: the
	// provider's.
	EventType []provider.Field `json:"event_type,omitempty"`

	// RefusalStatus is the status of a refused verification. Default: the
	// provider's requirement, else 401.
	RefusalStatus int `json:"refusal_status,omitempty"`

	// VerifyToken is the token a provider's unsigned subscription
	// challenge must carry (Meta's hub.verify_token).
	VerifyToken string `json:"verify_token,omitempty"`

	// WebhookID is the provider's id for this subscription, for
	// providers that sign it (PayPal). Placeholders are resolved at
	// provision time.
	WebhookID string `json:"webhook_id,omitempty"`

	// Topics lists the AWS SNS topic ARNs the route accepts: a message
	// from another topic is refused before its certificate is fetched,
	// and only these topics' subscriptions are confirmed. Required by
	// sns.
	Topics []string `json:"topics,omitempty"`

	// Audience is the aud claim a Google Pub/Sub push token must carry,
	// as set on the push subscription. Default: the request's public
	// URL (see PublicURL).
	Audience string `json:"audience,omitempty"`

	// ServiceAccount is the email of the service account a Google
	// Pub/Sub push subscription signs its tokens as; tokens of any other
	// account are refused.
	ServiceAccount string `json:"service_account,omitempty"`

	// ClientID is the account's client_id at a key API that needs one
	// (Plaid's; the route's secret is the API secret).
	ClientID string `json:"client_id,omitempty"`

	// KeysURL replaces the provider's own key location (a JWKS URL, an
	// API's base URL), for a test or a regional endpoint. Its host must
	// be in the app's key_fetch allow list.
	KeysURL string `json:"keys_url,omitempty"`

	// Source names this sender in the state store: rate-limit buckets
	// and idempotency keys live under it. Default: the provider name.
	Source string `json:"source,omitempty"`

	// RateLimit limits verified deliveries, shared by every instance on
	// the same Redis. Refusals get 429 with Retry-After.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`

	// FloodLimit limits requests per client IP before the body is read
	// or verified. It is kept in each instance's memory on purpose: a
	// flood of forgeries must not load Redis.
	FloodLimit *RateLimit `json:"flood_limit,omitempty"`

	// Idempotency deduplicates deliveries by event id.
	Idempotency *Idempotency `json:"idempotency,omitempty"`

	// OnStoreError says what happens when the state store fails: reject
	// (503 with Retry-After) or allow (forward unchecked, with a warning
	// logged and counted). Default: reject.
	OnStoreError string `json:"on_store_error,omitempty"`

	// StoreTimeout bounds each store call made while the client waits.
	// Default: 500ms.
	StoreTimeout caddy.Duration `json:"store_timeout,omitempty"`

	// LogBody adds up to this many bytes of each delivery's body to its
	// log line, for debugging a route. Bodies carry customer data, so
	// the default is 0: never. Signatures inside the body (Mailgun,
	// Adyen, Braintree) are redacted.
	LogBody int64 `json:"log_body,omitempty"`

	// KeepCredentials forwards the static tokens a provider sends as its
	// proof (X-Gitlab-Token, X-Telegram-Bot-Api-Secret-Token,
	// Cf-Webhook-Auth, basic auth, Mailchimp's ?secret=), for an app that
	// checks them itself. Default: false, they are removed once verified,
	// so that the secret stays at the gateway. Signatures are forwarded
	// either way: they reveal no secret.
	KeepCredentials bool `json:"keep_credentials,omitempty"`

	// Queue makes delivery durable: a verified, admitted delivery is
	// stored and the provider answered at once (Queue.Answer, with a
	// JSON body naming the delivery id), and the webhook_gateway app's
	// workers deliver it to Queue.To, retrying until the app answers
	// 2xx. The queue's name is Source. The next handler is not called
	// for a queued delivery. Providers that act on the answer (Discord
	// interactions, Twilio, Slack commands) cannot be queued.
	// Default: none, the delivery goes to the next handler at once.
	Queue *queue.Config `json:"queue,omitempty"`

	app      *App
	provider *provider.Provider
	verifier provider.Verifier
	secrets  []string
	topics   []string           // Topics with placeholders resolved
	keys     provider.KeySource // the app's key fetcher
	methods  []string
	logger   *zap.Logger
	metrics  *metrics
	queue    *runningQueue // with a queue block: where deliveries go
	// handshakeUpstream, in a queued route, takes the handshakes that
	// only the app can answer, in place of the next handler.
	handshakeUpstream caddyhttp.Handler

	// credentials are the request parts that carry the scheme's token
	// or signatures, read once from its description.
	credentials provider.Credentials
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_gateway",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves the provider and the secrets and builds the verifier.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := ctx.App(appName)
	if err != nil {
		return fmt.Errorf("loading webhook_gateway app: %w", err)
	}
	h.app = app.(*App)
	p, err := h.resolveProvider()
	if err != nil {
		return err
	}
	h.provider = p
	if err := h.checkIdempotencyKey(p); err != nil {
		return err
	}
	h.credentials = p.Describe().Credentials
	if err := h.checkKeyOptions(p); err != nil {
		return err
	}
	if err := h.resolvePlaceholders(); err != nil {
		return fmt.Errorf("provider %s: %w", h.Provider, err)
	}
	h.keys = h.app.keys
	h.verifier, err = p.NewVerifier(h.verifierConfig(h.secrets, h.keys))
	if err != nil {
		return err
	}
	h.methods = h.allowedMethods()
	if err := h.provisionState(); err != nil {
		return err
	}
	if err := h.provisionQueue(); err != nil {
		return err
	}
	if h.metrics, err = registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	return nil
}

// resolveProvider finds the built-in provider or builds one from a
// generic scheme.
func (h *Handler) resolveProvider() (*provider.Provider, error) {
	if h.Provider == "" {
		return nil, fmt.Errorf("provider is required")
	}
	builtin, known := provider.Lookup(h.Provider)
	if !h.hasCustomScheme() {
		if !known {
			return nil, fmt.Errorf("unknown provider %q (run `webhook-gateway providers` for the list, or describe it with a scheme block)", h.Provider)
		}
		return builtin, nil
	}
	if known {
		return nil, fmt.Errorf("provider %q is built in; give a generic scheme another name", h.Provider)
	}
	if h.HMAC != nil && h.Token != nil {
		return nil, fmt.Errorf("provider %s: one scheme block only (hmac or token)", h.Provider)
	}
	if h.Token != nil {
		if err := h.Token.Validate(); err != nil {
			return nil, fmt.Errorf("provider %s: %w", h.Provider, err)
		}
		return &provider.Provider{Name: h.Provider, Scheme: h.Token}, nil
	}
	if err := h.HMAC.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", h.Provider, err)
	}
	p := &provider.Provider{Name: h.Provider, Scheme: h.HMAC}
	if h.HMAC.HasTimestamp() {
		p.Tolerance = 5 * time.Minute
	}
	for _, name := range h.HMAC.IDHeader {
		p.EventID = append(p.EventID, provider.Field{Header: name})
	}
	return p, nil
}

// hasCustomScheme says whether the route describes its sender with a
// scheme block instead of naming a built-in provider.
func (h *Handler) hasCustomScheme() bool { return h.HMAC != nil || h.Token != nil }

// resolveSecrets expands placeholders once, so that a secret file or
// variable is read at start-up and a missing one fails the config.
func resolveSecrets(raw []string) ([]string, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("no secret configured")
	}
	return resolveOptions("secret", raw)
}

// resolvePlaceholders expands {env.*} and {file.*} in every option that
// holds a secret or an address, before anything validates or uses them.
func (h *Handler) resolvePlaceholders() error {
	var err error
	if h.secrets, err = resolveSecrets(h.Secrets); err != nil && (len(h.Secrets) > 0 || needsSecret(h)) {
		return err
	}
	if err := h.resolveKeyOptions(); err != nil {
		return err
	}
	options := []struct {
		name  string
		value *string
	}{{"verify_token", &h.VerifyToken}, {"webhook_id", &h.WebhookID}, {"public_url", &h.PublicURL}}
	for _, o := range options {
		if *o.value, err = resolveOption(o.name, *o.value); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) allowedMethods() []string {
	methods := h.Methods
	if len(methods) == 0 {
		methods = []string{http.MethodPost}
	}
	methods = slices.Clone(methods)
	if hs := h.provider.Handshake; hs != nil {
		methods = append(methods, hs.Methods()...)
	}
	for i, m := range methods {
		methods[i] = strings.ToUpper(m)
	}
	slices.Sort(methods)
	return slices.Compact(methods)
}

// Validate checks what Provision cannot fix.
func (h *Handler) Validate() error {
	if h.MaxBody < 0 || h.LogBody < 0 {
		return fmt.Errorf("max_body and log_body must not be negative")
	}
	if err := checkRefusalStatus(h.RefusalStatus); err != nil {
		return err
	}
	return h.validateState()
}

// checkRefusalStatus refuses a status that would tell the provider a
// refused delivery arrived, or that it may retry a forgery forever; 0
// means the default.
func checkRefusalStatus(s int) error {
	if s != 0 && (s < 400 || s > 499) {
		return fmt.Errorf("refusal_status %d is not a 4xx status", s)
	}
	return nil
}

func (h *Handler) maxBody() int64 {
	if h.MaxBody > 0 {
		return h.MaxBody
	}
	return defaultMaxBody
}

func (h *Handler) refusalStatus() int {
	switch {
	case h.RefusalStatus != 0:
		return h.RefusalStatus
	case h.provider.RefusalStatus != 0:
		return h.provider.RefusalStatus
	}
	return http.StatusUnauthorized
}

func (h *Handler) eventFields(p *provider.Provider) (id, typ []provider.Field) {
	id, typ = h.EventID, h.EventType
	if len(id) == 0 {
		id = p.EventID
	}
	if len(typ) == 0 {
		typ = p.EventType
	}
	return id, typ
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
