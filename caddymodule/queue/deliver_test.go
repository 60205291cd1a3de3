package queue

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/internal/testtls"
)

// seen is one request as an app saw it.
type seen struct {
	Method, RequestURI string
	Header             http.Header
	Body               []byte
	ContentLength      int64
	ProtoMajor         int
}

// app is a real HTTP server that records what reaches it and answers
// with respond (nil: 200 "ok").
type app struct {
	*httptest.Server
	mu      sync.Mutex
	got     []seen
	respond func(w http.ResponseWriter, r *http.Request)
}

func newApp(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *app {
	a := unstartedApp(t, respond)
	a.Start()
	return a
}

// unstartedApp is an app to set up before its Start or StartTLS.
func unstartedApp(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *app {
	a := &app{respond: respond}
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.got = append(a.got, seen{r.Method, r.RequestURI, r.Header.Clone(), body, r.ContentLength, r.ProtoMajor})
	a.mu.Unlock()
	if a.respond != nil {
		a.respond(w, r)
		return
	}
	io.WriteString(w, "ok")
}

func (a *app) requests() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seen(nil), a.got...)
}

func testDeliverer(t *testing.T, c Config) *deliverer {
	t.Helper()
	c.Provision()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := newDeliverer(&c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

func testEvent() *Event {
	return &Event{
		ID:        "01jf0000000000000000000000",
		Queue:     "stripe",
		Provider:  "stripe",
		EventID:   "evt_1",
		EventType: "invoice.paid",
		Method:    http.MethodPost,
		Header: http.Header{
			"Content-Type":     {"application/json"},
			"Stripe-Signature": {"t=1,v1=abc"},
			"X-Many":           {"one", "two"},
			"User-Agent":       {"Stripe/1.0"},
		},
		Body:     []byte("{\"a\":1}\r\n\x00\xff trailing "),
		Attempts: 2,
		Budget:   12,
	}
}

func onlyRequest(t *testing.T, a *app) seen {
	t.Helper()
	got := a.requests()
	if len(got) != 1 {
		t.Fatalf("the app got %d requests, want 1", len(got))
	}
	return got[0]
}

// The app gets the method, To's path and query, the body byte for byte
// and the provider's headers, without those of the provider's
// connection or a stored copy of the gateway's.
func TestDeliverRequest(t *testing.T) {
	a := newApp(t, nil)
	d := testDeliverer(t, Config{To: a.URL + "/hooks/stripe?tenant=7"})
	ev := testEvent()
	ev.Header["Connection"] = []string{"keep-alive, X-Hop"}
	ev.Header["X-Hop"] = []string{"hop"}
	ev.Header["Keep-Alive"] = []string{"timeout=5"}
	ev.Header["Proxy-Authorization"] = []string{"Basic c2VjcmV0"}
	ev.Header["Proxy-Connection"] = []string{"keep-alive"}
	ev.Header["Te"] = []string{"trailers"}
	ev.Header["Trailer"] = []string{"X-Checksum"}
	ev.Header["Upgrade"] = []string{"websocket"}
	ev.Header["Host"] = []string{"provider.example"}
	ev.Header["Content-Length"] = []string{"99999"}
	ev.Header["Webhook-Gateway-Delivery-Id"] = []string{"spoofed"}
	ev.Header["webhook-gateway-attempt"] = []string{"99"}
	ev.Header["Webhook-Gateway-Replay-Of"] = []string{"spoofed"}

	at, retryAfter := d.attempt(context.Background(), ev)
	if at.Status != 200 || at.Error != "" || at.N != 3 || retryAfter != "" {
		t.Fatalf("attempt = %+v, retry-after %q", at, retryAfter)
	}
	if at.At.IsZero() || at.Duration <= 0 {
		t.Fatalf("attempt has no time: %+v", at)
	}
	got := onlyRequest(t, a)
	if got.Method != http.MethodPost || got.RequestURI != "/hooks/stripe?tenant=7" {
		t.Errorf("request line %s %s", got.Method, got.RequestURI)
	}
	if !bytes.Equal(got.Body, ev.Body) || got.ContentLength != int64(len(ev.Body)) {
		t.Errorf("body %q (length %d), want %q", got.Body, got.ContentLength, ev.Body)
	}
	want := map[string]string{
		"Content-Type":        "application/json",
		"Stripe-Signature":    "t=1,v1=abc",
		"User-Agent":          "Stripe/1.0",
		HeaderDeliveryID:      ev.ID,
		HeaderAttempt:         "3",
		HeaderIdempotencyKey:  ev.ID,
		"Content-Length":      "",
		"X-Hop":               "",
		"Keep-Alive":          "",
		"Proxy-Authorization": "",
		"Proxy-Connection":    "",
		"Te":                  "",
		"Trailer":             "",
		"Upgrade":             "",
		HeaderReplayOf:        "",
		"Transfer-Encoding":   "",
	}
	for name, v := range want {
		if name == "Content-Length" {
			continue // the server moves it to ContentLength
		}
		if g := strings.Join(got.Header.Values(name), "|"); g != v {
			t.Errorf("%s: %q, want %q", name, g, v)
		}
	}
	if g := got.Header.Values("X-Many"); len(g) != 2 || g[0] != "one" || g[1] != "two" {
		t.Errorf("X-Many: %q", g)
	}
	if c := got.Header.Get("Connection"); c != "" && !strings.EqualFold(c, "keep-alive") {
		t.Errorf("Connection: %q", c)
	}
}

// The app sees what the stored event says, whatever the attempt.
func TestDeliverGatewayHeaders(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(*Event)
		key      string // Idempotency-Key
		replayOf string
		agent    string
	}{
		{"first attempt", func(ev *Event) { ev.Attempts = 0 }, "01jf0000000000000000000000", "", "Stripe/1.0"},
		{"provider's idempotency key kept", func(ev *Event) { ev.Header["Idempotency-Key"] = []string{"gitlab-key"} }, "gitlab-key", "", "Stripe/1.0"},
		{"lowercase stored key kept", func(ev *Event) { ev.Header["idempotency-key"] = []string{"k2"} }, "k2", "", "Stripe/1.0"},
		{"empty stored key replaced", func(ev *Event) { ev.Header["Idempotency-Key"] = []string{""} }, "01jf0000000000000000000000", "", "Stripe/1.0"},
		{"replay", func(ev *Event) { ev.ReplayOf = "01jeold" }, "01jf0000000000000000000000", "01jeold", "Stripe/1.0"},
		{"no user agent", func(ev *Event) { delete(ev.Header, "User-Agent") }, "01jf0000000000000000000000", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newApp(t, nil)
			d := testDeliverer(t, Config{To: a.URL})
			ev := testEvent()
			c.edit(ev)
			if at, _ := d.attempt(context.Background(), ev); at.Status != 200 {
				t.Fatalf("attempt = %+v", at)
			}
			h := onlyRequest(t, a).Header
			if g := h.Values(HeaderIdempotencyKey); len(g) != 1 || g[0] != c.key {
				t.Errorf("Idempotency-Key %q, want %q", g, c.key)
			}
			if g := h.Get(HeaderReplayOf); g != c.replayOf {
				t.Errorf("Replay-Of %q, want %q", g, c.replayOf)
			}
			if g := h.Get(HeaderAttempt); g != strconv.Itoa(ev.Attempts+1) {
				t.Errorf("Attempt %q, want %d", g, ev.Attempts+1)
			}
			if g := h.Get("User-Agent"); g != c.agent {
				t.Errorf("User-Agent %q, want %q", g, c.agent)
			}
		})
	}
}

// header_up sets fields with the event's placeholders, encoded, and
// Caddy's global ones; a field that comes out empty is not sent.
func TestDeliverHeaderUp(t *testing.T) {
	t.Setenv("WORKER_TEST_TOKEN", "tok-123")
	a := newApp(t, nil)
	d := testDeliverer(t, Config{To: a.URL, HeaderUp: []HeaderField{
		{"Authorization", "Bearer {env.WORKER_TEST_TOKEN}"},
		{"X-Event", "{webhook.provider}/{webhook.event_type}/{webhook.event_id}"},
		{"X-Delivery", "{webhook.delivery_id}"},
		{"X-Unknown", "{webhook.nothing}"},
		{"Stripe-Signature", "{webhook.order}"}, // unknown: left as written
		{"User-Agent", "{webhook.event_id}"},    // empty: removed
	}})
	ev := testEvent()
	ev.EventID = ""
	ev.EventType = "a\r\nInjected: yes"
	if at, _ := d.attempt(context.Background(), ev); at.Status != 200 {
		t.Fatalf("attempt = %+v", at)
	}
	h := onlyRequest(t, a).Header
	want := map[string]string{
		"Authorization":    "Bearer tok-123",
		"X-Event":          "stripe/a%0D%0AInjected: yes/",
		"X-Delivery":       ev.ID,
		"X-Unknown":        "{webhook.nothing}",
		"Stripe-Signature": "{webhook.order}",
		"User-Agent":       "",
		"Injected":         "",
	}
	for name, v := range want {
		if g := h.Get(name); g != v {
			t.Errorf("%s: %q, want %q", name, g, v)
		}
	}
}

// An attempt that gets no answer records why, without To's query.
func TestDeliverFailures(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	slow := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cases := []struct {
		name, to string
		timeout  time.Duration
		want     string
	}{
		{"timeout", slow.URL + "/x?token=s3cret", 150 * time.Millisecond, "timed out after 150ms"},
		{"connection refused", closed + "/x?token=s3cret", time.Second, "refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := testDeliverer(t, Config{To: c.to, Timeout: caddy.Duration(c.timeout)})
			start := time.Now()
			at, _ := d.attempt(context.Background(), testEvent())
			if at.Status != 0 || !strings.Contains(at.Error, c.want) || strings.Contains(at.Error, "s3cret") {
				t.Fatalf("attempt = %+v, want an error with %q and without the query", at, c.want)
			}
			if elapsed := time.Since(start); elapsed > c.timeout+5*time.Second {
				t.Fatalf("attempt took %v with a timeout of %v", elapsed, c.timeout)
			}
		})
	}
}

// Every answer is recorded by its status, with its Retry-After; a
// redirect is not followed.
func TestDeliverAnswers(t *testing.T) {
	var elsewhere atomic.Int32
	other := newApp(t, func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) })
	big := strings.Repeat("x", 3*answerCap)
	cases := []struct {
		name       string
		respond    func(w http.ResponseWriter, r *http.Request)
		status     int
		retryAfter string
	}{
		{"accepted", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }, 202, ""},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
		}, 307, ""},
		{"unavailable with retry-after", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(503)
		}, 503, "120"},
		{"large answer", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) }, 200, ""},
		{"gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) }, 410, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newApp(t, c.respond)
			d := testDeliverer(t, Config{To: a.URL})
			at, ra := d.attempt(context.Background(), testEvent())
			if at.Status != c.status || ra != c.retryAfter || at.Error != "" {
				t.Fatalf("attempt = %+v, retry-after %q; want %d, %q", at, ra, c.status, c.retryAfter)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}

// Attempts reuse one connection: the answer is drained, and the
// transport keeps it alive. No proxy from the environment is used.
func TestDeliverKeepAlive(t *testing.T) {
	a := unstartedApp(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
	var conns atomic.Int32
	a.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	a.Start()
	d := testDeliverer(t, Config{To: a.URL})
	if tr := d.client.Transport.(*http.Transport); tr.Proxy != nil || tr.MaxIdleConnsPerHost != DefaultConcurrency {
		t.Fatalf("transport: proxy set %v, idle per host %d", tr.Proxy != nil, tr.MaxIdleConnsPerHost)
	}
	for range 5 {
		if at, _ := d.attempt(context.Background(), testEvent()); at.Status != 200 {
			t.Fatalf("attempt = %+v", at)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 attempts opened %d connections, want 1", n)
	}
}

func TestDeliverTLS(t *testing.T) {
	a := unstartedApp(t, nil)
	a.EnableHTTP2 = true
	a.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	a.StartTLS()
	ca := testtls.CAFile(t, a.Server)
	cases := []struct {
		name   string
		config Config
		status int
		err    string
	}{
		{"tls_ca", Config{To: a.URL, TLSCA: ca}, 200, ""},
		{"insecure", Config{To: a.URL, TLSInsecureSkipVerify: true}, 200, ""},
		{"system roots refuse", Config{To: a.URL}, 0, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(a.requests())
			d := testDeliverer(t, c.config)
			at, _ := d.attempt(context.Background(), testEvent())
			if at.Status != c.status || !strings.Contains(at.Error, c.err) {
				t.Fatalf("attempt = %+v, want %d %q", at, c.status, c.err)
			}
			got := a.requests()[before:]
			if c.status == 0 {
				if len(got) != 0 {
					t.Fatalf("the app got %d requests over an unverified connection", len(got))
				}
				return
			}
			if len(got) != 1 || got[0].ProtoMajor != 2 || !bytes.Equal(got[0].Body, testEvent().Body) {
				t.Fatalf("the app got %+v, want one HTTP/2 request with the body", got)
			}
		})
	}
}

func TestDeliverBadCA(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "missing.pem"), "no such file"},
		{"not PEM", notPEM, "no PEM certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{To: "https://app.test", TLSCA: c.path}
			cfg.Provision()
			if _, err := newDeliverer(&cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}
