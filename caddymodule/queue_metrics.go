package caddymodule

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// queueMetrics count the workers' attempts, in one config's registry.
type queueMetrics struct {
	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func registerQueueMetrics(reg *prometheus.Registry) (*queueMetrics, error) {
	m := &queueMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy",
			Subsystem: "webhook_gateway",
			Name:      "queue_attempts_total",
			Help:      "Attempts to deliver queued events to the app, by queue, outcome (delivered, retry, dead) and the app's status (0: no answer).",
		}, []string{"queue", "outcome", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "caddy",
			Subsystem: "webhook_gateway",
			Name:      "queue_delivery_latency_seconds",
			Help:      "Time from an event's intake to the app's 2xx, retries included.",
			Buckets:   []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600},
		}, []string{"queue"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.attempts, err = register(reg, m.attempts); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	return m, nil
}

// queueObserver is a pool's queue.Observer. A pool outlives the config
// that started it, so each config that adopts the pool points it at its
// own metrics, and one that stops gives it back to the config before:
// a reload that fails to start leaves the running config counting.
type queueObserver struct {
	mu      sync.Mutex
	users   []*queueMetrics // of the configs holding the pool, latest last
	metrics atomic.Pointer[queueMetrics]
}

func (o *queueObserver) use(m *queueMetrics) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users = append(o.users, m)
	o.metrics.Store(m)
}

// drop forgets the metrics of a config that let go of the pool.
func (o *queueObserver) drop(m *queueMetrics) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if i := slices.Index(o.users, m); i >= 0 {
		o.users = slices.Delete(o.users, i, i+1)
	}
	var latest *queueMetrics
	if n := len(o.users); n > 0 {
		latest = o.users[n-1]
	}
	o.metrics.Store(latest)
}

// Attempted implements queue.Observer.
func (o *queueObserver) Attempted(name string, a queue.Attempt, outcome queue.Outcome) {
	if m := o.metrics.Load(); m != nil {
		m.attempts.WithLabelValues(name, string(outcome), strconv.Itoa(a.Status)).Inc()
	}
}

// Delivered implements queue.Observer.
func (o *queueObserver) Delivered(name string, sinceIntake time.Duration) {
	if m := o.metrics.Load(); m != nil {
		m.latency.WithLabelValues(name).Observe(sinceIntake.Seconds())
	}
}

// Interface guards
var _ queue.Observer = (*queueObserver)(nil)
