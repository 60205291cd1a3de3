package queue

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/http/httpguts"
)

// Config is a handler's `queue` block: with it, the handler stores a
// verified, admitted delivery and answers the provider at once, and the
// webhook_gateway app's workers deliver it to To.
type Config struct {
	// To is where events are delivered: an http or https URL. The app
	// receives the original method, this URL's path and query, the body
	// byte for byte and the provider's headers. Required.
	To string `json:"to"`

	// Timeout bounds one attempt, from dialling to the end of the
	// answer. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Attempts is how many attempts an event gets before it is dead.
	// Default: 12.
	Attempts int `json:"attempts,omitempty"`
	// FirstDelay is the delay after the first failed attempt; each
	// later one doubles it, up to MaxDelay, with ±20% jitter.
	// Default: 5s.
	FirstDelay caddy.Duration `json:"first_delay,omitempty"`
	// MaxDelay is the largest delay between two attempts. Default: 6h.
	MaxDelay caddy.Duration `json:"max_delay,omitempty"`
	// Schedule, instead of FirstDelay and MaxDelay, lists the delays
	// after each failed attempt (jittered ±20%); the last one repeats
	// until the attempts run out. Default: none.
	Schedule []caddy.Duration `json:"schedule,omitempty"`
	// DeadOn lists statuses that end delivery at once, besides 410 Gone,
	// which always does. Every other failure (a connection error, a
	// timeout, any other non-2xx: a 404 during a deploy) is retried.
	DeadOn []int `json:"dead_on,omitempty"`

	// Concurrency bounds the attempts in flight to To, across every
	// instance sharing the store. Default: 16.
	Concurrency int `json:"concurrency,omitempty"`
	// Rate bounds the attempts per period to To, across every instance
	// sharing the store (GCRA: evenly paced, with Burst at once).
	// Default: none.
	Rate *Rate `json:"rate,omitempty"`

	// Order, a placeholder resolved at intake (for example
	// {webhook.event_type}), makes delivery FIFO per key: one event of a
	// key in flight at a time, in the order of intake, even across
	// retries. Events whose key resolves to empty are not ordered.
	// Default: none (no order).
	Order string `json:"order,omitempty"`

	// Retention is how long a delivered event stays inspectable.
	// Default: 72h.
	Retention caddy.Duration `json:"retention,omitempty"`
	// DeadRetention is how long a dead event stays replayable.
	// Default: 336h (14 days).
	DeadRetention caddy.Duration `json:"dead_retention,omitempty"`
	// MaxQueued bounds the events not yet delivered or dead; at the
	// bound, intake answers 503 with Retry-After, so the provider
	// retries later. Default: 100000.
	MaxQueued int64 `json:"max_queued,omitempty"`
	// MaxQueuedBytes bounds their bodies and headers. Default: 1 GiB.
	MaxQueuedBytes int64 `json:"max_queued_bytes,omitempty"`
	// Partitions spreads the queue over this many Redis streams (and so
	// over Redis Cluster shards); events of one order key share one.
	// Default: 1.
	Partitions int `json:"partitions,omitempty"`

	// TLSCA is a PEM file of the authorities To's certificate may chain
	// to, instead of the system's.
	TLSCA string `json:"tls_ca,omitempty"`
	// TLSInsecureSkipVerify accepts any certificate from To. For tests
	// only.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`
	// HeaderUp sets headers on every attempt, like reverse_proxy's
	// header_up: a name and a value, which may use the placeholders of
	// the event ({webhook.provider}, {webhook.event_id},
	// {webhook.event_type}).
	HeaderUp []HeaderField `json:"header_up,omitempty"`

	// Answer is the status the provider gets once the event is stored,
	// with a small JSON body naming the delivery id. Default: 200.
	Answer int `json:"answer,omitempty"`

	// Durability is when the event counts as stored: "" (Redis has
	// it, with whatever persistence Redis is configured for) or
	// "replicated" (a replica acknowledged it too, with WAIT, before
	// the provider is answered; a timeout answers 503). Default: "".
	Durability string `json:"durability,omitempty"`
}

// Rate is Count attempts per Period, with up to Burst at once.
type Rate struct {
	Count  int64          `json:"count"`
	Period caddy.Duration `json:"period"`
	// Burst defaults to 1: attempts evenly paced.
	Burst int64 `json:"burst,omitempty"`
}

// HeaderField is one header_up line.
type HeaderField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Defaults of the queue block.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultAttempts       = 12
	DefaultFirstDelay     = 5 * time.Second
	DefaultMaxDelay       = 6 * time.Hour
	DefaultConcurrency    = 16
	DefaultRetention      = 72 * time.Hour
	DefaultDeadRetention  = 14 * 24 * time.Hour
	DefaultMaxQueued      = 100000
	DefaultMaxQueuedBytes = 1 << 30
	DefaultAnswer         = http.StatusOK

	// reclaimMargin is added to the attempt timeout before a lease left
	// unsettled is taken over: an attempt still running must never be
	// doubled (Svix PR #2181).
	reclaimMargin = 15 * time.Second

	// DefaultWaitTimeout bounds the wait for a replica with durability
	// replicated: a provider waits that much longer for its answer.
	DefaultWaitTimeout = time.Second
)

// Provision fills in the defaults; call it before Validate and Spec.
func (c *Config) Provision() {
	setDefault(&c.Timeout, caddy.Duration(DefaultTimeout))
	setDefault(&c.Attempts, DefaultAttempts)
	setDefault(&c.FirstDelay, caddy.Duration(DefaultFirstDelay))
	setDefault(&c.MaxDelay, caddy.Duration(DefaultMaxDelay))
	setDefault(&c.Concurrency, DefaultConcurrency)
	setDefault(&c.Retention, caddy.Duration(DefaultRetention))
	setDefault(&c.DeadRetention, caddy.Duration(DefaultDeadRetention))
	setDefault(&c.MaxQueued, DefaultMaxQueued)
	setDefault(&c.MaxQueuedBytes, DefaultMaxQueuedBytes)
	setDefault(&c.Partitions, 1)
	setDefault(&c.Answer, DefaultAnswer)
	if c.Rate != nil {
		setDefault(&c.Rate.Burst, 1)
	}
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	if err := validateTo(c.To); err != nil {
		return err
	}
	positive := []struct {
		name string
		ok   bool
	}{
		{"timeout", c.Timeout > 0},
		{"retry attempts", c.Attempts > 0},
		{"retry first delay", c.FirstDelay > 0},
		{"retry largest delay", c.MaxDelay >= c.FirstDelay},
		{"concurrency", c.Concurrency > 0},
		{"retention", c.Retention > 0},
		{"dead_retention", c.DeadRetention > 0},
		{"max_queued", c.MaxQueued > 0},
		{"max_queued_bytes", c.MaxQueuedBytes > 0},
		{"partitions", c.Partitions > 0 && c.Partitions <= 1024},
	}
	for _, p := range positive {
		if !p.ok {
			return fmt.Errorf("%s must be positive", p.name)
		}
	}
	for _, d := range c.Schedule {
		if d <= 0 {
			return fmt.Errorf("schedule delays must be positive")
		}
	}
	if c.Rate != nil && (c.Rate.Count <= 0 || c.Rate.Period <= 0 || c.Rate.Burst <= 0) {
		return fmt.Errorf("rate must be a positive count per positive period, with a positive burst")
	}
	for _, s := range c.DeadOn {
		if s < 100 || s > 599 || (s >= 200 && s < 300) {
			return fmt.Errorf("dead_on %d: not a failing HTTP status", s)
		}
	}
	if c.Answer < 200 || c.Answer > 299 {
		return fmt.Errorf("answer %d: the provider must be told the event was accepted, with a 2xx", c.Answer)
	}
	if c.Durability != "" && c.Durability != "replicated" {
		return fmt.Errorf("durability %q: want replicated or nothing", c.Durability)
	}
	for _, h := range c.HeaderUp {
		if !httpguts.ValidHeaderFieldName(h.Name) {
			return fmt.Errorf("header_up %q: not a header name", h.Name)
		}
	}
	return nil
}

func validateTo(to string) error {
	if to == "" {
		return fmt.Errorf("to is required")
	}
	u, err := url.Parse(to)
	if err != nil {
		return fmt.Errorf("to %q: %w", to, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("to %q: want an http or https URL with a host", to)
	}
	if u.User != nil {
		return fmt.Errorf("to %q: credentials in the URL would be sent with every attempt; use header_up", to)
	}
	return nil
}

// Spec is what the backend needs of the queue called name.
func (c *Config) Spec(name string) *Spec {
	s := &Spec{
		Name:           name,
		Partitions:     c.Partitions,
		Ordered:        c.Order != "",
		Attempts:       c.Attempts,
		ReclaimAfter:   time.Duration(c.Timeout) + reclaimMargin,
		Retention:      time.Duration(c.Retention),
		DeadRetention:  time.Duration(c.DeadRetention),
		MaxQueued:      c.MaxQueued,
		MaxQueuedBytes: c.MaxQueuedBytes,
	}
	if c.Durability == "replicated" {
		s.WaitReplicas, s.WaitTimeout = 1, DefaultWaitTimeout
	}
	return s
}
