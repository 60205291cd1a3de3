package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// benchLimit never refuses within a benchmark.
var benchLimit = store.Limit{Count: 1000, Period: time.Second, Burst: 1e9}

func BenchmarkRedisAdmit(b *testing.B) {
	srv := testredis.Start(b)
	c, err := NewClient(Config{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s := NewStore(c, "")
	benchmarks := []struct {
		name string
		idem bool
	}{
		{"rate", false},
		{"rate+claim", true},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			var seq atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a := store.Admission{Source: "bench", RateKey: "k", Limit: benchLimit}
					if bm.idem {
						a.IdemKey, a.Owner, a.Fingerprint, a.Lease = fmt.Sprint(seq.Add(1)), "o", "f", time.Minute
					}
					if _, err := s.Admit(context.Background(), a); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
