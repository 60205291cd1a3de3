package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	dto "github.com/prometheus/client_model/go"

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

// MetricValue sums the samples of the running config's metric name
// whose labels include labels.
func MetricValue(name string, labels map[string]string) (float64, error) {
	ctx := caddy.ActiveContext()
	families, err := ctx.GetMetricsRegistry().Gather()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, nil
}

func hasLabels(pairs []*dto.LabelPair, want map[string]string) bool {
	found := 0
	for _, p := range pairs {
		if v, ok := want[p.GetName()]; ok && v == p.GetValue() {
			found++
		}
	}
	return found == len(want)
}
