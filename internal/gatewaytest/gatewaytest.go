// Package gatewaytest runs a real Caddy, with the webhook gateway, over
// HTTPS with `tls internal`, in front of a recording upstream. It is the
// harness of the end-to-end tests: nothing in it is mocked.
package gatewaytest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	// The standard modules (reverse_proxy, tls internal, …) and ours.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/webrev/webhook-gateway/caddymodule"
)

// Received is one request as the upstream saw it.
type Received struct {
	Method        string
	Path          string
	Header        http.Header
	Body          []byte
	ContentLength int64
}

// Upstream is a real HTTP server that records what reaches it.
type Upstream struct {
	*httptest.Server
	mu       sync.Mutex
	received []Received
	// Respond, when set, writes the answer; default 200 "ok".
	Respond func(w http.ResponseWriter, r *http.Request)
}

// NewUpstream starts a recording upstream, closed when the test ends.
func NewUpstream(t testing.TB) *Upstream {
	return NewUpstreamFunc(t, nil)
}

// NewUpstreamFunc starts a recording upstream that answers with respond
// (after recording the request); nil answers 200 "ok".
func NewUpstreamFunc(t testing.TB, respond func(w http.ResponseWriter, r *http.Request)) *Upstream {
	u := &Upstream{Respond: respond}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.received = append(u.received, Received{r.Method, r.URL.Path, r.Header.Clone(), body, r.ContentLength})
	respond := u.Respond
	u.mu.Unlock()
	if respond != nil {
		respond(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok")
}

// Received returns a copy of what reached the upstream so far.
func (u *Upstream) Received() []Received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Received(nil), u.received...)
}

// Count is how many requests reached the upstream.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.received)
}

// Reset forgets what was received.
func (u *Upstream) Reset() {
	u.mu.Lock()
	u.received = nil
	u.mu.Unlock()
}

// Addr is the upstream's host:port, for reverse_proxy.
func (u *Upstream) Addr() string { return strings.TrimPrefix(u.URL, "http://") }

// Gateway is a running Caddy with the gateway's config loaded.
type Gateway struct {
	// URL is https://localhost:<port>.
	URL string
	// Client trusts the gateway's local CA and nothing else.
	Client *http.Client
	// LogPath is the file Caddy logs to, JSON lines.
	LogPath string

	dir            string
	port, httpPort int
}

// mu serialises gateways: Caddy's running config is process-wide.
var mu sync.Mutex

// Start loads a Caddyfile and waits until the gateway answers over TLS.
// globals go inside the global options block; site is the body of the
// HTTPS site block. Caddy is stopped when the test ends.
func Start(t testing.TB, globals, site string) *Gateway {
	t.Helper()
	mu.Lock()
	dir := t.TempDir()
	g := &Gateway{dir: dir, LogPath: filepath.Join(dir, "caddy.log"), port: freePort(t), httpPort: freePort(t)}
	g.URL = fmt.Sprintf("https://localhost:%d", g.port)
	if err := load(g.config(globals, site)); err != nil {
		mu.Unlock()
		t.Fatalf("loading Caddy config: %v\n%s", err, g.config(globals, site))
	}
	t.Cleanup(func() {
		caddy.Stop()
		mu.Unlock()
	})
	g.Client = g.client(t)
	g.waitReady(t)
	return g
}

// Reload loads a new config into the running Caddy, as an operator's
// config change would.
func (g *Gateway) Reload(t testing.TB, globals, site string) {
	t.Helper()
	if err := load(g.config(globals, site)); err != nil {
		t.Fatalf("reloading Caddy config: %v", err)
	}
}

// config is the whole Caddyfile: test-friendly globals (no admin
// endpoint, no trust-store changes, storage and logs in the temp dir)
// and one HTTPS site with a certificate from Caddy's local CA.
func (g *Gateway) config(globals, site string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	skip_install_trust
	storage file_system %s
	http_port %d
	https_port %d
	log {
		output file %s
		format json
		level INFO
	}
	%s
}

https://localhost:%d {
	tls internal
	%s
}
`, filepath.Join(g.dir, "storage"), g.httpPort, g.port, g.LogPath, globals, g.port, site)
}

// Adapt turns a Caddyfile into Caddy JSON.
func Adapt(caddyfile string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), nil)
	if err != nil {
		return nil, err
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("adapter warnings: %v", warnings)
	}
	return cfg, nil
}

func load(text string) error {
	// Tests build their Caddyfiles by pasting pieces; formatting them
	// first keeps the adapter's style warning out of the way.
	cfg, err := Adapt(string(caddyfile.Format([]byte(text))))
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

func (g *Gateway) client(t testing.TB) *http.Client {
	root := filepath.Join(g.dir, "storage", "pki", "authorities", "local", "root.crt")
	var pem []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if pem, err = os.ReadFile(root); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local CA root never appeared: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the local CA root")
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
		ForceAttemptHTTP2: true,
		MaxIdleConns:      100, MaxIdleConnsPerHost: 100,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// waitReady polls until the site's certificate is served.
func (g *Gateway) waitReady(t testing.TB) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := g.Client.Get(g.URL + "/__ready")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never answered over TLS: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs returns the log lines whose logger is name.
func (g *Gateway) Logs(t testing.TB) []byte {
	b, err := os.ReadFile(g.LogPath)
	if err != nil {
		t.Fatalf("reading Caddy log: %v", err)
	}
	return b
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
