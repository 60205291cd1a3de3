// Package gatewaytest runs a real Caddy, with the webhook gateway, over
// HTTPS with `tls internal`, in front of a recording upstream. It is the
// harness of the end-to-end tests: nothing in it is mocked.
package gatewaytest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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

// endpoint is what an in-process Gateway and a gateway process
// (Instance) share: a temp dir with Caddy's storage and log, the ports,
// the Caddyfile around the test's pieces, and a client that trusts the
// local CA of that storage.
type endpoint struct {
	// URL is https://localhost:<port>.
	URL string
	// Client trusts the gateway's local CA and nothing else.
	Client *http.Client
	// LogPath is the file Caddy logs to, JSON lines.
	LogPath string
	// Admin is the host:port of Caddy's admin endpoint, with
	// Config.Admin; empty otherwise (the endpoint is off).
	Admin string

	dir            string
	port, httpPort int
}

// Config is what a gateway runs besides the test-friendly globals.
type Config struct {
	// Globals go inside the global options block.
	Globals string
	// Site is the body of the HTTPS site block, https://localhost:<port>
	// with `tls internal`.
	Site string
	// Sites are further site blocks, written as they are: an app
	// answering with `respond` on a port of its own, for instance.
	Sites string
	// Admin turns Caddy's admin endpoint on, on a free local port
	// (Admin), for tests of the admin API and the subcommands that
	// call it.
	Admin bool
}

// newEndpoint picks free ports and lays out dir.
func newEndpoint(t testing.TB, dir string, admin bool) endpoint {
	e := endpoint{dir: dir, LogPath: filepath.Join(dir, "caddy.log"), port: freePort(t), httpPort: freePort(t)}
	e.URL = fmt.Sprintf("https://localhost:%d", e.port)
	if admin {
		e.Admin = fmt.Sprintf("localhost:%d", freePort(t))
	}
	return e
}

// Gateway is a running Caddy with the gateway's config loaded.
type Gateway struct {
	endpoint
}

// mu serialises gateways: Caddy's running config is process-wide.
var mu sync.Mutex

// Start loads a Caddyfile and waits until the gateway answers over TLS.
// globals go inside the global options block; site is the body of the
// HTTPS site block. Caddy is stopped when the test ends.
func Start(t testing.TB, globals, site string) *Gateway {
	t.Helper()
	return StartWith(t, Config{Globals: globals, Site: site})
}

// StartWith is Start with the whole Config.
func StartWith(t testing.TB, c Config) *Gateway {
	t.Helper()
	mu.Lock()
	dir := t.TempDir()
	g := &Gateway{newEndpoint(t, dir, c.Admin)}
	err := load(g.config(c))
	// Test packages run in parallel, so a port found free can be taken
	// before Caddy binds it: try fresh ports a few times.
	for try := 0; err != nil && strings.Contains(err.Error(), "address already in use") && try < 5; try++ {
		g = &Gateway{newEndpoint(t, dir, c.Admin)}
		err = load(g.config(c))
	}
	if err != nil {
		mu.Unlock()
		t.Fatalf("loading Caddy config: %v\n%s", err, g.config(c))
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
	if err := g.TryReload(globals, site); err != nil {
		t.Fatalf("reloading Caddy config: %v", err)
	}
}

// TryReload is Reload for a config that may fail to load, which leaves
// the running one in place, as Caddy does.
func (g *Gateway) TryReload(globals, site string) error {
	return load(g.config(Config{Globals: globals, Site: site, Admin: g.Admin != ""}))
}

// config is the whole Caddyfile: test-friendly globals (no admin
// endpoint unless asked for, no trust-store changes, storage and logs in
// the temp dir), one HTTPS site with a certificate from Caddy's local CA
// and the config's further sites.
func (e *endpoint) config(c Config) string {
	admin := "off"
	if e.Admin != "" {
		admin = e.Admin
	}
	return fmt.Sprintf(`{
	admin %s
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

%s
`, admin, filepath.Join(e.dir, "storage"), e.httpPort, e.port, e.LogPath, c.Globals, e.port, c.Site, c.Sites)
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

// client waits for the local CA root in the endpoint's storage and
// returns a client that trusts it and nothing else.
func (e *endpoint) client(t testing.TB) *http.Client {
	t.Helper()
	c, err := e.trustingClient(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trustingClient is client for a gateway that may die while starting:
// it gives up as soon as exited (nil for an in-process gateway) is
// closed.
func (e *endpoint) trustingClient(t testing.TB, exited <-chan struct{}) (*http.Client, error) {
	root := filepath.Join(e.dir, "storage", "pki", "authorities", "local", "root.crt")
	var pem []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if pem, err = os.ReadFile(root); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the local CA root never appeared: %w", err)
		}
		if !pause(exited, 20*time.Millisecond) {
			return nil, errExited
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in the local CA root")
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
		ForceAttemptHTTP2: true,
		MaxIdleConns:      100, MaxIdleConnsPerHost: 100,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// errExited: the gateway process exited while it was awaited.
var errExited = errors.New("the gateway exited while starting")

// waitReady polls until the site's certificate is served.
func (e *endpoint) waitReady(t testing.TB) {
	t.Helper()
	if err := e.awaitTLS(nil); err != nil {
		t.Fatal(err)
	}
}

// awaitTLS is waitReady for a gateway that may die while starting.
func (e *endpoint) awaitTLS(exited <-chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := e.Client.Get(e.URL + "/__ready")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway never answered over TLS: %w", err)
		}
		if !pause(exited, 50*time.Millisecond) {
			return errExited
		}
	}
}

// pause sleeps for d and reports false if exited was closed meanwhile.
func pause(exited <-chan struct{}, d time.Duration) bool {
	select {
	case <-exited:
		return false
	case <-time.After(d):
		return true
	}
}

// Logs returns what Caddy logged so far, JSON lines.
func (e *endpoint) Logs(t testing.TB) []byte {
	b, err := os.ReadFile(e.LogPath)
	if err != nil {
		t.Fatalf("reading Caddy log: %v", err)
	}
	return b
}

// FreePort is a port of 127.0.0.1 free now, for a further site of a
// Config (an app on Caddy's `respond`, say).
func FreePort(t testing.TB) int { return freePort(t) }

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
