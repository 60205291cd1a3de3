package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Client is a go-redis client that counts its commands, so tests and
// metrics can hold the gateway to its round-trip budget.
type Client struct {
	rdb   redis.UniversalClient
	trips atomic.Uint64
}

// NewClient connects lazily: nothing is dialled until the first
// command, so a gateway can start while Redis is briefly away. The
// caller owns the client and closes it; see Acquire for a shared one.
func NewClient(cfg Config) (*Client, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, fmt.Errorf("configuring redis: %w", err)
	}
	c := &Client{rdb: redis.NewUniversalClient(opts)}
	c.rdb.AddHook(counter{&c.trips})
	return c, nil
}

// Redis is the underlying client, for other features (future delivery
// workers) to share the same connections.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// RoundTrips is how many commands (pipelines count once) have been
// sent. A script that falls back from EVALSHA to EVAL counts twice,
// which is what it costs.
func (c *Client) RoundTrips() uint64 { return c.trips.Load() }

// Close closes the connections.
func (c *Client) Close() error { return c.rdb.Close() }

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
