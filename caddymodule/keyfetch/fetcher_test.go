package keyfetch

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

var snsHosts = regexp.MustCompile(`^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$`)

func serve(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }
}

// wantReason checks that err is a refusal with that reason.
func wantReason(t *testing.T, err error, want provider.Reason) {
	t.Helper()
	var perr *provider.Error
	if !errors.As(err, &perr) || perr.Reason != want {
		t.Fatalf("error %v, want reason %s", err, want)
	}
}

func TestFetchRefusesWithoutFetching(t *testing.T) {
	ks := newKeyServer(t, serve("doc"))
	redirect := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ks.URL+"/key.pem", http.StatusFound)
	})
	other := newKeyServer(t, serve("other"))
	hp := ks.hostPort()
	cases := []struct {
		name   string
		allow  []string
		req    provider.KeyRequest
		reason provider.Reason
	}{
		{"http scheme", nil, provider.KeyRequest{URL: "http://" + hp + "/key.pem"}, provider.ReasonKeyNotAllowed},
		{"userinfo", nil, provider.KeyRequest{URL: "https://user@" + hp + "/key.pem"}, provider.ReasonKeyNotAllowed},
		{"userinfo naming an allowed host", nil, provider.KeyRequest{URL: "https://sns.us-east-1.amazonaws.com@" + hp + "/key.pem", HostPattern: snsHosts}, provider.ReasonKeyNotAllowed},
		{"port not allowed", nil, provider.KeyRequest{URL: "https://127.0.0.1:" + other.port() + "/key.pem"}, provider.ReasonKeyNotAllowed},
		{"port of a host allowed on 443 only", []string{"127.0.0.1"}, provider.KeyRequest{URL: ks.URL + "/key.pem"}, provider.ReasonKeyNotAllowed},
		{"port of a host the provider names", []string{}, provider.KeyRequest{URL: ks.URL + "/key.pem", Hosts: []string{"127.0.0.1"}}, provider.ReasonKeyNotAllowed},
		{"empty port", nil, provider.KeyRequest{URL: "https://127.0.0.1:/key.pem", Hosts: []string{"127.0.0.1"}}, provider.ReasonKeyNotAllowed},
		{"other host", nil, provider.KeyRequest{URL: "https://keys.example.com/key.pem"}, provider.ReasonKeyNotAllowed},
		{"host outside the pattern", nil, provider.KeyRequest{URL: "https://sns.evil.example/key.pem", HostPattern: snsHosts}, provider.ReasonKeyNotAllowed},
		// A host entry admits a key location the config names (keys_url),
		// not one a forged message names: any .pem file on that host
		// would become a signing certificate.
		{"host entry for a URL the message names", []string{hp, "keys.invalid"}, provider.KeyRequest{URL: "https://keys.invalid/key.pem", HostPattern: snsHosts, PathSuffix: ".pem"}, provider.ReasonKeyNotAllowed},
		// A URL the message names has one spelling per document: other
		// spellings of one path would each be a cache entry and a fetch.
		{"escaped letter in a message's path", nil, provider.KeyRequest{URL: ks.URL + "/%6bey.pem", HostPattern: snsHosts, PathSuffix: ".pem"}, provider.ReasonKeyNotAllowed},
		{"dot segment in a message's path", nil, provider.KeyRequest{URL: ks.URL + "/x/../key.pem", HostPattern: snsHosts, PathSuffix: ".pem"}, provider.ReasonKeyNotAllowed},
		{"empty segment in a message's path", nil, provider.KeyRequest{URL: ks.URL + "//key.pem", HostPattern: snsHosts, PathSuffix: ".pem"}, provider.ReasonKeyNotAllowed},
		{"pattern host with a port", nil, provider.KeyRequest{URL: "https://sns.us-east-1.amazonaws.com:" + ks.port() + "/key.pem", HostPattern: snsHosts}, provider.ReasonKeyNotAllowed},
		{"path suffix", nil, provider.KeyRequest{URL: ks.URL + "/key.txt", PathSuffix: ".pem"}, provider.ReasonKeyNotAllowed},
		{"suffix in the query only", nil, provider.KeyRequest{URL: ks.URL + "/key?x=.pem", PathSuffix: ".pem"}, provider.ReasonKeyNotAllowed},
		{"method", nil, provider.KeyRequest{URL: ks.URL + "/key.pem", Method: http.MethodDelete}, provider.ReasonKeyNotAllowed},
		{"relative URL", nil, provider.KeyRequest{URL: "/key.pem"}, provider.ReasonKeyNotAllowed},
		{"percent-escaped host", nil, provider.KeyRequest{URL: "https://127.0.0.1%2f@x/key.pem"}, provider.ReasonKeyNotAllowed},
		{"loopback name the provider names", nil, provider.KeyRequest{URL: "https://localhost/key.pem", Hosts: []string{"localhost"}}, provider.ReasonKeyNotAllowed},
		{"loopback name allowed on 443", []string{"localhost"}, provider.KeyRequest{URL: "https://localhost/key.pem"}, provider.ReasonKeyNotAllowed},
		{"IPv4-mapped loopback", nil, provider.KeyRequest{URL: "https://[::ffff:127.0.0.1]/key.pem", Hosts: []string{"::ffff:127.0.0.1"}}, provider.ReasonKeyNotAllowed},
		{"redirect to an allowed host", []string{hp, redirect.hostPort()}, provider.KeyRequest{URL: redirect.URL + "/key.pem"}, provider.ReasonKeyUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			allow := tc.allow
			if allow == nil {
				allow = []string{hp}
			}
			f, _ := newFetcher(t, ks, Config{Allow: allow})
			var seen outcomes
			_, err := f.Observed(seen.observe).Fetch(context.Background(), tc.req)
			wantReason(t, err, tc.reason)
			if n := ks.hits.Load() + other.hits.Load(); n != 0 {
				t.Fatalf("%d requests reached the servers", n)
			}
			if n := ks.conns.Load() + other.conns.Load(); n != 0 {
				t.Fatalf("%d connections reached the servers", n)
			}
			if tc.reason == provider.ReasonKeyNotAllowed && seen.get(OutcomeRefused) != 1 {
				t.Fatalf("outcomes %v, want one refused", seen.n)
			}
		})
	}
}

// The dial check runs on the address connected to: a name admitted by
// the rules that resolves to a loopback address never gets a connection,
// while an allow entry naming that exact host and port reaches it.
func TestFetchChecksTheDialedAddress(t *testing.T) {
	ks := newKeyServer(t, serve("doc"))
	refused := allowList{exact: map[string]bool{}}
	if _, err := refused.dialContext(time.Second)(context.Background(), "tcp", ks.hostPort()); !errors.Is(err, errAddressRefused) {
		t.Fatalf("dial without an exact entry: %v, want refused", err)
	}
	if _, err := refused.dialContext(time.Second)(context.Background(), "tcp", "localhost:"+ks.port()); !errors.Is(err, errAddressRefused) {
		t.Fatalf("dial of localhost without an exact entry: %v, want refused", err)
	}
	if n := ks.conns.Load(); n != 0 {
		t.Fatalf("%d connections reached the server", n)
	}
	f, _ := newFetcher(t, ks, Config{Allow: []string{"localhost:" + ks.port()}})
	doc, err := f.Fetch(context.Background(), provider.KeyRequest{URL: "https://localhost:" + ks.port() + "/key.pem"})
	if err != nil || string(doc.Body) != "doc" {
		t.Fatalf("fetch through an exact entry: %q, %v", doc.Body, err)
	}
}

func TestFetchOncePerDocument(t *testing.T) {
	ks := newKeyServer(t, serve("doc"))
	f, _ := newFetcher(t, ks, Config{})
	var seen outcomes
	src := f.Observed(seen.observe)
	const callers = 1000
	errs := concurrently(callers, func() error {
		doc, err := src.Fetch(context.Background(), provider.KeyRequest{Provider: "test", URL: ks.URL + "/key.pem"})
		if err == nil && string(doc.Body) != "doc" {
			err = fmt.Errorf("body %q", doc.Body)
		}
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := ks.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for %d callers, want 1", n, callers)
	}
	if seen.get(OutcomeFetched) != 1 || seen.get(OutcomeCached) != callers-1 {
		t.Fatalf("outcomes %v", seen.n)
	}
}

// hang answers only when release is closed or the client goes away.
func hang(release <-chan struct{}, entered chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if entered != nil {
			entered <- struct{}{}
		}
		select {
		case <-release:
			io.WriteString(w, "late doc")
		case <-r.Context().Done():
		}
	}
}

func TestFetchThatHangsIsBoundedAndKept(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ks := newKeyServer(t, hang(release, nil))
	f, clock := newFetcher(t, ks, Config{Timeout: durationOf(MinTimeout)})
	req := provider.KeyRequest{URL: ks.URL + "/key.pem"}
	start := time.Now()
	errs := concurrently(20, func() error {
		_, err := f.Fetch(context.Background(), req)
		return err
	})
	// Generous slack: the machine is shared, but a hang of its own would
	// take until the test's end.
	if took := time.Since(start); took > MinTimeout+8*time.Second {
		t.Fatalf("callers waited %s, timeout is %s", took, MinTimeout)
	}
	for _, err := range errs {
		wantReason(t, err, provider.ReasonKeyUnavailable)
	}
	var seen outcomes
	_, err := f.Observed(seen.observe).Fetch(context.Background(), req)
	wantReason(t, err, provider.ReasonKeyUnavailable)
	if n := ks.hits.Load(); n != 1 || seen.get(OutcomeFailureCached) != 1 {
		t.Fatalf("%d fetches, outcomes %v: want the failure kept", n, seen.n)
	}
	clock.advance(FailureTTL - time.Second)
	f.Fetch(context.Background(), req)
	if n := ks.hits.Load(); n != 1 {
		t.Fatalf("%d fetches within %s of a failure", n, FailureTTL)
	}
	clock.advance(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	f.Fetch(ctx, req)
	// The fetch goes on after the caller stopped waiting: wait for it to
	// reach the server, however loaded the machine.
	for deadline := time.Now().Add(10 * time.Second); ks.hits.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ks.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after the failure expired, want 2", n)
	}
}

func durationOf(d time.Duration) caddy.Duration { return caddy.Duration(d) }

func TestFetchSurvivesACallerHangingUp(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	ks := newKeyServer(t, hang(release, entered))
	f, _ := newFetcher(t, ks, Config{})
	req := provider.KeyRequest{URL: ks.URL + "/key.pem"}

	first, hangUp := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := f.Fetch(first, req)
		firstErr <- err
	}()
	<-entered // the first caller's fetch reached the server
	other := make(chan error, 1)
	go func() {
		doc, err := f.Fetch(context.Background(), req)
		if err == nil && string(doc.Body) != "late doc" {
			err = fmt.Errorf("body %q", doc.Body)
		}
		other <- err
	}()
	hangUp()
	wantReason(t, <-firstErr, provider.ReasonKeyUnavailable)
	close(release)
	if err := <-other; err != nil {
		t.Fatalf("the other caller: %v", err)
	}
	if _, err := f.Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if n := ks.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestFetchAnswers(t *testing.T) {
	const limit = 1024
	cases := []struct {
		name    string
		handler http.HandlerFunc
		reason  provider.Reason // "" for success
	}{
		{"at the cap", serve(strings.Repeat("k", limit)), ""},
		{"over the cap", serve(strings.Repeat("k", limit+1)), provider.ReasonKeyUnavailable},
		{"far over the cap", serve(strings.Repeat("k", 10*limit)), provider.ReasonKeyUnavailable},
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, provider.ReasonKeyUnavailable},
		{"server error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, provider.ReasonKeyUnavailable},
		{"no content", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, provider.ReasonKeyUnavailable},
		{"empty", func(w http.ResponseWriter, r *http.Request) {}, provider.ReasonKeyUnavailable},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/other.pem", http.StatusMovedPermanently)
		}, provider.ReasonKeyUnavailable},
		// The cap counts what the transparent gzip decoding yields.
		{"gzip bomb", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(make([]byte, 8<<20))
			zw.Close()
		}, provider.ReasonKeyUnavailable},
		{"gzip within the cap", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write([]byte(strings.Repeat("k", limit)))
			zw.Close()
		}, ""},
		{"content length longer than the body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "short")
		}, provider.ReasonKeyUnavailable},
		// The timeout bounds the body too: a server that never stops
		// sending a byte at a time is cut off, not waited for.
		{"body dribbled", func(w http.ResponseWriter, r *http.Request) {
			for {
				if _, err := io.WriteString(w, "k"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}, provider.ReasonKeyUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, tc.handler)
			f, _ := newFetcher(t, ks, Config{MaxBytes: limit, Timeout: durationOf(MinTimeout)})
			doc, err := f.Fetch(context.Background(), provider.KeyRequest{URL: ks.URL + "/key.pem"})
			if tc.reason == "" {
				if err != nil || len(doc.Body) != limit {
					t.Fatalf("%d bytes, %v", len(doc.Body), err)
				}
			} else {
				wantReason(t, err, tc.reason)
			}
			if n := ks.hits.Load(); n != 1 {
				t.Fatalf("%d requests, want 1 (no redirect followed)", n)
			}
		})
	}
}

func TestFetchIgnoresProxyVariables(t *testing.T) {
	proxy := newKeyServer(t, serve("proxied"))
	plainProxy := newKeyServer(t, serve("proxied"))
	t.Setenv("HTTPS_PROXY", "http://"+proxy.hostPort())
	t.Setenv("https_proxy", "http://"+proxy.hostPort())
	t.Setenv("HTTP_PROXY", "http://"+plainProxy.hostPort())
	t.Setenv("NO_PROXY", "")
	ks := newKeyServer(t, serve("doc"))
	// A host of a reserved name: it only resolves through a proxy, which
	// would be asked to CONNECT to it (loopback targets are never
	// proxied by Go, so the test server could not show it).
	f, _ := newFetcher(t, ks, Config{Allow: []string{ks.hostPort(), "keys.invalid"}})
	_, err := f.Fetch(context.Background(), provider.KeyRequest{URL: "https://keys.invalid/key.pem"})
	wantReason(t, err, provider.ReasonKeyUnavailable)
	if doc, err := f.Fetch(context.Background(), provider.KeyRequest{URL: ks.URL + "/key.pem"}); err != nil || string(doc.Body) != "doc" {
		t.Fatalf("direct fetch: %q, %v", doc.Body, err)
	}
	if n := proxy.conns.Load() + plainProxy.conns.Load(); n != 0 {
		t.Fatalf("%d connections reached the proxies", n)
	}
	if f.client.Transport.(*http.Transport).Proxy != nil {
		t.Fatal("the transport has a proxy function")
	}
}

func TestFetchCacheIsBounded(t *testing.T) {
	ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	f, clock := newFetcher(t, ks, Config{CacheEntries: 4})
	get := func(i int) {
		t.Helper()
		clock.advance(FetchInterval) // within the pace for new documents
		if _, err := f.Fetch(context.Background(), provider.KeyRequest{URL: fmt.Sprintf("%s/k%d.pem", ks.URL, i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		get(i)
	}
	if n := f.docs.len(); n != 4 {
		t.Fatalf("%d cached documents, want 4", n)
	}
	get(9) // recent: cached
	if n := ks.hits.Load(); n != 10 {
		t.Fatalf("%d fetches, want 10", n)
	}
	get(0) // evicted: fetched again
	if n := ks.hits.Load(); n != 11 {
		t.Fatalf("%d fetches, want 11", n)
	}
}

func TestFetchFailuresDoNotEvictDocuments(t *testing.T) {
	ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/good.pem" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "good")
	})
	f, _ := newFetcher(t, ks, Config{CacheEntries: 2})
	good := provider.KeyRequest{URL: ks.URL + "/good.pem"}
	if _, err := f.Fetch(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	for i := range FetchBurst - 1 {
		f.Fetch(context.Background(), provider.KeyRequest{URL: fmt.Sprintf("%s/forged%d.pem", ks.URL, i)})
	}
	if n := f.failures.len(); n != 2 {
		t.Fatalf("%d failures kept, want 2", n)
	}
	hits := ks.hits.Load()
	if _, err := f.Fetch(context.Background(), good); err != nil || ks.hits.Load() != hits {
		t.Fatalf("the good document was evicted by failures (%v)", err)
	}
}

func TestFetchHonoursMaxAge(t *testing.T) {
	cases := []struct {
		name         string
		cacheControl string
		age          string
		kept         time.Duration
	}{
		{"max-age", "public, max-age=120", "", 120 * time.Second},
		{"max-age less age", "max-age=300", "200", 100 * time.Second},
		{"short max-age clamped", "max-age=1", "", MinTTL},
		{"no-store clamped", "no-store", "", MinTTL},
		{"long max-age clamped", "max-age=31536000", "", MaxTTL},
		{"none", "", "", DefaultTTL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.cacheControl != "" {
					w.Header().Set("Cache-Control", tc.cacheControl)
				}
				if tc.age != "" {
					w.Header().Set("Age", tc.age)
				}
				io.WriteString(w, "doc")
			})
			f, clock := newFetcher(t, ks, Config{})
			req := provider.KeyRequest{URL: ks.URL + "/key.pem"}
			f.Fetch(context.Background(), req)
			clock.advance(tc.kept - time.Second)
			f.Fetch(context.Background(), req)
			if n := ks.hits.Load(); n != 1 {
				t.Fatalf("%d fetches within %s", n, tc.kept)
			}
			clock.advance(2 * time.Second)
			f.Fetch(context.Background(), req)
			if n := ks.hits.Load(); n != 2 {
				t.Fatalf("%d fetches after %s, want 2", n, tc.kept)
			}
		})
	}
}

func TestFetchRefreshOlderThan(t *testing.T) {
	fail := false
	var mu sync.Mutex
	ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.WriteString(w, "doc")
	})
	f, clock := newFetcher(t, ks, Config{})
	plain := provider.KeyRequest{URL: ks.URL + "/jwks"}
	refresh := plain
	refresh.RefreshOlderThan = 10 * time.Second
	steps := []struct {
		advance time.Duration
		req     provider.KeyRequest
		fail    bool
		hits    int64
		reason  provider.Reason
	}{
		{0, plain, false, 1, ""},
		{5 * time.Second, refresh, false, 1, ""},                       // young enough
		{6 * time.Second, refresh, false, 2, ""},                       // 11s old: fetched again
		{11 * time.Second, plain, false, 2, ""},                        // the plain caller is content
		{0, refresh, true, 3, provider.ReasonKeyUnavailable},           // refresh fails
		{time.Second, refresh, true, 3, provider.ReasonKeyUnavailable}, // its failure is kept
		{time.Second, plain, true, 3, ""},                              // the document still serves
		{FailureTTL, refresh, true, 4, provider.ReasonKeyUnavailable},  // tried again after FailureTTL
	}
	for i, s := range steps {
		clock.advance(s.advance)
		mu.Lock()
		fail = s.fail
		mu.Unlock()
		_, err := f.Fetch(context.Background(), s.req)
		if s.reason == "" && err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if s.reason != "" {
			wantReason(t, err, s.reason)
		}
		if n := ks.hits.Load(); n != s.hits {
			t.Fatalf("step %d: %d fetches, want %d", i, n, s.hits)
		}
	}
}

func TestFetchNoCache(t *testing.T) {
	ks := newKeyServer(t, serve("doc"))
	f, _ := newFetcher(t, ks, Config{})
	req := provider.KeyRequest{URL: ks.URL + "/confirm", NoCache: true}
	for range 2 {
		if _, err := f.Fetch(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if n := ks.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	if f.docs.len() != 0 {
		t.Fatal("a no-cache fetch was cached")
	}
}

func TestFetchPostKeyedByBody(t *testing.T) {
	ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", 400)
			return
		}
		w.Write(b)
	})
	f, _ := newFetcher(t, ks, Config{})
	post := func(body string) {
		t.Helper()
		doc, err := f.Fetch(context.Background(), provider.KeyRequest{URL: ks.URL + "/key/get", Method: http.MethodPost, ContentType: "application/json", Body: []byte(body)})
		if err != nil || string(doc.Body) != body {
			t.Fatalf("%q, %v", doc.Body, err)
		}
	}
	post(`{"key_id":"a"}`)
	post(`{"key_id":"b"}`)
	post(`{"key_id":"a"}`)
	if n := ks.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// A fragment is never sent, and "?" asks for no query: spellings of one
// URL that differ only so are one document, one cache entry and one
// fetch, or a flood of them would fetch at will and evict the others.
func TestFetchOneEntryPerDocument(t *testing.T) {
	cases := []struct {
		name string
		urls []string // the same document spelled differently
	}{
		{"fragments", []string{"/key.pem", "/key.pem#a", "/key.pem#b"}},
		{"empty query", []string{"/key.pem", "/key.pem?"}},
		{"empty query and fragment", []string{"/key.pem?#x", "/key.pem"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.RequestURI()) })
			f, _ := newFetcher(t, ks, Config{})
			for _, u := range tc.urls {
				doc, err := f.Fetch(context.Background(), provider.KeyRequest{URL: ks.URL + u, PathSuffix: ".pem"})
				if err != nil || string(doc.Body) != "/key.pem" {
					t.Fatalf("%s: %q, %v", u, doc.Body, err)
				}
			}
			if n := ks.hits.Load(); n != 1 {
				t.Fatalf("%d fetches, want 1", n)
			}
			if n := f.docs.len(); n != 1 {
				t.Fatalf("%d cache entries, want 1", n)
			}
		})
	}
}

func TestFetchBusy(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, MaxInFlight)
	hanging := hang(release, entered)
	ks := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			hanging(w, r)
			return
		}
		io.WriteString(w, "doc")
	})
	f, clock := newFetcher(t, ks, Config{})
	known := provider.KeyRequest{Provider: "p", URL: ks.URL + "/known.pem"}
	if _, err := f.Fetch(context.Background(), known); err != nil {
		t.Fatal(err)
	}
	clock.advance(DefaultTTL) // known.pem expires; the pace is whole again
	var wg sync.WaitGroup
	for i := range MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Fetch(context.Background(), provider.KeyRequest{Provider: "p", URL: fmt.Sprintf("%s/slow%d.pem", ks.URL, i)})
		}()
	}
	for range MaxInFlight {
		<-entered
	}
	var seen outcomes
	src := f.Observed(seen.observe)
	for _, req := range []provider.KeyRequest{
		{Provider: "p", URL: ks.URL + "/one-more.pem"},
		{Provider: "p", URL: ks.URL + "/confirm", NoCache: true},
	} {
		_, err := src.Fetch(context.Background(), req)
		wantReason(t, err, provider.ReasonKeyUnavailable)
	}
	if seen.get(OutcomeBusy) != 2 {
		t.Fatalf("outcomes %v, want 2 busy", seen.n)
	}
	// Nor is the refresh of a document fetched before: it has a budget
	// of its own, which new documents cannot spend.
	if _, err := src.Fetch(context.Background(), known); err != nil || seen.get(OutcomeFetched) != 1 {
		t.Fatalf("refresh of a known document: %v, outcomes %v", err, seen.n)
	}
	// Another provider is not held up by this one's fetches.
	if _, err := f.Fetch(context.Background(), provider.KeyRequest{Provider: "q", URL: ks.URL + "/other.pem"}); err != nil {
		t.Fatalf("another provider: %v", err)
	}
	close(release)
	wg.Wait()
	if n := ks.hits.Load(); n != MaxInFlight+3 {
		t.Fatalf("%d fetches, want %d", n, MaxInFlight+3)
	}
	// Busy was not kept: once the fetches end and the pace allows, the
	// document is fetched.
	clock.advance(FetchInterval)
	if _, err := f.Fetch(context.Background(), provider.KeyRequest{Provider: "p", URL: ks.URL + "/one-more.pem"}); err != nil {
		t.Fatalf("after the fetches ended: %v", err)
	}
	if n := len(f.running); n != 0 {
		t.Fatalf("%d providers still hold fetch slots", n)
	}
}

// A provider starts FetchBurst fetches at once, then one per
// FetchInterval, however many distinct documents are asked for.
func TestFetchPace(t *testing.T) {
	ks := newKeyServer(t, serve("doc"))
	f, clock := newFetcher(t, ks, Config{})
	var seen outcomes
	src := f.Observed(seen.observe)
	fetch := func(i int, name string) error {
		_, err := src.Fetch(context.Background(), provider.KeyRequest{Provider: name, URL: fmt.Sprintf("%s/kid%d", ks.URL, i)})
		return err
	}
	for i := range FetchBurst {
		if err := fetch(i, "p"); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	wantReason(t, fetch(FetchBurst, "p"), provider.ReasonKeyUnavailable)
	if err := fetch(100, "q"); err != nil {
		t.Fatalf("another provider: %v", err)
	}
	if err := fetch(0, "p"); err != nil {
		t.Fatalf("a cached document: %v", err)
	}
	clock.advance(FetchInterval)
	if err := fetch(FetchBurst, "p"); err != nil {
		t.Fatalf("after %s: %v", FetchInterval, err)
	}
	wantReason(t, fetch(FetchBurst+1, "p"), provider.ReasonKeyUnavailable)
	if n := ks.hits.Load(); n != FetchBurst+2 || seen.get(OutcomeBusy) != 2 {
		t.Fatalf("%d fetches, outcomes %v; want %d fetches and 2 busy", n, seen.n, FetchBurst+2)
	}
}

func TestFetchUntrustedCertificate(t *testing.T) {
	ks := newKeyServer(t, serve("doc"))
	f, err := New(Config{Allow: []string{ks.hostPort()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(context.Background(), provider.KeyRequest{URL: ks.URL + "/key.pem"})
	wantReason(t, err, provider.ReasonKeyUnavailable)
	if !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("error %v, want it to say the certificate is not trusted", err)
	}
}
