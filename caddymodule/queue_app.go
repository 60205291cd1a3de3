package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/redisstore"
)

// durabilityCheckTimeout bounds the start-up check of Redis's
// persistence settings.
const durabilityCheckTimeout = 3 * time.Second

// provisionQueueBackend opens where the queues keep their events: the
// Redis the store uses, or a memory backend that, like the memory
// store, lives across config reloads.
func (a *App) provisionQueueBackend() error {
	if a.redis == nil {
		v, err := a.acquirePooled("queue", func() caddy.Destructor { return pooledQueue{new(queue.Memory)} })
		if err != nil {
			return fmt.Errorf("opening the memory queue: %w", err)
		}
		a.queueBackend = v.(pooledQueue).Memory
		return nil
	}
	q, release, err := redisstore.OpenQueue(*a.redis, a.logger)
	if err != nil {
		return fmt.Errorf("opening the redis queue: %w", err)
	}
	a.releasers = append(a.releasers, release)
	a.queueBackend = q
	return nil
}

type pooledQueue struct{ *queue.Memory }

func (pooledQueue) Destruct() error { return nil }

// registerQueue adds a handler's queue to the config's registry, with
// the backend the app keeps its events in and the handler's credential
// headers, which the admin API redacts.
func (a *App) registerQueue(name string, cfg *queue.Config, creds provider.Credentials) (*runningQueue, error) {
	if _, local := a.queueBackend.(*queue.Memory); local && cfg.Durability == "replicated" {
		return nil, fmt.Errorf("queue %q: durability replicated needs redis, with a replica", name)
	}
	q, err := a.queues.register(cfg.Spec(name), cfg)
	if err != nil {
		return nil, err
	}
	q.backend = a.queueBackend
	a.queues.noteSecretHeaders(q, creds)
	return q, nil
}

// warnDurability says what can lose an accepted event: a queue kept in
// memory, or Redis settings that can.
func (a *App) warnDurability() {
	var warnings []string
	switch b := a.queueBackend.(type) {
	case *queue.Memory:
		warnings = []string{"queue kept in memory: not durable, every queued event is lost when this process stops; configure redis"}
	case *redisstore.Queue:
		ctx, cancel := context.WithTimeout(context.Background(), durabilityCheckTimeout)
		warnings = b.CheckDurability(ctx)
		cancel()
	}
	for _, w := range warnings {
		a.logger.Warn(w)
	}
}
