package redisstore

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

func acquire(t *testing.T, cfg Config) (*Client, func() error) {
	t.Helper()
	c, release, err := Acquire(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, release
}

func open(c *Client) bool {
	return !errors.Is(c.Redis().Ping(context.Background()).Err(), redis.ErrClosed)
}

func TestAcquire(t *testing.T) {
	srv := testredis.Start(t)
	base := Config{URL: srv.URL()}

	t.Run("identical configs share a client", func(t *testing.T) {
		a, releaseA := acquire(t, base)
		other := base
		other.KeyPrefix = "other"
		b, releaseB := acquire(t, other)
		if a != b {
			t.Fatal("two clients for one config")
		}
		must(t, releaseA())
		if !open(b) {
			t.Fatal("client closed while still in use")
		}
		must(t, releaseB())
		if open(b) {
			t.Error("last release left the client open")
		}
	})

	t.Run("different configs do not", func(t *testing.T) {
		a, releaseA := acquire(t, base)
		defer releaseA()
		other := base
		other.DB = 1
		b, releaseB := acquire(t, other)
		defer releaseB()
		if a == b {
			t.Error("configs for different databases share a client")
		}
	})

	t.Run("reload keeps the client", func(t *testing.T) {
		// Caddy provisions the new config before cleaning up the old.
		old, releaseOld := acquire(t, base)
		next, releaseNext := acquire(t, base)
		must(t, releaseOld())
		if old != next || !open(next) {
			t.Fatal("reload closed or replaced the client")
		}
		must(t, releaseNext())
		if open(next) {
			t.Error("client left open after the last config went")
		}
	})

	t.Run("release twice is harmless", func(t *testing.T) {
		_, releaseA := acquire(t, base)
		b, releaseB := acquire(t, base)
		must(t, releaseA())
		must(t, releaseA())
		if !open(b) {
			t.Fatal("second release of one user closed another's client")
		}
		must(t, releaseB())
	})

	t.Run("invalid config", func(t *testing.T) {
		if _, _, err := Acquire(Config{}); err == nil {
			t.Error("Acquire accepted an empty config")
		}
		_, release := acquire(t, base)
		defer release()
		bad := base
		bad.KeyPrefix = "{x}"
		if _, err := Open(bad); err == nil {
			t.Error("Open accepted a bad prefix because a client for the connection existed")
		}
	})

	t.Run("store close releases", func(t *testing.T) {
		s, err := Open(base)
		if err != nil {
			t.Fatal(err)
		}
		c := s.Client()
		must(t, s.Close())
		must(t, s.Close())
		if open(c) {
			t.Error("closing the only store left its client open")
		}
	})
}
