package caddymodule

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series, shared by every handler
// of a config through the config's registry.
type metrics struct {
	deliveries  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	storeErrors *prometheus.CounterVec
}

func registerMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy",
			Subsystem: "webhook_gateway",
			Name:      "deliveries_total",
			Help:      "Webhook deliveries by provider, outcome, refusal reason and status.",
		}, []string{"provider", "outcome", "reason", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "caddy",
			Subsystem: "webhook_gateway",
			Name:      "delivery_duration_seconds",
			Help:      "Time from a delivery's arrival to its answer, upstream included.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"provider", "outcome"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy",
			Subsystem: "webhook_gateway",
			Name:      "store_errors_total",
			Help:      "Failed state-store calls by provider and operation (admit, complete, release).",
		}, []string{"provider", "operation"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.deliveries, err = register(reg, m.deliveries); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.storeErrors, err = register(reg, m.storeErrors); err != nil {
		return nil, err
	}
	return m, nil
}

// register adopts an identical collector that another handler of the
// same config registered first.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *metrics) observe(d *delivery, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(d.provider, d.outcome, d.reason, strconv.Itoa(d.status)).Inc()
	m.duration.WithLabelValues(d.provider, d.outcome).Observe(elapsed.Seconds())
}

func (m *metrics) storeError(provider, operation string) {
	if m != nil {
		m.storeErrors.WithLabelValues(provider, operation).Inc()
	}
}
