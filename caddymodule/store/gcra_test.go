package store

import (
	"testing"
	"time"
)

func TestGCRA(t *testing.T) {
	const base = int64(1_700_000_000_000_000) // Unix µs
	tenPerSecond := Limit{Count: 10, Period: time.Second, Burst: 3}
	tests := []struct {
		name    string
		limit   Limit
		now     int64
		tat     int64
		allowed bool
		newTAT  int64
		want    Decision
	}{
		{
			name: "fresh bucket", limit: tenPerSecond, now: base, tat: 0,
			allowed: true, newTAT: base + 100_000,
			want: Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * time.Millisecond},
		},
		{
			name: "stale tat counts as fresh", limit: tenPerSecond, now: base, tat: base - 5_000_000,
			allowed: true, newTAT: base + 100_000,
			want: Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * time.Millisecond},
		},
		{
			name: "last of the burst", limit: tenPerSecond, now: base, tat: base + 200_000,
			allowed: true, newTAT: base + 300_000,
			want: Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * time.Millisecond},
		},
		{
			name: "burst used up", limit: tenPerSecond, now: base, tat: base + 300_000,
			allowed: false, newTAT: base + 300_000,
			want: Decision{Limit: 3, RetryAfter: 100 * time.Millisecond, Reset: 300 * time.Millisecond},
		},
		{
			name: "one interval later", limit: tenPerSecond, now: base + 100_000, tat: base + 300_000,
			allowed: true, newTAT: base + 400_000,
			want: Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * time.Millisecond},
		},
		{
			name: "partly refilled", limit: tenPerSecond, now: base, tat: base + 250_000,
			allowed: false, newTAT: base + 250_000,
			want: Decision{Limit: 3, RetryAfter: 50 * time.Millisecond, Reset: 250 * time.Millisecond},
		},
		{
			name: "default burst is count", limit: Limit{Count: 5, Period: time.Second}, now: base, tat: base + 600_000,
			allowed: true, newTAT: base + 800_000,
			want: Decision{Allowed: true, Limit: 5, Remaining: 1, Reset: 800 * time.Millisecond},
		},
		{
			name: "interval truncated to the microsecond", limit: Limit{Count: 3, Period: time.Second, Burst: 1}, now: base, tat: base + 1,
			allowed: false, newTAT: base + 1,
			want: Decision{Limit: 1, RetryAfter: time.Microsecond, Reset: time.Microsecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.limit.Validate(); err != nil {
				t.Fatal(err)
			}
			allowed, newTAT := GCRA(tt.limit, tt.now, tt.tat)
			if allowed != tt.allowed || newTAT != tt.newTAT {
				t.Fatalf("GCRA = %v, %d; want %v, %d", allowed, newTAT, tt.allowed, tt.newTAT)
			}
			if got := tt.limit.Decide(allowed, tt.now, newTAT); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResendTAT(t *testing.T) {
	l := Limit{Count: 10, Period: time.Second}
	tests := []struct {
		name        string
		now, stored int64
		want        int64
	}{
		{"stored ahead", 1_000_000, 1_500_000, 1_500_000},
		{"stored expired", 1_000_000, 0, 1_100_000},
		{"stored within an interval", 1_000_000, 1_050_000, 1_100_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResendTAT(l, tt.now, tt.stored); got != tt.want {
				t.Errorf("ResendTAT = %d, want %d", got, tt.want)
			}
		})
	}
}
