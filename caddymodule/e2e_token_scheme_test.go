package caddymodule_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestTokenSchemeThroughCaddy: a sender that is not built in and proves
// itself with a static token in a header of its own (a Supabase database
// webhook, a BigCommerce hook's custom header) is described by a
// `scheme token` block; the token is checked, stripped before the app,
// and its absence or a wrong value goes nowhere.
func TestTokenSchemeThroughCaddy(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t, "", `route /db {
		webhook_gateway supabase_db {
			secret s3cret-db-token
			scheme token {
				header X-Db-Hook-Token
				prefix "Bearer "
			}
		}
		reverse_proxy `+up.Addr()+`
	}`)
	body := `{"type":"INSERT","table":"orders","record":{"id":7}}`
	cases := []struct {
		name       string
		header     http.Header
		wantStatus int
		wantReason string
	}{
		{"valid", http.Header{"X-Db-Hook-Token": {"Bearer s3cret-db-token"}}, http.StatusOK, ""},
		{"wrong token", http.Header{"X-Db-Hook-Token": {"Bearer not-the-token"}}, http.StatusUnauthorized, "signature_mismatch"},
		{"without prefix", http.Header{"X-Db-Hook-Token": {"s3cret-db-token"}}, http.StatusUnauthorized, ""},
		{"missing header", http.Header{}, http.StatusUnauthorized, "missing_signature"},
		{"token in another header", http.Header{"Authorization": {"Bearer s3cret-db-token"}}, http.StatusUnauthorized, "missing_signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			h := c.header.Clone()
			h.Set("Content-Type", "application/json")
			resp, got := post(t, g, "/db", h, body)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, c.wantStatus)
			}
			rcv := up.Received()
			if c.wantStatus != http.StatusOK {
				p := decodeProblem(t, resp, got)
				if c.wantReason != "" && p.Reason != c.wantReason {
					t.Errorf("reason %q, want %q", p.Reason, c.wantReason)
				}
				if len(rcv) != 0 {
					t.Fatalf("a refused delivery reached the upstream (%d requests)", len(rcv))
				}
				return
			}
			if len(rcv) != 1 || !bytes.Equal(rcv[0].Body, []byte(body)) {
				t.Fatalf("upstream got %d requests, want the body byte for byte", len(rcv))
			}
			if v := rcv[0].Header.Values("X-Db-Hook-Token"); len(v) != 0 {
				t.Errorf("the token reached the app: %q", v)
			}
			checkHeader(t, rcv[0].Header, "Webhook-Gateway-Provider", "supabase_db")
		})
	}
}
