package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Client is a go-redis client that counts its commands, so tests and
// metrics can hold the gateway to its round-trip budget.
type Client struct {
	rdb   redis.UniversalClient
	opts  *redis.UniversalOptions
	trips atomic.Uint64

	// blocking is a second pool, made on first use from the same
	// options, for commands that wait on the server (XREAD BLOCK): they
	// hold a connection for as long as they wait, and must never take
	// the ones intake needs.
	blockingOnce sync.Once
	blocking     redis.UniversalClient
}

// NewClient connects lazily: nothing is dialled until the first
// command, so a gateway can start while Redis is briefly away. The
// caller owns the client and closes it; see Acquire for a shared one.
func NewClient(cfg Config) (*Client, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, fmt.Errorf("configuring redis: %w", err)
	}
	c := &Client{rdb: redis.NewUniversalClient(opts), opts: opts}
	c.rdb.AddHook(counter{&c.trips})
	return c, nil
}

// Blocking is the client for commands that wait on the server: its own
// connections, the same servers, counted with the rest.
func (c *Client) Blocking() redis.UniversalClient {
	c.blockingOnce.Do(func() {
		c.blocking = redis.NewUniversalClient(c.opts)
		c.blocking.AddHook(counter{&c.trips})
	})
	if c.blocking == nil {
		return c.rdb // closed before first use: fails as closed
	}
	return c.blocking
}

// IsCluster reports whether the client talks to a Redis Cluster, where
// a command's keys must share one slot.
func (c *Client) IsCluster() bool {
	_, ok := c.rdb.(*redis.ClusterClient)
	return ok
}

// Redis is the underlying client, for other features (future delivery
// workers) to share the same connections.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// RoundTrips is how many commands (pipelines count once) have been
// sent. A script that falls back from EVALSHA to EVAL counts twice,
// which is what it costs.
func (c *Client) RoundTrips() uint64 { return c.trips.Load() }

// Close closes the connections, the blocking ones too.
func (c *Client) Close() error {
	err := c.rdb.Close()
	c.blockingOnce.Do(func() {}) // no blocking client after Close
	if c.blocking != nil {
		err = errors.Join(err, c.blocking.Close())
	}
	return err
}

// counter is a go-redis hook counting commands and pipelines. Retries
// inside go-redis are not seen; they are rare and not what the budget
// is about.
type counter struct{ n *atomic.Uint64 }

func (h counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// Interface guard
var _ redis.Hook = counter{}
