package caddymodule_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// githubRoute is a GitHub route at /github with extra handler options.
func githubRoute(opts, upstream string) string {
	return fmt.Sprintf("route /github {\nwebhook_gateway github {\nsecret s\n%s\n}\nreverse_proxy %s\n}\n", opts, upstream)
}

// rawTLS opens an HTTP/1.1 connection to the gateway, trusting its CA,
// so that a test can send a request's head and hold its body back.
func rawTLS(t *testing.T, url string, client *http.Client) *tls.Conn {
	t.Helper()
	cfg := client.Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), cfg)
	if err != nil {
		t.Fatalf("dialing the gateway: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestEarlyRefusalsAnswerAtOnce sends a request head and holds the body
// back, as a client waiting for 100 Continue or streaming a large body
// does: the refusal, decided before the body is read, must arrive while
// the client still holds it, and close the connection.
func TestEarlyRefusalsAnswerAtOnce(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", githubRoute("max_body 1MiB", up.Addr()))
	const declared = 10 << 20
	cases := []struct {
		name   string
		method string
		expect bool
		sent   int // body bytes sent before waiting for the answer
		status int
		reason string
	}{
		{"expect_continue_too_large", http.MethodPost, true, 0, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"large_body_partly_sent", http.MethodPost, false, 1 << 10, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"expect_continue_wrong_method", http.MethodPut, true, 0, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"wrong_method_partly_sent", http.MethodPatch, false, 1 << 10, http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := rawTLS(t, g.URL, g.Client)
			head := fmt.Sprintf("%s /github HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n",
				c.method, strings.TrimPrefix(g.URL, "https://"), declared)
			if c.expect {
				head += "Expect: 100-continue\r\n"
			}
			head += "\r\n" + strings.Repeat("a", c.sent)
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			// Generous on a loaded machine, far below the minute a
			// draining server would keep the client waiting.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			for err == nil && resp.StatusCode == http.StatusContinue {
				t.Errorf("the gateway asked for the body it refuses")
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil {
				t.Fatalf("no answer while the body was held back: %v", err)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			p := decodeProblem(t, resp, got)
			if resp.StatusCode != c.status || p.Reason != c.reason {
				t.Errorf("status %d reason %q, want %d %s", resp.StatusCode, p.Reason, c.status, c.reason)
			}
			// ReadResponse turns "Connection: close" into Close.
			if !resp.Close {
				t.Errorf("the connection is kept open, want Connection: close")
			}
			if up.Count() != 0 {
				t.Errorf("a refused request reached the upstream")
			}
		})
	}
}

// TestUnsafeEventIDIsDelivered signs events whose id or type holds bytes
// no header value may carry: the delivery reaches the upstream with the
// header percent-encoded, and its claim is completed, so a redelivery is
// replayed rather than forwarded again.
func TestUnsafeEventIDIsDelivered(t *testing.T) {
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			up := gatewaytest.NewUpstream(t)
			g := gatewaytest.Start(t, st.globals, stripeRoute("idempotency 1h", up.Addr()))
			cases := []struct {
				name, body     string
				wantID, wantTy string
			}{
				{"crlf_nul_in_id", `{"id":"evt_\r\n\u0000x","type":"invoice.paid"}`, "evt_%0D%0A%00x", "invoice.paid"},
				{"header_injection_in_id", `{"id":"evt_2\r\nX-Injected: 1","type":"invoice.paid"}`, "evt_2%0D%0AX-Injected: 1", "invoice.paid"},
				{"lf_in_type", `{"id":"evt_3","type":"invoice\npaid"}`, "evt_3", "invoice%0Apaid"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					up.Reset()
					resp, got := sendEvent(t, g, c.body)
					if resp.StatusCode != http.StatusOK || string(got) != "ok" {
						t.Fatalf("status %d body %q, want 200 ok", resp.StatusCode, got)
					}
					rcv := up.Received()
					if len(rcv) != 1 {
						t.Fatalf("upstream got %d requests, want 1", len(rcv))
					}
					checkHeader(t, rcv[0].Header, "Webhook-Gateway-Event-Id", c.wantID)
					checkHeader(t, rcv[0].Header, "Webhook-Gateway-Event-Type", c.wantTy)
					if v := rcv[0].Header.Get("X-Injected"); v != "" {
						t.Errorf("a header was injected: X-Injected %q", v)
					}
					resp, _ = sendEvent(t, g, c.body)
					if resp.StatusCode != http.StatusOK || resp.Header.Get("Webhook-Gateway-Replay") != "true" || up.Count() != 1 {
						t.Errorf("redelivery: status %d replay %q upstream %d; want a replayed 200 and 1 request upstream",
							resp.StatusCode, resp.Header.Get("Webhook-Gateway-Replay"), up.Count())
					}
				})
			}
		})
	}
}

// Bounds of TestDeclaredBodiesReserveNoMemory.
const (
	heldConnections = 400
	declaredBody    = 1 << 20
	heapBudget      = 32 << 20
)

// TestDeclaredBodiesReserveNoMemory holds 400 connections that each
// declare a 1 MiB body and send a few bytes of it, as an unauthenticated
// client can, and reads the heap of the gateway process (built without
// -race) through Caddy's admin API: it must grow by less than 32 MiB,
// since memory is taken as bytes arrive, not as they are announced.
func TestDeclaredBodiesReserveNoMemory(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	sockDir, err := os.MkdirTemp("", "wg-admin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "admin.sock")
	inst := gatewaytest.StartProcess(t, "admin unix/"+sock, githubRoute("", up.Addr()))
	admin := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(admin.CloseIdleConnections)

	before := heapInuse(t, admin)
	head := fmt.Sprintf("POST /github HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"a\":",
		strings.TrimPrefix(inst.URL, "https://"), declaredBody)
	for range heldConnections {
		conn := rawTLS(t, inst.URL, inst.Client)
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
	}
	awaitReaders(t, admin, heldConnections)
	after := heapInuse(t, admin)
	t.Logf("heap in use: %d MiB before, %d MiB with %d connections each declaring %d bytes",
		before>>20, after>>20, heldConnections, declaredBody)
	if grown := after - before; grown >= heapBudget {
		t.Errorf("the heap grew by %d MiB, want less than %d MiB", grown>>20, heapBudget>>20)
	}
	if up.Count() != 0 {
		t.Errorf("an unfinished body reached the upstream")
	}
}

// heapInuse runs a garbage collection in the gateway process and returns
// its live heap (runtime.MemStats.HeapInuse), both through pprof.
func heapInuse(t *testing.T, admin *http.Client) int64 {
	t.Helper()
	text := adminGet(t, admin, "/debug/pprof/heap?gc=1&debug=1")
	m := regexp.MustCompile(`(?m)^# HeapInuse = (\d+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no HeapInuse in the heap profile:\n%.2000s", text)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// awaitReaders waits until n goroutines of the gateway are reading a
// request body: every connection has been accepted and its handler has
// taken whatever memory it takes for the body.
func awaitReaders(t *testing.T, admin *http.Client, n int) {
	t.Helper()
	// Each stack group of the debug=1 goroutine profile starts with
	// "<count> @ <pcs>" and lists its frames after "#".
	group := regexp.MustCompile(`(?m)^(\d+) @`)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		reading := 0
		for _, g := range strings.Split(adminGet(t, admin, "/debug/pprof/goroutine?debug=1"), "\n\n") {
			if m := group.FindStringSubmatch(g); m != nil && strings.Contains(g, "caddymodule.readBody") {
				c, _ := strconv.Atoi(m[1])
				reading += c
			}
		}
		if reading >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d connections are being read", reading, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func adminGet(t *testing.T, admin *http.Client, path string) string {
	t.Helper()
	resp, err := admin.Get("http://admin" + path)
	if err != nil {
		t.Fatalf("admin API %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin API %s: status %d, %v\n%s", path, resp.StatusCode, err, b)
	}
	return string(b)
}
