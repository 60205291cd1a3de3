package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/webrev/webhook-gateway/caddymodule/store"
	"github.com/webrev/webhook-gateway/caddymodule/store/storetest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// opener returns stores each on its own client, as separate gateway
// instances would have.
func opener(cfg Config) storetest.Open {
	return func(t *testing.T) store.Store {
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return NewStore(c, cfg.KeyPrefix)
	}
}

func TestConformance(t *testing.T) {
	srv := testredis.Start(t)
	storetest.Run(t, opener(Config{URL: srv.URL()}))
}

func TestCluster(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	cfg := Config{Addresses: cluster.Addrs(), Cluster: true}
	t.Run("conformance", func(t *testing.T) { storetest.Run(t, opener(cfg)) })
	t.Run("round trips", func(t *testing.T) { testRoundTrips(t, cfg) })
	t.Run("sources spread over nodes", func(t *testing.T) {
		s := opener(cfg)(t)
		for i := range 50 {
			a := store.Admission{
				Source: "src" + strconv.Itoa(i), RateKey: "r", Limit: store.Limit{Count: 10, Period: time.Second},
				IdemKey: "e", Owner: "o", Lease: time.Minute,
			}
			if _, err := s.Admit(context.Background(), a); err != nil {
				t.Fatalf("source %d: %v", i, err)
			}
		}
		for _, n := range cluster.Nodes {
			if size, err := n.Do("DBSIZE"); err != nil || size == "0" {
				t.Errorf("node %s holds %s keys (%v); want some", n.Addr, size, err)
			}
		}
	})
}

func TestRoundTrips(t *testing.T) {
	srv := testredis.Start(t)
	testRoundTrips(t, Config{URL: srv.URL()})
}

// testRoundTrips holds each operation to its budget once the scripts
// are cached on the server.
func testRoundTrips(t *testing.T, cfg Config) {
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := NewStore(c, "")
	ctx := context.Background()
	limit := store.Limit{Count: 1000, Period: time.Second}
	var seq atomic.Int64
	claim := func() store.Admission {
		return store.Admission{
			Source: t.Name(), RateKey: "r", Limit: limit,
			IdemKey: fmt.Sprint("e", seq.Add(1)), Fingerprint: "f", Owner: "o", Lease: time.Minute,
		}
	}
	// Warm up: load every script.
	a := claim()
	mustAdmit(t, s, a)
	must(t, s.Complete(ctx, a.Source, a.IdemKey, a.Owner, store.Response{Status: 200}, time.Minute))
	must(t, s.Release(ctx, a.Source, a.IdemKey, a.Owner, 0))

	claimed := func(t *testing.T) store.Admission {
		b := claim()
		mustAdmit(t, s, b)
		return b
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) store.Admission // not counted
		op    func(t *testing.T, b store.Admission)
		trips uint64
	}{
		{"admit rate and claim", nil, func(t *testing.T, _ store.Admission) { mustAdmit(t, s, claim()) }, 1},
		{"admit rate only", nil, func(t *testing.T, _ store.Admission) {
			mustAdmit(t, s, store.Admission{Source: t.Name(), RateKey: "r", Limit: limit})
		}, 1},
		{"admit with nothing to do", nil, func(t *testing.T, _ store.Admission) {
			mustAdmit(t, s, store.Admission{Source: t.Name()})
		}, 0},
		{"admit duplicate", nil, func(t *testing.T, _ store.Admission) {
			d := a
			d.Owner = "other"
			if res := mustAdmit(t, s, d); res.State != store.ClaimCompleted {
				t.Fatalf("state %v, want completed", res.State)
			}
		}, 1},
		{"complete", claimed, func(t *testing.T, b store.Admission) {
			must(t, s.Complete(ctx, b.Source, b.IdemKey, b.Owner, store.Response{Status: 200}, time.Minute))
		}, 1},
		{"release", claimed, func(t *testing.T, b store.Admission) {
			must(t, s.Release(ctx, b.Source, b.IdemKey, b.Owner, 0))
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b store.Admission
			if tt.setup != nil {
				b = tt.setup(t)
			}
			before := c.RoundTrips()
			tt.op(t, b)
			if n := c.RoundTrips() - before; n != tt.trips {
				t.Errorf("%d round trips, want %d", n, tt.trips)
			}
		})
	}
}

func TestScriptCacheFlushed(t *testing.T) {
	srv := testredis.Start(t)
	s := opener(Config{URL: srv.URL()})(t).(*Store)
	a := store.Admission{Source: "s", IdemKey: "e", Fingerprint: "f", Owner: "o", Lease: time.Minute}
	mustAdmit(t, s, a)
	if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	a.IdemKey = "e2"
	before := s.Client().RoundTrips()
	if res := mustAdmit(t, s, a); res.State != store.ClaimAcquired {
		t.Fatalf("state %v, want acquired", res.State)
	}
	if n := s.Client().RoundTrips() - before; n != 2 {
		t.Errorf("%d round trips after SCRIPT FLUSH, want 2 (EVALSHA, then EVAL)", n)
	}
}

// TestRedisDown: a dead Redis is an error for every operation (the
// handler then applies on_store_error), and the store recovers by
// itself when Redis is back.
func TestRedisDown(t *testing.T) {
	srv := testredis.Start(t)
	s := opener(Config{URL: srv.URL(), DialTimeout: caddy.Duration(200 * time.Millisecond)})(t)
	a := store.Admission{Source: "s", IdemKey: "e", Fingerprint: "f", Owner: "o", Lease: time.Minute}
	mustAdmit(t, s, a)
	srv.Stop()
	tests := []struct {
		name string
		op   func(ctx context.Context) error
		want string
	}{
		{"admit", func(ctx context.Context) error { _, err := s.Admit(ctx, a); return err }, "running admit script: "},
		{"complete", func(ctx context.Context) error {
			return s.Complete(ctx, "s", "e", "o", store.Response{Status: 200}, time.Minute)
		}, "running complete script: "},
		{"release", func(ctx context.Context) error { return s.Release(ctx, "s", "e", "o", 0) }, "running release script: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := tt.op(ctx)
			if err == nil || errors.Is(err, store.ErrClaimLost) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q...", err, tt.want)
			}
		})
	}
	srv.Restart()
	// The restart lost the claim and the script cache; both come back.
	if res := mustAdmit(t, s, a); res.State != store.ClaimAcquired {
		t.Errorf("after restart: state %v, want acquired", res.State)
	}
}

// TestKeys pins the key layout and expiries that operators and the
// Cluster hash tag rely on.
func TestKeys(t *testing.T) {
	srv := testredis.Start(t)
	s := opener(Config{URL: srv.URL(), KeyPrefix: "gw"})(t)
	ctx := context.Background()
	a := store.Admission{
		Source: "stripe", RateKey: "acct", Limit: store.Limit{Count: 1, Period: 10 * time.Second},
		IdemKey: "evt_1", Fingerprint: "f", Owner: "o", Lease: 30 * time.Second,
	}
	mustAdmit(t, s, a)
	ttl := func(key string) time.Duration {
		t.Helper()
		ms, err := srv.Do("PTTL", key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(ms)
		return time.Duration(n) * time.Millisecond
	}
	tests := []struct {
		name     string
		key      string
		min, max time.Duration
		before   func()
	}{
		{"rate key lives until the bucket is full again", "gw:{stripe}:rl:acct", 9 * time.Second, 10 * time.Second, nil},
		{"claim lives for the lease", "gw:{stripe}:idem:evt_1", 29 * time.Second, 30 * time.Second, nil},
		{"answer lives for the retention", "gw:{stripe}:idem:evt_1", 59 * time.Minute, time.Hour, func() {
			must(t, s.Complete(ctx, "stripe", "evt_1", "o", store.Response{Status: 200}, time.Hour))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			if d := ttl(tt.key); d < tt.min || d > tt.max {
				t.Errorf("PTTL %s = %v, want in [%v, %v]", tt.key, d, tt.min, tt.max)
			}
		})
	}
}

func mustAdmit(t *testing.T, s store.Store, a store.Admission) store.Result {
	t.Helper()
	res, err := s.Admit(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
