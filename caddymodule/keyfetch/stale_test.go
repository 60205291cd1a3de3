package keyfetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// certServer serves "good" at /good.pem, with a max-age, and 404 for any
// other path, as AWS's certificate host does for a forged one. It counts
// the requests for /good.pem and can be told to fail them.
type certServer struct {
	*keyServer
	good    atomic.Int64
	failing atomic.Bool
}

func newCertServer(t *testing.T, maxAge time.Duration) *certServer {
	cs := &certServer{}
	cs.keyServer = newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/good.pem" {
			http.NotFound(w, r)
			return
		}
		cs.good.Add(1)
		if cs.failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", int(maxAge/time.Second)))
		io.WriteString(w, "good")
	})
	return cs
}

// wantDoc checks that a lookup answered the document.
func wantDoc(t *testing.T, doc provider.KeyDocument, err error, body string) {
	t.Helper()
	if err != nil || string(doc.Body) != body {
		t.Fatalf("got %q, %v; want %q", doc.Body, err, body)
	}
}

// A flood of forged certificate URLs, each new, goes on while the
// genuine certificate expires: every genuine lookup still gets it, its
// refetch is never refused because of the forged ones, and the forged
// ones cost no more fetches than the pace for new documents allows, nor
// grow memory past the cache bounds.
func TestFetchFloodOfNewDocumentsSparesKnownOnes(t *testing.T) {
	const (
		ttl     = time.Minute
		ticks   = 130 // one clock second each
		perTick = 4   // forged URLs per second: 520 in all
		entries = 16
	)
	cases := []struct {
		name      string
		every     int // a genuine lookup every this many seconds
		downFrom  int // the genuine refetches fail from this tick ...
		downUntil int // ... to this one
		goodHits  int64
		stale     bool
	}{
		// Refreshed at 60s and 120s.
		{"key server up", 1, 0, 0, 3, false},
		// Down when the document expires (60s): stale, refetched once
		// the failure is no longer kept (90s: fails again), then
		// refreshed (120s).
		{"key server down at expiry", 1, 55, 95, 4, true},
		// Lookups at 20s, 40s ...: the refetch fails at 60s, its
		// failure is still kept at 80s though more forged failures
		// than the cache holds came since, and the refetch at 100s
		// succeeds.
		{"key server down, sparse deliveries", 20, 55, 95, 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCertServer(t, ttl)
			f, clock := newFetcher(t, cs.keyServer, Config{CacheEntries: entries})
			var seen outcomes
			var forgedN atomic.Int64
			src := f.Observed(seen.observe)
			good := provider.KeyRequest{Provider: "sns", URL: cs.URL + "/good.pem", PathSuffix: ".pem"}
			doc, err := src.Fetch(context.Background(), good)
			wantDoc(t, doc, err, "good")
			for tick := range ticks {
				clock.advance(time.Second)
				cs.failing.Store(tick >= tc.downFrom && tick < tc.downUntil)
				// The forged ones come first each second, to take
				// whatever budget the second freed.
				for _, err := range concurrently(perTick, func() error {
					_, err := src.Fetch(context.Background(), provider.KeyRequest{
						Provider: "sns", URL: fmt.Sprintf("%s/forged-%d.pem", cs.URL, forgedN.Add(1)), PathSuffix: ".pem",
					})
					return err
				}) {
					wantReason(t, err, provider.ReasonKeyUnavailable)
				}
				if (tick+1)%tc.every != 0 {
					continue
				}
				doc, err := src.Fetch(context.Background(), good)
				if err != nil || string(doc.Body) != "good" {
					t.Fatalf("second %d: genuine lookup got %q, %v (outcomes %v)", tick+1, doc.Body, err, seen.n)
				}
			}
			if n := cs.good.Load(); n != tc.goodHits {
				t.Fatalf("%d fetches of the genuine URL, want %d", n, tc.goodHits)
			}
			if got := seen.get(OutcomeStale) > 0; got != tc.stale {
				t.Fatalf("outcomes %v: stale served %v, want %v", seen.n, got, tc.stale)
			}
			forged := cs.hits.Load() - cs.good.Load()
			if limit := int64(FetchBurst + ticks + 1); forged > limit || seen.get(OutcomeBusy) == 0 {
				t.Fatalf("%d fetches of forged URLs (limit %d), outcomes %v", forged, limit, seen.n)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.docs.len() > entries || f.failures.len() > entries || len(f.inflight) != 0 || len(f.running) != 0 {
				t.Fatalf("%d documents, %d failures, %d in flight, %d running: bounds broken",
					f.docs.len(), f.failures.len(), len(f.inflight), len(f.running))
			}
		})
	}
}

// A refetch refused as busy (the refresh budget spent by other known
// documents) serves the expired document, and the document is refetched
// as soon as the budget allows.
func TestFetchStaleWhileRefreshBusy(t *testing.T) {
	ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	f, clock := newFetcher(t, ks, Config{})
	var seen outcomes
	src := f.Observed(seen.observe)
	req := func(i int) provider.KeyRequest {
		return provider.KeyRequest{Provider: "p", URL: fmt.Sprintf("%s/k%d.pem", ks.URL, i)}
	}
	const known = RefreshBurst + 1
	for i := range known {
		clock.advance(FetchInterval)
		doc, err := src.Fetch(context.Background(), req(i))
		wantDoc(t, doc, err, fmt.Sprintf("/k%d.pem", i))
	}
	clock.advance(DefaultTTL)
	for i := range RefreshBurst {
		doc, err := src.Fetch(context.Background(), req(i))
		wantDoc(t, doc, err, fmt.Sprintf("/k%d.pem", i))
	}
	if n := ks.hits.Load(); n != known+RefreshBurst {
		t.Fatalf("%d fetches, want %d", n, known+RefreshBurst)
	}
	last := req(known - 1)
	for range 2 {
		doc, err := src.Fetch(context.Background(), last)
		wantDoc(t, doc, err, fmt.Sprintf("/k%d.pem", known-1))
	}
	if n := ks.hits.Load(); n != known+RefreshBurst || seen.get(OutcomeStale) != 2 {
		t.Fatalf("%d fetches, outcomes %v; want the refetch refused, stale served twice", n, seen.n)
	}
	clock.advance(RefreshInterval)
	doc, err := src.Fetch(context.Background(), last)
	wantDoc(t, doc, err, fmt.Sprintf("/k%d.pem", known-1))
	if n := ks.hits.Load(); n != known+RefreshBurst+1 || seen.get(OutcomeFetched) != known+RefreshBurst+1 {
		t.Fatalf("%d fetches, outcomes %v; want the refetch once the budget allows", n, seen.n)
	}
}

// A refetch that fails serves the expired document, for up to MaxStale
// past its expiry and not beyond; a caller that asked for a newer one
// than it gets the failure.
func TestFetchStaleIfError(t *testing.T) {
	cs := newCertServer(t, DefaultTTL)
	f, clock := newFetcher(t, cs.keyServer, Config{})
	plain := provider.KeyRequest{Provider: "p", URL: cs.URL + "/good.pem"}
	newer := plain
	newer.RefreshOlderThan = time.Minute
	steps := []struct {
		name    string
		advance time.Duration
		req     provider.KeyRequest
		failing bool
		outcome string
		hits    int64
	}{
		{"first fetch", 0, plain, false, OutcomeFetched, 1},
		{"refetch at expiry fails", DefaultTTL, plain, true, OutcomeStale, 2},
		{"its failure is kept", time.Second, plain, true, OutcomeStale, 2},
		{"a caller wanting a newer one", time.Second, newer, true, OutcomeFailureCached, 2},
		{"tried again after FailureTTL", FailureTTL, plain, true, OutcomeStale, 3},
		{"just within MaxStale", MaxStale - FailureTTL - 3*time.Second, plain, true, OutcomeStale, 4},
		{"past MaxStale, failure kept", 2 * time.Second, plain, true, OutcomeFailureCached, 4},
		{"past MaxStale, fetched again", FailureTTL, plain, true, OutcomeFailed, 5},
		{"the server is back", FailureTTL, plain, false, OutcomeFetched, 6},
		{"cached again", time.Second, plain, false, OutcomeCached, 6},
	}
	for _, s := range steps {
		clock.advance(s.advance)
		cs.failing.Store(s.failing)
		var seen outcomes
		doc, err := f.Observed(seen.observe).Fetch(context.Background(), s.req)
		switch s.outcome {
		case OutcomeFetched, OutcomeStale, OutcomeCached:
			if err != nil || string(doc.Body) != "good" {
				t.Fatalf("%s: got %q, %v", s.name, doc.Body, err)
			}
		default:
			if err == nil {
				t.Fatalf("%s: got %q, want a failure", s.name, doc.Body)
			}
			wantReason(t, err, provider.ReasonKeyUnavailable)
		}
		if seen.get(s.outcome) != 1 || cs.good.Load() != s.hits {
			t.Fatalf("%s: outcomes %v, %d fetches; want %s, %d", s.name, seen.n, cs.good.Load(), s.outcome, s.hits)
		}
	}
}

// A document that was never fetched has nothing to stand in for it: a
// failed fetch, a kept failure and a busy refusal all fail closed, even
// when a document for the same URL with another body (another key id)
// or another URL is cached.
func TestFetchNeverFetchedFailsClosed(t *testing.T) {
	var mu sync.Mutex
	known := map[string]bool{`{"key_id":"a"}`: true}
	ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		ok := known[string(b)] || r.URL.Path == "/good.pem"
		mu.Unlock()
		if !ok {
			http.Error(w, "unknown key", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "key")
	})
	f, clock := newFetcher(t, ks, Config{})
	post := func(kid string) provider.KeyRequest {
		return provider.KeyRequest{Provider: "plaid", URL: ks.URL + "/key/get", Method: http.MethodPost, ContentType: "application/json", Body: []byte(`{"key_id":"` + kid + `"}`)}
	}
	for _, r := range []provider.KeyRequest{post("a"), {Provider: "plaid", URL: ks.URL + "/good.pem"}} {
		doc, err := f.Fetch(context.Background(), r)
		wantDoc(t, doc, err, "key")
	}
	clock.advance(DefaultTTL) // what is cached has expired: stale if anything
	cases := []struct {
		name    string
		req     provider.KeyRequest
		outcome string
	}{
		{"failed", post("forged"), OutcomeFailed},
		{"failure kept", post("forged"), OutcomeFailureCached},
		{"another URL failed", provider.KeyRequest{Provider: "plaid", URL: ks.URL + "/other.pem"}, OutcomeFailed},
	}
	for i := range FetchBurst - 2 {
		cases = append(cases, struct {
			name    string
			req     provider.KeyRequest
			outcome string
		}{fmt.Sprintf("forged %d", i), post(fmt.Sprint("forged", i)), OutcomeFailed})
	}
	cases = append(cases, struct {
		name    string
		req     provider.KeyRequest
		outcome string
	}{"busy", post("one more"), OutcomeBusy})
	for _, tc := range cases {
		var seen outcomes
		doc, err := f.Observed(seen.observe).Fetch(context.Background(), tc.req)
		if err == nil {
			t.Fatalf("%s: got %q, want a failure", tc.name, doc.Body)
		}
		wantReason(t, err, provider.ReasonKeyUnavailable)
		if seen.get(tc.outcome) != 1 {
			t.Fatalf("%s: outcomes %v, want %s", tc.name, seen.n, tc.outcome)
		}
	}
}
