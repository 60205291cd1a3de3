package caddymodule

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/redisstore"
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
