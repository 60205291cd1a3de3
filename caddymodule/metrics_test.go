package caddymodule

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestMetricsSharedAndCounted registers the series twice on one registry,
// as two handlers of one config do, and checks that both handlers count
// into the same series.
func TestMetricsSharedAndCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := registerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := registerMetrics(reg)
	if err != nil {
		t.Fatalf("second handler: %v", err)
	}
	deliveries := []struct {
		m *metrics
		d delivery
	}{
		{first, delivery{provider: "stripe", outcome: outcomeForwarded, status: 200}},
		{second, delivery{provider: "stripe", outcome: outcomeForwarded, status: 200}},
		{second, delivery{provider: "stripe", outcome: outcomeRefused, reason: "signature_mismatch", status: 401}},
	}
	for _, c := range deliveries {
		c.m.observe(&c.d, 0)
	}
	first.storeError("stripe", "admit")
	cases := []struct {
		name string
		got  float64
		want float64
	}{
		{"forwarded", counterValue(t, first.deliveries.WithLabelValues("stripe", outcomeForwarded, "", "200")), 2},
		{"refused", counterValue(t, first.deliveries.WithLabelValues("stripe", outcomeRefused, "signature_mismatch", "401")), 1},
		{"store_errors", counterValue(t, second.storeErrors.WithLabelValues("stripe", "admit")), 1},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "caddy_webhook_gateway_delivery_duration_seconds" && len(f.GetMetric()) != 2 {
			t.Errorf("%d duration series, want 2 (forwarded, refused)", len(f.GetMetric()))
		}
	}
}

// TestMetricsRefuseAForeignCollector: a different collector under our
// name is a real conflict and must not be adopted silently.
func TestMetricsRefuseAForeignCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "caddy_webhook_gateway_deliveries_total", Help: "x"}))
	if _, err := registerMetrics(reg); err == nil || !strings.Contains(err.Error(), "caddy_webhook_gateway_deliveries_total") {
		t.Fatalf("err = %v, want a registration conflict naming the series", err)
	}
}
