package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// drainTimeout bounds how long a stopping pool waits for attempts in
// flight before it cancels them and hands their events back.
const drainTimeout = 10 * time.Second

// pools shares each queue's workers across config reloads: a queue
// whose settings and backend did not change keeps its workers running,
// and one that changed is drained when the old config stops.
var pools = caddy.NewUsagePool()

// pooledPool is a queue's running workers, with the observer that
// counts their attempts in the current config's metrics.
type pooledPool struct {
	pool     *queue.Pool
	observer *queueObserver
}

func (p pooledPool) Destruct() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	return p.pool.Stop(ctx)
}

// startQueues starts, or adopts from the previous config, the workers
// of every queue; a failure stops those this call took.
// Workers that start afresh say what durability their events have; a
// reload that changes nothing says nothing again.
func (a *App) startQueues() error {
	fresh := false
	for _, q := range a.queues.all() {
		created, err := a.startPool(q)
		if err != nil {
			a.stopQueues()
			return err
		}
		fresh = fresh || created
	}
	if fresh {
		a.warnDurability()
	}
	return nil
}

func (a *App) startPool(q *runningQueue) (created bool, err error) {
	key, err := poolKey(q)
	if err != nil {
		return false, err
	}
	v, loaded, err := pools.LoadOrNew(key, func() (caddy.Destructor, error) {
		obs := new(queueObserver)
		p, err := queue.NewPool(queue.PoolOptions{
			Backend:  q.backend,
			Spec:     q.spec,
			Config:   q.config,
			Limiter:  a.limiter(q),
			Observer: obs,
			Logger:   a.logger.Named("queue"),
			Consumer: consumer,
		})
		if err != nil {
			return nil, fmt.Errorf("queue %q: %w", q.spec.Name, err)
		}
		p.Start()
		return pooledPool{pool: p, observer: obs}, nil
	})
	if err != nil {
		return false, err
	}
	obs := v.(pooledPool).observer
	obs.use(a.queueMetrics)
	a.pools = append(a.pools, heldPool{key, obs})
	return !loaded, nil
}

// heldPool is a pool a config holds: its key and its observer.
type heldPool struct {
	key      string
	observer *queueObserver
}

// consumer names this process to the backends, the same for every
// queue and config: a reload must not look like another instance.
var consumer = queue.ConsumerName()

// poolKey identifies a queue's workers: its name, its settings and its
// backend, so that a change of any of them gets workers of its own.
func poolKey(q *runningQueue) (string, error) {
	cfg, err := json.Marshal(q.config)
	if err != nil {
		return "", fmt.Errorf("queue %q: %w", q.spec.Name, err)
	}
	return fmt.Sprintf("%s\x00%s\x00%p", q.spec.Name, cfg, q.backend), nil
}

// stopQueues gives the workers back; the last config using a queue's
// drains them. Safe to call more than once.
func (a *App) stopQueues() error {
	var errs []error
	for _, p := range a.pools {
		p.observer.drop(a.queueMetrics)
		if _, err := pools.Delete(p.key); err != nil {
			errs = append(errs, err)
		}
	}
	a.pools = nil
	if len(errs) > 0 {
		return fmt.Errorf("draining queues: %v", errs)
	}
	return nil
}

// limiter is a queue's rate, kept in the store, so that every instance
// sharing the store shares it.
func (a *App) limiter(q *runningQueue) queue.Limiter {
	r := q.config.Rate
	if r == nil {
		return nil
	}
	return &storeLimiter{
		store: a.shared,
		admission: store.Admission{
			Source:  "queue:" + q.spec.Name,
			RateKey: "to",
			Limit:   store.Limit{Count: r.Count, Period: time.Duration(r.Period), Burst: r.Burst},
		},
	}
}

// storeLimiter is a queue.Limiter on the state store's GCRA.
type storeLimiter struct {
	store     store.Store
	admission store.Admission
}

func (l *storeLimiter) Allow(ctx context.Context) (bool, time.Duration, error) {
	res, err := l.store.Admit(ctx, l.admission)
	if err != nil {
		return false, 0, fmt.Errorf("queue rate: %w", err)
	}
	return res.Rate.Allowed, res.Rate.RetryAfter, nil
}
