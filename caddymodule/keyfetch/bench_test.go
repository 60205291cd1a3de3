package keyfetch

import (
	"context"
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// BenchmarkFetchCached is the cost a delivery pays for its key once the
// document is cached: the URL checks, the cache key and the lookup.
func BenchmarkFetchCached(b *testing.B) {
	ks := newKeyServer(b, serve("doc"))
	f, err := New(Config{Allow: []string{ks.hostPort()}, TLSCA: ks.ca})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	req := provider.KeyRequest{Provider: "bench", URL: ks.URL + "/key.pem", PathSuffix: ".pem"}
	if _, err := f.Fetch(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Fetch(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := ks.hits.Load(); n != 1 {
		b.Fatalf("%d fetches, want 1", n)
	}
}
