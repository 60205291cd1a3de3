package store_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
	"github.com/webrev/webhook-gateway/caddymodule/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	m := store.NewMemory(store.MemoryConfig{})
	// Every handle is the same store: in-process "clients" share it.
	storetest.Run(t, func(*testing.T) store.Store { return m })
}

// fakeClock is an injectable clock for exact timing.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFakeMemory(max int) (*store.Memory, *fakeClock) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	return store.NewMemory(store.MemoryConfig{MaxEntries: max, Now: clock.Now}), clock
}

func claim(key, owner string, lease time.Duration) store.Admission {
	return store.Admission{Source: "s", IdemKey: key, Fingerprint: "f", Owner: owner, Lease: lease}
}

func mustAdmit(t *testing.T, m *store.Memory, a store.Admission) store.Result {
	t.Helper()
	res, err := m.Admit(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMemoryLeaseTiming(t *testing.T) {
	m, clock := newFakeMemory(0)
	mustAdmit(t, m, claim("e", "A", time.Second))
	clock.Advance(999 * time.Millisecond)
	if res := mustAdmit(t, m, claim("e", "B", time.Second)); res.State != store.ClaimInFlight || res.RetryAfter != time.Millisecond {
		t.Fatalf("1ms before expiry: %v retry after %v, want in flight, 1ms", res.State, res.RetryAfter)
	}
	clock.Advance(time.Millisecond + time.Microsecond)
	if res := mustAdmit(t, m, claim("e", "B", time.Second)); res.State != store.ClaimAcquired {
		t.Fatalf("after expiry: %v, want acquired", res.State)
	}
}

func TestMemoryRetention(t *testing.T) {
	m, clock := newFakeMemory(0)
	ctx := context.Background()
	mustAdmit(t, m, claim("e", "A", time.Second))
	if err := m.Complete(ctx, "s", "e", "A", store.Response{Status: 200}, time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Minute)
	if res := mustAdmit(t, m, claim("e", "B", time.Second)); res.State != store.ClaimCompleted {
		t.Fatalf("within retention: %v, want completed", res.State)
	}
	clock.Advance(2 * time.Minute)
	if res := mustAdmit(t, m, claim("e", "B", time.Second)); res.State != store.ClaimAcquired {
		t.Fatalf("after retention: %v, want acquired", res.State)
	}
}

// TestMemoryStoredAnswerIsolated: neither the caller's response after
// Complete nor a replayed copy may alias what the store keeps.
func TestMemoryStoredAnswerIsolated(t *testing.T) {
	m, _ := newFakeMemory(0)
	ctx := context.Background()
	resp := store.Response{Status: 201, Header: http.Header{"A": {"1"}}, Body: []byte("body")}
	mustAdmit(t, m, claim("e", "A", time.Second))
	if err := m.Complete(ctx, "s", "e", "A", resp, time.Hour); err != nil {
		t.Fatal(err)
	}
	resp.Body[0], resp.Header["A"][0] = 'X', "X"
	first := mustAdmit(t, m, claim("e", "B", time.Second)).Stored
	first.Body[1], first.Header["A"][0] = 'Y', "Y"
	second := mustAdmit(t, m, claim("e", "C", time.Second)).Stored
	if string(second.Body) != "body" || second.Header.Get("A") != "1" {
		t.Errorf("stored answer changed through an alias: %q %v", second.Body, second.Header)
	}
}

func TestMemoryBound(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		inserts int
		advance time.Duration // between inserts
	}{
		{"live entries", 100, 1000, 0},
		{"expiring entries", 100, 1000, 300 * time.Millisecond},
		{"cap of one", 1, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clock := newFakeMemory(tt.max)
			for i := range tt.inserts {
				a := claim(fmt.Sprint("e", i), "A", time.Second)
				a.RateKey, a.Limit = fmt.Sprint("r", i), store.Limit{Count: 1, Period: time.Second}
				mustAdmit(t, m, a)
				clock.Advance(tt.advance)
				if n := m.Len(); n > tt.max {
					t.Fatalf("after %d inserts: %d entries, cap %d", i+1, n, tt.max)
				}
			}
			// The newest claim must have survived eviction.
			last := claim(fmt.Sprint("e", tt.inserts-1), "B", time.Second)
			if res := mustAdmit(t, m, last); tt.advance == 0 && res.State != store.ClaimInFlight {
				t.Errorf("newest claim evicted: state %v", res.State)
			}
		})
	}
}

// TestMemoryDuplicateTouchesNoBucket: a duplicate is answered from its
// claim before the rate bucket is looked at, so it neither creates a
// bucket nor, in a full table, evicts anything to make room for one.
func TestMemoryDuplicateTouchesNoBucket(t *testing.T) {
	m, _ := newFakeMemory(2)
	mustAdmit(t, m, claim("e", "A", time.Minute))     // oldest
	mustAdmit(t, m, claim("other", "A", time.Minute)) // table now full
	a := claim("e", "B", time.Minute)
	a.RateKey, a.Limit = "r", store.Limit{Count: 1, Period: time.Second}
	res := mustAdmit(t, m, a)
	if res.State != store.ClaimInFlight || !res.Rate.Allowed {
		t.Fatalf("%+v, want in flight and not rate limited", res)
	}
	if n := m.Len(); n != 2 {
		t.Errorf("%d entries, want the 2 claims and no bucket", n)
	}
	if res := mustAdmit(t, m, claim("other", "C", time.Minute)); res.State != store.ClaimInFlight {
		t.Errorf("the other claim was evicted: %v", res.State)
	}
}

// TestMemoryHeapBounded inserts far more keys than the cap and checks
// the heap stays near what the cap allows rather than growing with the
// number of inserts.
func TestMemoryHeapBounded(t *testing.T) {
	const max, inserts = 1000, 50_000
	m, _ := newFakeMemory(max)
	body := make([]byte, 256)
	before := heapInUse()
	for i := range inserts {
		key := fmt.Sprint("e", i)
		mustAdmit(t, m, claim(key, "A", time.Hour))
		if err := m.Complete(context.Background(), "s", key, "A", store.Response{Status: 200, Body: body}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	grown := int64(heapInUse()) - int64(before)
	// ~1000 entries of ~0.5 KiB is well under 4 MiB; 50k would be ~30 MiB.
	if grown > 4<<20 {
		t.Errorf("heap grew by %d bytes for %d entries", grown, m.Len())
	}
	if m.Len() != max {
		t.Errorf("%d entries, want %d", m.Len(), max)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// benchLimit never refuses within a benchmark and keeps its bucket
// alive, as a busy source's would be.
var benchLimit = store.Limit{Count: 1000, Period: time.Second, Burst: 1e9}

func BenchmarkMemoryAdmit(b *testing.B) {
	benchmarks := []struct {
		name string
		idem bool
	}{
		{"rate", false},
		{"rate+claim", true},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			m := store.NewMemory(store.MemoryConfig{})
			var n sync.Mutex
			seq := 0
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				n.Lock()
				seq++
				worker := seq
				n.Unlock()
				i := 0
				for pb.Next() {
					i++
					a := store.Admission{Source: "bench", RateKey: "k", Limit: benchLimit}
					if bm.idem {
						a.IdemKey, a.Owner, a.Fingerprint, a.Lease = fmt.Sprint(worker, "-", i), "o", "f", time.Minute
					}
					if _, err := m.Admit(context.Background(), a); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
