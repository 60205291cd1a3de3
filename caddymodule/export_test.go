package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// SetClock pins the handlers' clock until the returned func is called.
func SetClock(f func() time.Time) (restore func()) {
	testClock.Store(&f)
	return func() { testClock.Store(nil) }
}

// QueuedEvent returns the record of a queued event, as the running
// config's queue called name keeps it.
func QueuedEvent(name, id string) (*queue.Event, error) {
	app, err := caddy.ActiveContext().AppIfConfigured(appName)
	if err != nil {
		return nil, err
	}
	q, ok := app.(*App).queues.byName(name)
	if !ok {
		return nil, fmt.Errorf("no queue %q", name)
	}
	return q.backend.Get(context.Background(), q.spec, id)
}
