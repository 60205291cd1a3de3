package caddymodule

import (
	"cmp"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/keyfetch"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/redisstore"
	"github.com/webrev/webhook-gateway/caddymodule/store"
)

const appName = "webhook_gateway"

func init() {
	// A pointer: App holds locks, which a value receiver would copy.
	caddy.RegisterModule(new(App))
}

// App is the gateway's global state, shared by every webhook_gateway
// handler of a config: the store that rate limits and deduplication use
// and, later, the delivery workers.
type App struct {
	// Redis makes rate limits and idempotency shared by every instance
	// that points at the same Redis. Absent: an in-memory store, which
	// is exact for one instance only.
	Redis *redisstore.Config `json:"redis,omitempty"`

	// MemoryMaxEntries bounds the in-memory store (rate_limit buckets
	// and claims together); the least recently written go first when it
	// is full. Default: 100000.
	MemoryMaxEntries int `json:"memory_max_entries,omitempty"`

	// MemoryMaxBytes bounds the in-memory store's estimated footprint,
	// stored answers included, with the same eviction order.
	// Default: 67108864 (64 MiB).
	MemoryMaxBytes int64 `json:"memory_max_bytes,omitempty"`

	// FloodMaxEntries bounds the flood_limit buckets, which every
	// instance keeps in memory apart from the store above: requests
	// counted there are not yet authenticated, so however many client
	// keys they bring, they can only evict each other, never a claim or
	// a stored answer. Default: 100000.
	FloodMaxEntries int `json:"flood_max_entries,omitempty"`

	// KeyFetch bounds and widens the fetches of keys that some providers
	// verify with (AWS SNS certificates, Google's JWKS, Plaid's keys).
	// Default: every default of keyfetch.Config; providers reach only
	// the hosts they name themselves.
	KeyFetch *keyfetch.Config `json:"key_fetch,omitempty"`

	redis  *redisstore.Config // Redis with its placeholders resolved
	shared store.Store        // Redis, or the memory store
	flood  *store.Memory
	queues queueRegistry
	// queueBackend keeps the queues' events: Redis, or process memory.
	queueBackend queue.Backend
	queueMetrics *queueMetrics
	pools        []heldPool // the pools this config holds, once started
	releasers    []func() error
	logger       *zap.Logger
	keys         provider.KeySource // the key fetcher, counting into this config's metrics
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  appName,
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens the stores. Both come from process-wide pools, so a
// config reload with the same settings keeps Redis connections and the
// memory store's contents.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.registerQueueGauges(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering the queue gauges: %w", err)
	}
	if err := a.provisionKeys(ctx); err != nil {
		return err
	}
	var err error
	if a.flood, err = a.acquireMemory("flood", store.MemoryConfig{MaxEntries: a.FloodMaxEntries}); err != nil {
		return err
	}
	if a.Redis == nil {
		local, err := a.acquireMemory("memory", store.MemoryConfig{MaxEntries: a.MemoryMaxEntries, MaxBytes: a.MemoryMaxBytes})
		if err != nil {
			a.Cleanup()
			return err
		}
		a.shared = local
		a.logger.Warn("no redis configured: rate limits and deduplication are kept in memory, per instance")
		return a.provisionQueues(ctx)
	}
	cfg, err := a.Redis.Resolve(resolveOption)
	if err != nil {
		a.Cleanup()
		return fmt.Errorf("redis: %w", err)
	}
	a.redis = &cfg
	rs, err := redisstore.Open(cfg)
	if err != nil {
		// Give back the flood store now: a config that fails to
		// provision may never be cleaned up.
		a.Cleanup()
		return fmt.Errorf("opening redis store: %w", err)
	}
	a.releasers = append(a.releasers, rs.Close)
	a.shared = rs
	return a.provisionQueues(ctx)
}

// provisionQueues opens the queues' backend and their metrics; the
// handlers register the queues themselves.
func (a *App) provisionQueues(ctx caddy.Context) error {
	var err error
	if a.queueMetrics, err = registerQueueMetrics(ctx.GetMetricsRegistry()); err != nil {
		a.Cleanup()
		return fmt.Errorf("registering queue metrics: %w", err)
	}
	if err := a.provisionQueueBackend(); err != nil {
		a.Cleanup()
		return err
	}
	return nil
}

// memories shares memory stores across config reloads.
var memories = caddy.NewUsagePool()

type pooledMemory struct{ *store.Memory }

func (pooledMemory) Destruct() error { return nil }

// acquireMemory returns the pooled memory store named role with cfg's
// bounds; each role has its own, so their budgets stay apart.
func (a *App) acquireMemory(role string, cfg store.MemoryConfig) (*store.Memory, error) {
	key := fmt.Sprintf("%s:%d:%d", role, cfg.MaxEntries, cfg.MaxBytes)
	v, err := a.acquirePooled(key, func() caddy.Destructor { return pooledMemory{store.NewMemory(cfg)} })
	if err != nil {
		return nil, fmt.Errorf("opening %s memory store: %w", role, err)
	}
	return v.(pooledMemory).Memory, nil
}

// acquirePooled returns what memories holds under key, made by open the
// first time, and gives it back when the app is cleaned up.
func (a *App) acquirePooled(key string, open func() caddy.Destructor) (any, error) {
	v, _, err := memories.LoadOrNew(key, func() (caddy.Destructor, error) { return open(), nil })
	if err != nil {
		return nil, err
	}
	a.releasers = append(a.releasers, func() error {
		_, err := memories.Delete(key)
		return err
	})
	return v, nil
}

// Validate checks the Redis settings as Provision resolved them; Caddy
// validates after provisioning.
func (a *App) Validate() error {
	if cfg := cmp.Or(a.redis, a.Redis); cfg != nil {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
	}
	if a.MemoryMaxEntries < 0 || a.MemoryMaxBytes < 0 || a.FloodMaxEntries < 0 {
		return fmt.Errorf("memory_max_entries, memory_max_bytes and flood_max_entries must not be negative")
	}
	return nil
}

// Start starts the workers of every queue, or keeps those the previous
// config ran for a queue that did not change.
func (a *App) Start() error { return a.startQueues() }

// Stop gives the workers back: those of a queue the next config does not
// run the same way are drained.
func (a *App) Stop() error { return a.stopQueues() }

// Cleanup gives the stores back to their pools; the last user of a
// Redis client closes it. Safe to call more than once, or without
// Provision.
func (a *App) Cleanup() error {
	var errs []error
	if err := a.stopQueues(); err != nil {
		errs = append(errs, err)
	}
	for _, release := range a.releasers {
		if err := release(); err != nil {
			errs = append(errs, err)
		}
	}
	a.releasers = nil
	if len(errs) > 0 {
		return fmt.Errorf("releasing stores: %v", errs)
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
