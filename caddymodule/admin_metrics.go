package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// statsTimeout bounds how long a scrape waits for the queues' figures:
// a slow or unreachable Redis leaves the gauges out of that scrape
// rather than holding the scrape up.
const statsTimeout = 2 * time.Second

// queueGauge is one figure of Stats as a gauge.
type queueGauge struct {
	desc  *prometheus.Desc
	value func(s queue.Stats, now time.Time) float64
}

func newQueueGauge(name, help string, value func(s queue.Stats, now time.Time) float64) queueGauge {
	return queueGauge{
		desc:  prometheus.NewDesc(prometheus.BuildFQName("caddy", "webhook_gateway", name), help, []string{"queue"}, nil),
		value: value,
	}
}

// figure is a gauge's value that is one count of Stats.
func figure(count func(queue.Stats) int64) func(queue.Stats, time.Time) float64 {
	return func(s queue.Stats, _ time.Time) float64 { return float64(count(s)) }
}

// queueGauges are the gauges of every queue of a config, read from
// Backend.Stats at scrape time: a collector, not gauges set on a
// ticker, so that a scrape sees the figures of that moment and a
// reloaded config's queues without any goroutine to stop.
var queueGauges = []queueGauge{
	newQueueGauge("queue_depth", "Events not yet delivered or dead, retrying ones included.",
		figure(func(s queue.Stats) int64 { return s.Queued })),
	newQueueGauge("queue_bytes", "Size of the events not yet delivered or dead (bodies and headers).",
		figure(func(s queue.Stats) int64 { return s.Bytes })),
	newQueueGauge("queue_ready", "Events due for an attempt now.",
		figure(func(s queue.Stats) int64 { return s.Ready })),
	newQueueGauge("queue_in_flight", "Events leased to a worker: being attempted.",
		figure(func(s queue.Stats) int64 { return s.InFlight })),
	newQueueGauge("queue_delayed", "Events waiting for a retry.",
		figure(func(s queue.Stats) int64 { return s.Delayed })),
	newQueueGauge("queue_waiting", "Events held behind an earlier event of their order key.",
		figure(func(s queue.Stats) int64 { return s.Waiting })),
	newQueueGauge("queue_dead", "Dead events, kept for dead_retention.",
		figure(func(s queue.Stats) int64 { return s.Dead })),
	newQueueGauge("queue_oldest_age_seconds", "Age of the oldest event not yet delivered or dead; 0 when there is none.",
		func(s queue.Stats, now time.Time) float64 {
			if s.Oldest.IsZero() {
				return 0
			}
			return max(now.Sub(s.Oldest).Seconds(), 0)
		}),
	newQueueGauge("queue_paused", "1 while delivery is paused.",
		func(s queue.Stats, _ time.Time) float64 {
			if s.Paused {
				return 1
			}
			return 0
		}),
}

// groupsRecreated counts, per Redis queue backend, the consumer groups
// found missing and made again (Redis restarted empty): a counter that
// lives in the backend, which outlasts reloads, so it stays monotonic.
var groupsRecreated = prometheus.NewDesc(prometheus.BuildFQName("caddy", "webhook_gateway", "queue_groups_recreated_total"),
	"Consumer groups of the Redis queue found missing (Redis lost the queue's streams) and created again.", nil, nil)

// recreator is a backend that counts the consumer groups it recreated.
type recreator interface{ GroupsRecreated() uint64 }

// queueCollector reports the gauges of one config's queues.
type queueCollector struct {
	queues *queueRegistry
	logger *zap.Logger
}

// Describe implements prometheus.Collector.
func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range queueGauges {
		ch <- g.desc
	}
	ch <- groupsRecreated
}

// Collect implements prometheus.Collector: the queues' figures, read
// concurrently under one deadline. A queue whose figures do not come in
// time is left out of this scrape.
func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	var wg sync.WaitGroup
	counted := false
	for _, q := range c.queues.all() {
		if q.backend == nil {
			continue
		}
		// Every queue of a config shares the app's one backend.
		if r, ok := q.backend.(recreator); ok && !counted {
			counted = true
			ch <- prometheus.MustNewConstMetric(groupsRecreated, prometheus.CounterValue, float64(r.GroupsRecreated()))
		}
		wg.Go(func() {
			stats, err := q.backend.Stats(ctx, q.spec)
			if err != nil {
				c.logger.Warn("queue gauges: reading the queue's figures", zap.String("queue", q.spec.Name), zap.Error(err))
				return
			}
			now := time.Now()
			for _, g := range queueGauges {
				ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.value(stats, now), q.spec.Name)
			}
		})
	}
	wg.Wait()
}

// registerQueueGauges adds the collector of the app's queues to reg.
// The gauges need no state of their own to carry over a reload. Where
// two configs share a registry (an app provisioned again on one
// context), the newest app's queues replace the old one's: those are
// the queues that run.
func (a *App) registerQueueGauges(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	c := queueCollector{queues: &a.queues, logger: cmp.Or(a.logger, zap.NewNop())}
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		reg.Unregister(dup.ExistingCollector)
		err = reg.Register(c)
	}
	return err
}
