package redisstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// CheckDurability reads the settings of each primary that decide
// whether an accepted event survives Redis, and returns a warning for
// each one that falls short: an event the provider was answered 2xx
// for is only as safe as these. Nothing for a Redis that keeps
// everything; a warning too when the settings cannot be read (CONFIG
// is often disabled by managed services).
//
// No loss on a Redis crash needs maxmemory-policy noeviction (else
// Redis may evict queued events under memory pressure), appendonly yes
// and appendfsync always; everysec may lose up to a second of accepted
// events. Against losing the machine, durability replicated (WAIT).
func (q *Queue) CheckDurability(ctx context.Context) []string {
	var mu sync.Mutex
	var warnings []string
	check := func(ctx context.Context, node *redis.Client) error {
		w := durabilityWarnings(ctx, node)
		if len(w) > 0 && q.client.IsCluster() {
			for i := range w {
				w[i] = node.Options().Addr + ": " + w[i]
			}
		}
		mu.Lock()
		warnings = append(warnings, w...)
		mu.Unlock()
		return nil
	}
	switch rdb := q.client.rdb.(type) {
	case *redis.ClusterClient:
		if err := rdb.ForEachMaster(ctx, check); err != nil {
			warnings = append(warnings, fmt.Sprintf("cannot reach every primary to check durability: %v", err))
		}
	case *redis.Client:
		_ = check(ctx, rdb)
	}
	return warnings
}

// durabilityWarnings checks one server.
func durabilityWarnings(ctx context.Context, rdb *redis.Client) []string {
	get := func(name string) (string, error) {
		m, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return "", err
		}
		return m[name], nil
	}
	policy, err1 := get("maxmemory-policy")
	aof, err2 := get("appendonly")
	fsync, err3 := get("appendfsync")
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return []string{fmt.Sprintf("cannot read the persistence settings (CONFIG GET: %v); make sure of maxmemory-policy noeviction, appendonly yes and appendfsync always", err)}
		}
	}
	var w []string
	if policy != "noeviction" {
		w = append(w, fmt.Sprintf("maxmemory-policy is %s: under memory pressure Redis may evict queued events; set noeviction", policy))
	}
	switch {
	case aof != "yes":
		w = append(w, "appendonly is no: a Redis restart loses the events accepted since the last snapshot, or all of them; set appendonly yes and appendfsync always")
	case fsync == "everysec":
		w = append(w, "appendfsync is everysec: a Redis crash may lose up to a second of accepted events; set appendfsync always for none")
	case fsync != "always":
		w = append(w, fmt.Sprintf("appendfsync is %s: a Redis crash may lose the accepted events the system had not yet written (up to about 30 seconds); set appendfsync always", fsync))
	}
	return w
}
