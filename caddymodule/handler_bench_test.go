package caddymodule

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// benchHandler is a provisioned-by-hand handler on the memory store, so
// that the benchmark measures the handler and not Caddy's plumbing.
func benchHandler(b *testing.B, h *Handler) *Handler {
	b.Helper()
	h.app = &App{shared: store.NewMemory(store.MemoryConfig{}), flood: store.NewMemory(store.MemoryConfig{})}
	h.Provider = "stripe"
	h.Secrets = []string{"whsec_bench"}
	h.logger = zap.NewNop()
	p, err := h.resolveProvider()
	if err != nil {
		b.Fatal(err)
	}
	h.provider = p
	if h.verifier, err = p.NewVerifier(provider.VerifierConfig{Secrets: h.Secrets}); err != nil {
		b.Fatal(err)
	}
	h.methods = h.allowedMethods()
	if h.metrics, err = registerMetrics(nil); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkServeHTTP measures the handler's own cost per delivery of a
// 1 KiB signed Stripe event, the next handler answering 200 at once:
//
//	go test -run '^$' -bench ServeHTTP -benchmem ./caddymodule
func BenchmarkServeHTTP(b *testing.B) {
	// "baseline" calls the next handler directly: the cost of building
	// and signing the request, to subtract from the others.
	cases := []struct {
		name string
		h    *Handler
	}{
		{"baseline", nil},
		{"verify", &Handler{}},
		{"verify_rate_limit", &Handler{RateLimit: &RateLimit{Count: 1_000_000, Period: caddy.Duration(time.Second)}}},
		{"verify_idempotency", &Handler{Idempotency: &Idempotency{}}},
		{"verify_rate_limit_idempotency", &Handler{
			RateLimit:   &RateLimit{Count: 1_000_000, Period: caddy.Duration(time.Second)},
			Idempotency: &Idempotency{},
		}},
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		w.Header().Set("Content-Type", "text/plain")
		_, err := io.WriteString(w, "ok")
		return err
	})
	p, _ := provider.Lookup("stripe")
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			serve := func(w http.ResponseWriter, r *http.Request) error { return next(w, r) }
			if c.h != nil {
				h := benchHandler(b, c.h)
				serve = func(w http.ResponseWriter, r *http.Request) error { return h.ServeHTTP(w, r, next) }
			}
			body := bytes.Repeat([]byte("x"), 1024)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				copy(body, `{"id":"evt_`+strconv.Itoa(i)+`","x":"`)
				body[1022], body[1023] = '"', '}'
				m := &provider.Message{Timestamp: time.Now(), Body: body, Header: http.Header{}}
				if err := p.Scheme.Sign("whsec_bench", m); err != nil {
					b.Fatal(err)
				}
				req := httptest.NewRequest(http.MethodPost, "https://localhost/stripe", bytes.NewReader(body))
				req.Header = m.Header
				repl := caddy.NewReplacer()
				req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
				w := httptest.NewRecorder()
				if err := serve(w, req); err != nil || w.Code != http.StatusOK {
					b.Fatalf("status %d, %v: %s", w.Code, err, w.Body)
				}
			}
		})
	}
}
