package redisstore

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

// clients shares one Client among all users of an identical connection
// config. Caddy provisions a new config before cleaning up the old one,
// so across a reload the count never reaches zero and the connections
// survive.
var clients = caddy.NewUsagePool()

// Acquire returns the shared client for cfg, creating it on first use.
// Call release exactly once when done (more calls are ignored); the last
// release closes the client. Never Close a shared client directly.
//
// Configs are the same when their JSON is, ignoring KeyPrefix, which
// only changes key names: two sites with different prefixes on one
// server share connections.
func Acquire(cfg Config) (c *Client, release func() error, err error) {
	// Validate even when the client exists: another user's config
	// created it, and this one may still be wrong (say, its prefix).
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("configuring redis: %w", err)
	}
	key, err := poolKey(cfg)
	if err != nil {
		return nil, nil, err
	}
	v, _, err := clients.LoadOrNew(key, func() (caddy.Destructor, error) {
		c, err := NewClient(cfg)
		if err != nil {
			return nil, err
		}
		return pooled{c}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(pooled).Client, releaser(clients, key), nil
}

// releaser deletes key from pool once, however often it is called.
func releaser(pool *caddy.UsagePool, key string) func() error {
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() { _, err = pool.Delete(key) })
		return err
	}
}

// poolKey hashes the canonical JSON so the map does not hold passwords
// in plain text.
func poolKey(cfg Config) (string, error) {
	cfg.KeyPrefix = ""
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding redis config: %w", err)
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), nil
}

// pooled lets the pool close a client without giving Client an
// exported Destruct method that callers might misuse.
type pooled struct{ *Client }

func (p pooled) Destruct() error { return p.Close() }

// Interface guard
var _ caddy.Destructor = pooled{}
