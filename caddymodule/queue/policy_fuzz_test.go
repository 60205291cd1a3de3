package queue

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// FuzzRetryAfter: whatever an app answers in Retry-After, the next
// attempt is due within the policy's bounds: the first delay less its
// jitter, and the largest delay.
func FuzzRetryAfter(f *testing.F) {
	for _, seed := range []string{"", "0", "120", "18446744073709551616", "-1", "1.5", " 30 ",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "\x00"} {
		f.Add(seed)
	}
	cfg := &Config{To: "http://app.test/", FirstDelay: caddy.Duration(time.Second), MaxDelay: caddy.Duration(time.Hour)}
	cfg.Provision()
	p := NewPolicy(cfg)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		for n := 1; n <= 3; n++ {
			d := p.Delay(n, v, now)
			if d < time.Second*8/10 || d > time.Hour {
				t.Fatalf("Delay(%d, %q) = %v, want within [800ms, 1h]", n, v, d)
			}
		}
		if d, ok := parseRetryAfter(v, now); ok && d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, negative", v, d)
		}
	})
}
