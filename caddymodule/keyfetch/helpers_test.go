package keyfetch

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/testredis"
)

// keyServer is a real TLS server that counts the requests reaching it.
type keyServer struct {
	*httptest.Server
	hits  atomic.Int64
	conns atomic.Int64 // TCP connections accepted
	ca    string       // PEM file trusting its certificate
}

// newKeyServer starts a TLS server whose certificate names 127.0.0.1,
// ::1 and localhost, issued by a throwaway CA written to ks.ca.
func newKeyServer(t testing.TB, h http.HandlerFunc) *keyServer {
	t.Helper()
	ks := &keyServer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		h(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ks.conns.Add(1)
		}
	}
	// Handshakes the tests refuse on purpose are not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	ca, cert, err := testredis.ServerCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ks.Server, ks.ca = srv, ca
	return ks
}

// hostPort is the server's "127.0.0.1:port", the allow entry that admits it.
func (ks *keyServer) hostPort() string { return ks.Listener.Addr().String() }

func (ks *keyServer) port() string {
	_, p, _ := net.SplitHostPort(ks.hostPort())
	return p
}

// newFetcher builds a Fetcher that trusts ks and admits exactly it, with
// a clock the test moves.
func newFetcher(t *testing.T, ks *keyServer, cfg Config) (*Fetcher, *testClock) {
	t.Helper()
	if ks != nil {
		cfg.TLSCA = ks.ca
		if cfg.Allow == nil {
			cfg.Allow = []string{ks.hostPort()}
		}
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	clock := &testClock{base: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.now = clock.now
	return f, clock
}

// testClock is a Fetcher's clock that moves only when told.
type testClock struct {
	base   time.Time
	offset atomic.Int64 // nanoseconds
}

func (c *testClock) now() time.Time { return c.base.Add(time.Duration(c.offset.Load())) }

func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// concurrently runs fn n times at once and returns their errors.
func concurrently(n int, fn func() error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errs
}

// outcomes counts what an Observer was told.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) observe(_, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[outcome]++
}

func (o *outcomes) get(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}
