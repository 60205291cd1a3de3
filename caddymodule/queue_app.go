package caddymodule

import (
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// registerQueue adds a handler's queue to the config's registry, with
// the backend the app keeps its events in.
func (a *App) registerQueue(name string, cfg *queue.Config) (*runningQueue, error) {
	spec := cfg.Spec(name)
	q, err := a.queues.register(spec, cfg)
	if err != nil {
		return nil, err
	}
	q.backend = a.queueBackend
	return q, nil
}
