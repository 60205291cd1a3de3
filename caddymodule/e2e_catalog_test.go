package caddymodule_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/providertest"
)

// catalogRoute is one route of TestEveryProviderThroughCaddy: a provider
// with one kind of its keys, and another key of that kind the route does
// not hold.
type catalogRoute struct {
	p          *provider.Provider
	key, other providertest.KeyPair
}

func (r catalogRoute) path() string { return "/" + r.p.Name + "/" + r.key.Name }

// site is the route's block; its secret is read from a file, which
// takes a PEM key as well as a shared secret. Its source names the key
// kind too: a provider with two kinds has two routes.
func (r catalogRoute) site(t *testing.T, dir, upstream string) string {
	file := filepath.Join(dir, r.p.Name+"-"+r.key.Name+".secret")
	if err := os.WriteFile(file, []byte(r.key.Verify), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("route %s {\n\twebhook_gateway %s {\n\t\tsecret {file.%s}\n\t\twebhook_id WH-1\n\t\tsource %s_%s\n\t}\n\treverse_proxy %s\n}\n",
		r.path(), r.p.Name, file, r.p.Name, r.key.Name, upstream)
}

// sign is a delivery to the route shaped as its provider sends one,
// signed at a time with a secret, and what it was before signing.
func (r catalogRoute) sign(t *testing.T, g *gatewaytest.Gateway, secret string, at time.Time) (unsigned, signed providertest.Delivery) {
	t.Helper()
	h, body := providertest.Shape(r.p.Name, at)
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	m := provider.Message{
		Method: http.MethodPost, URL: g.URL + r.path() + "?x=1", ID: "msg_e2e", Timestamp: at, WebhookID: "WH-1",
		Header: h.Clone(), Body: bytes.Clone(body),
	}
	if err := r.p.Scheme.Sign(secret, &m); err != nil {
		t.Fatalf("signing: %v", err)
	}
	return providertest.Delivery{URL: g.URL + r.path() + "?x=1", Header: h, Body: body},
		providertest.Delivery{URL: m.URL, Header: m.Header, Body: m.Body}
}

// TestEveryProviderThroughCaddy runs every provider whose keys the
// route holds through one real Caddy: a delivery shaped and signed as
// the provider sends it reaches the app byte for byte; signed with
// another key, with a signed body byte changed, without any one piece
// its signer added, or signed beyond the shipped tolerance either way,
// it is refused and nothing reaches the app. The providers whose keys
// are fetched (sns, google_pubsub, plaid, and this package's
// fetched_key_test) need a key server of their own: e2e_sns_test.go,
// e2e_tokens_test.go and keys_e2e_test.go run them through Caddy.
func TestEveryProviderThroughCaddy(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	dir := t.TempDir()
	var (
		routes []catalogRoute
		site   strings.Builder
	)
	var fetched []string
	for _, p := range provider.All() {
		if p.Secretless || len(p.Options) > 0 {
			fetched = append(fetched, p.Name)
			continue
		}
		keys, ok := providertest.Keys(p.Scheme)
		if !ok {
			t.Fatalf("%s: no test keys for its scheme", p.Name)
		}
		others, _ := providertest.Keys(p.Scheme)
		for i, kp := range keys {
			r := catalogRoute{p: p, key: kp, other: others[i]}
			routes = append(routes, r)
			site.WriteString(r.site(t, dir, up.Addr()))
		}
	}
	t.Logf("%d routes; not here, their keys being fetched: %s", len(routes), strings.Join(fetched, ", "))
	g := gatewaytest.Start(t, "", site.String())
	for _, r := range routes {
		t.Run(r.p.Name+"/"+r.key.Name, func(t *testing.T) { r.check(t, g, up) })
	}
}

func (r catalogRoute) check(t *testing.T, g *gatewaytest.Gateway, up *gatewaytest.Upstream) {
	d := r.p.Scheme.Describe()
	unsigned, good := r.sign(t, g, r.key.Sign, time.Now())
	t.Run("valid", func(t *testing.T) {
		up.Reset()
		resp, answer := sendDelivery(t, g, good)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%s), want 200", resp.StatusCode, answer)
		}
		got := up.Received()
		if len(got) != 1 || got[0].Method != http.MethodPost || got[0].Path != r.path() || !bytes.Equal(got[0].Body, good.Body) {
			t.Fatalf("upstream got %d requests (%+v), want the delivery byte for byte", len(got), got)
		}
	})
	t.Run("other key", func(t *testing.T) {
		_, forged := r.sign(t, g, r.other.Sign, time.Now())
		mustBeRefused(t, g, up, forged)
	})
	t.Run("body changed", func(t *testing.T) {
		if d.Body == provider.BodyNone {
			t.Skip("the scheme does not authenticate the body")
		}
		forged := good.Clone()
		var ok bool
		if forged.Body, ok = providertest.ChangedBody(unsigned, good); !ok {
			t.Fatal("the body lacks " + providertest.Marker)
		}
		mustBeRefused(t, g, up, forged)
	})
	for _, forged := range providertest.Stripped(unsigned, good) {
		t.Run("without "+forged.Removed, func(t *testing.T) { mustBeRefused(t, g, up, forged) })
	}
	if d.Replay != provider.ReplayTimestamp && d.Replay != provider.ReplayTimestampAndID {
		return
	}
	tol := r.p.DefaultTolerance()
	for _, c := range []struct {
		skew   time.Duration
		reason string
	}{{-tol - time.Minute, "timestamp_too_old"}, {tol + time.Minute, "timestamp_in_future"}} {
		t.Run(fmt.Sprintf("skew %s", c.skew), func(t *testing.T) {
			if why, ok := boundByExpiry[r.p.Name]; ok && c.skew < 0 {
				t.Skip(why)
			}
			_, forged := r.sign(t, g, r.key.Sign, time.Now().Add(c.skew))
			if p := mustBeRefused(t, g, up, forged); p.Reason != c.reason {
				t.Fatalf("reason %q (%s), want %s with the shipped tolerance %s", p.Reason, p.Detail, c.reason, tol)
			}
		})
	}
}

// boundByExpiry are the providers whose signed time is bounded in the
// past by the token's own exp (plus the tolerance as leeway), not by the
// tolerance: Wix's tokens live about 83 h, so that its retries, which
// resend the token, are accepted; TestBodyJWT checks that bound.
var boundByExpiry = map[string]string{
	"wix": "wix: a past iat is bounded by the token's exp (83h as Wix signs), with the tolerance as leeway",
}

// mustBeRefused sends a forged delivery: it must be refused with a
// problem and reach nothing upstream.
func mustBeRefused(t *testing.T, g *gatewaytest.Gateway, up *gatewaytest.Upstream, forged providertest.Delivery) problem {
	t.Helper()
	up.Reset()
	resp, answer := sendDelivery(t, g, forged)
	p := decodeProblem(t, resp, answer)
	if resp.StatusCode < 400 || resp.StatusCode >= 500 || p.Reason == "" {
		t.Fatalf("status %d (%s), want a refusal", resp.StatusCode, answer)
	}
	if n := up.Count(); n != 0 {
		t.Fatalf("a refused delivery reached the upstream %d times", n)
	}
	return p
}

// sendDelivery POSTs a delivery to its URL, header and body as they are.
func sendDelivery(t *testing.T, g *gatewaytest.Gateway, d providertest.Delivery) (*http.Response, []byte) {
	t.Helper()
	path, ok := strings.CutPrefix(d.URL, g.URL)
	if !ok {
		t.Fatalf("delivery to %s, not to the gateway", d.URL)
	}
	return send(t, g, http.MethodPost, path, d.Header, string(d.Body))
}
