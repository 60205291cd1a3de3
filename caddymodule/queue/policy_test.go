package queue

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func provisioned(c Config) *Config {
	c.To = "http://app.test/hooks"
	c.Provision()
	return &c
}

func durations(ds ...time.Duration) []caddy.Duration {
	out := make([]caddy.Duration, len(ds))
	for i, d := range ds {
		out[i] = caddy.Duration(d)
	}
	return out
}

func TestPolicyClassify(t *testing.T) {
	p := NewPolicy(provisioned(Config{DeadOn: []int{400, 422}}))
	cases := []struct {
		name   string
		status int
		want   Outcome
		reason bool
	}{
		{"no answer", 0, Retry, false},
		{"200", 200, Delivered, false},
		{"202", 202, Delivered, false},
		{"204", 204, Delivered, false},
		{"299", 299, Delivered, false},
		{"301 is not followed", 301, Retry, false},
		{"304", 304, Retry, false},
		{"404 during a deploy", 404, Retry, false},
		{"408", 408, Retry, false},
		{"429", 429, Retry, false},
		{"500", 500, Retry, false},
		{"503", 503, Retry, false},
		{"410 always ends", 410, Dead, true},
		{"400 in dead_on", 400, Dead, true},
		{"422 in dead_on", 422, Dead, true},
		{"401 not in dead_on", 401, Retry, false},
		{"100", 100, Retry, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reason := p.Classify(c.status)
			if got != c.want || (reason != "") != c.reason {
				t.Fatalf("Classify(%d) = %q, %q; want %q (reason %v)", c.status, got, reason, c.want, c.reason)
			}
		})
	}
}

func TestPolicyDelay(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	exp := provisioned(Config{FirstDelay: caddy.Duration(5 * time.Second), MaxDelay: caddy.Duration(time.Minute)})
	sched := provisioned(Config{Schedule: durations(5*time.Second, 5*time.Minute, 30*time.Minute, 2*time.Minute)})
	const (
		low  = 0.0 // the random draw that gives the shortest delay
		mid  = 0.5 // no jitter for a symmetric one
		high = 0.999999
	)
	cases := []struct {
		name       string
		config     *Config
		n          int
		retryAfter string
		random     float64
		want       time.Duration
		slack      time.Duration
	}{
		{"first", exp, 1, "", mid, 5 * time.Second, 0},
		{"second doubles", exp, 2, "", mid, 10 * time.Second, 0},
		{"fourth", exp, 4, "", mid, 40 * time.Second, 0},
		{"capped", exp, 5, "", mid, time.Minute, 0},
		{"far past the cap", exp, 200, "", mid, time.Minute, 0},
		{"jitter down 20%", exp, 2, "", low, 8 * time.Second, 0},
		{"jitter up 20%", exp, 2, "", high, 12 * time.Second, time.Millisecond},
		{"never above the largest", exp, 9, "", high, time.Minute, 0},
		{"below the cap jitters down", exp, 9, "", low, 48 * time.Second, 0},
		{"schedule first", sched, 1, "", mid, 5 * time.Second, 0},
		{"schedule third", sched, 3, "", mid, 30 * time.Minute, 0},
		{"schedule last repeats", sched, 4, "", mid, 2 * time.Minute, 0},
		{"schedule past its end", sched, 11, "", mid, 2 * time.Minute, 0},
		{"schedule jitter down", sched, 2, "", low, 4 * time.Minute, 0},
		{"schedule never above its largest", sched, 3, "", high, 30 * time.Minute, 0},
		{"retry-after seconds", exp, 1, "20", low, 20 * time.Second, 0},
		{"retry-after only later", exp, 1, "20", high, 24 * time.Second, time.Millisecond},
		{"retry-after below the first delay", exp, 3, "1", low, 5 * time.Second, 0},
		{"retry-after zero", exp, 3, "0", low, 5 * time.Second, 0},
		{"retry-after above the largest", exp, 1, "86400", low, time.Minute, 0},
		{"retry-after beyond a duration", exp, 1, "99999999999999999999", low, time.Minute, 0},
		{"retry-after date", exp, 1, now.Add(30 * time.Second).Format(http.TimeFormat), low, 30 * time.Second, 0},
		{"retry-after date past", exp, 3, now.Add(-time.Hour).Format(http.TimeFormat), low, 5 * time.Second, 0},
		{"retry-after date far", exp, 1, now.Add(48 * time.Hour).Format(http.TimeFormat), low, time.Minute, 0},
		{"retry-after against a schedule", sched, 1, "7200", low, 30 * time.Minute, 0},
		{"retry-after below a schedule", sched, 3, "1", low, 5 * time.Second, 0},
		{"retry-after garbage is ignored", exp, 2, "soon", mid, 10 * time.Second, 0},
		{"retry-after negative is ignored", exp, 2, "-5", mid, 10 * time.Second, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPolicy(c.config)
			p.random = func() float64 { return c.random }
			got := p.Delay(c.n, c.retryAfter, now)
			if d := got - c.want; d < -c.slack || d > c.slack {
				t.Fatalf("Delay(%d, %q) = %v, want %v", c.n, c.retryAfter, got, c.want)
			}
		})
	}
}

// The real jitter stays within ±20% and does vary.
func TestPolicyJitterSpread(t *testing.T) {
	p := NewPolicy(provisioned(Config{FirstDelay: caddy.Duration(10 * time.Second)}))
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Delay(1, "", time.Now())
		if d < 8*time.Second || d > 12*time.Second {
			t.Fatalf("delay %v outside 10s ±20%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays in 200: no jitter", len(seen))
	}
}
