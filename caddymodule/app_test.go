package caddymodule

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/redisstore"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// TestAppLifecycleInAnyOrder: Caddy may clean up a config that failed
// half-way through provisioning, or twice; none of it may panic or
// release a pooled store more than once.
func TestAppLifecycleInAnyOrder(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	cases := []struct {
		name  string
		steps []string
	}{
		{"cleanup_before_provision", []string{"cleanup", "validate", "provision", "cleanup"}},
		{"cleanup_twice", []string{"provision", "cleanup", "cleanup"}},
		{"validate_first", []string{"validate", "provision", "validate", "cleanup"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &App{MemoryMaxEntries: 7}
			for _, step := range c.steps {
				var err error
				switch step {
				case "provision":
					err = a.Provision(ctx)
				case "validate":
					err = a.Validate()
				case "cleanup":
					err = a.Cleanup()
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			if n, _ := memories.References("memory:7:0"); n != 0 {
				t.Errorf("%d references to the memory store left after cleanup", n)
			}
		})
	}
}

// TestAppSharesTheMemoryStoreAcrossReloads: the new config provisions
// before the old one is cleaned up, so deduplication state survives.
func TestAppSharesTheMemoryStoreAcrossReloads(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	old, next := &App{MemoryMaxEntries: 9}, &App{MemoryMaxEntries: 9}
	if err := old.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := next.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if old.shared != next.shared || old.flood != next.flood {
		t.Fatal("a reload with the same settings got a new memory store")
	}
	if any(old.shared) == any(old.flood) {
		t.Fatal("flood buckets share the memory store of claims")
	}
	old.Cleanup()
	if n, _ := memories.References("memory:9:0"); n != 1 {
		t.Errorf("%d references after the old config's cleanup, want 1", n)
	}
	next.Cleanup()
}

func TestAppValidateNamesTheRedisProblem(t *testing.T) {
	a := &App{Redis: &redisstore.Config{Addresses: []string{"a:1", "b:2"}}}
	if err := a.Validate(); err == nil {
		t.Fatal("several addresses without cluster or sentinel_master validated")
	}
}

// TestAppFailedProvisionReleasesWhatItTook: a Redis config that cannot
// be opened must not leave the flood store referenced.
func TestAppFailedProvisionReleasesWhatItTook(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a := &App{FloodMaxEntries: 11, Redis: &redisstore.Config{URL: "redis://127.0.0.1:1/0?bad=query"}}
	if err := a.Provision(ctx); err == nil {
		t.Fatal("provisioned with a redis URL the store refuses")
	}
	if n, _ := memories.References("flood:11:0"); n != 0 {
		t.Errorf("%d references to the flood store after a failed provision", n)
	}
}

// TestAppResolvesRedisPlaceholders points every Redis option that names
// a server or holds a credential at a variable or a file, against a TLS
// server whose only user needs a password: the gateway connects with
// the resolved values, and Validate, which Caddy runs after Provision,
// judges those rather than the placeholders.
func TestAppResolvesRedisPlaceholders(t *testing.T) {
	srv := testredis.StartWith(t, testredis.Options{
		TLS:      true,
		Args:     []string{"--user", "default", "off", "--user", "gw", "on", ">gw-pass", "~*", "+@all"},
		Username: "gw", Password: "gw-pass",
	})
	pwFile := filepath.Join(t.TempDir(), "redis.pw")
	if err := os.WriteFile(pwFile, []byte("gw-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WG_T_REDIS_ADDR", srv.Addr)
	t.Setenv("WG_T_REDIS_USER", "gw")
	t.Setenv("WG_T_REDIS_SNI", "localhost")
	t.Setenv("WG_T_REDIS_CA", srv.CAFile)
	t.Setenv("WG_T_REDIS_URL", "rediss://gw:gw-pass@"+srv.Addr)
	cases := []struct {
		name string
		cfg  redisstore.Config
	}{
		{"url", redisstore.Config{URL: "{env.WG_T_REDIS_URL}", TLS: &redisstore.TLSConfig{CAFile: srv.CAFile}}},
		{"addresses_username_password_tls", redisstore.Config{
			Addresses: []string{"{env.WG_T_REDIS_ADDR}"},
			Username:  "{env.WG_T_REDIS_USER}",
			Password:  "{file." + pwFile + "}",
			TLS:       &redisstore.TLSConfig{ServerName: "{env.WG_T_REDIS_SNI}", CAFile: "{env.WG_T_REDIS_CA}"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			raw := c.cfg
			a := &App{Redis: &raw}
			if err := a.Provision(ctx); err != nil {
				t.Fatalf("provision: %v", err)
			}
			defer a.Cleanup()
			if err := a.Validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			rdb := a.shared.(*redisstore.Store).Client().Redis()
			if err := rdb.Ping(context.Background()).Err(); err != nil {
				t.Fatalf("the resolved settings do not reach Redis: %v", err)
			}
			if raw.Password != c.cfg.Password || raw.Addresses != nil && raw.Addresses[0] != c.cfg.Addresses[0] {
				t.Error("provisioning rewrote the config it was given")
			}
		})
	}
}
