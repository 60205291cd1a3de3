package sdkcheck

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// TestOfficialSDKs runs every case through one real gateway, both ways
// an SDK can vouch for it:
//   - sdk_signed: a delivery the SDK signs passes the gateway and
//     arrives byte for byte; the same delivery tampered with, signed
//     with another key, or signed an hour off, does not arrive at all;
//   - gateway_signed: what `webhook-gateway sign --send` produces passes
//     the gateway and, as the upstream received it, the SDK's own
//     verifier; that verifier refuses it under another key and with a
//     body byte changed, so its yes means something.
func TestOfficialSDKs(t *testing.T) {
	g := startGateway(t, cases)
	t.Run("sdk_signed", func(t *testing.T) {
		signers := 0
		for _, c := range cases {
			if c.sign == nil {
				continue
			}
			signers++
			t.Run(c.name, func(t *testing.T) { checkSDKSigned(t, g, c) })
		}
		if signers == 0 {
			t.Fatal("no SDK signs a delivery")
		}
	})
	t.Run("gateway_signed", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { checkGatewaySigned(t, g, c) })
		}
	})
}

// attempt is one delivery an SDK signs in checkSDKSigned.
type attempt struct {
	name  string
	wrong bool // signed with a key the route does not have
	// skew is the signed time from now, or with old from the oldest
	// time the provider accepts (an hour back for Pub/Sub's reused
	// tokens, five minutes for most).
	skew   time.Duration
	old    bool
	tamper bool // one body byte changed after signing
	status int
	reason string // the refusal's reason
}

var attempts = []attempt{
	{name: "valid", status: http.StatusOK},
	{name: "body_changed", tamper: true, status: http.StatusUnauthorized, reason: "signature_mismatch"},
	{name: "other_key", wrong: true, status: http.StatusUnauthorized, reason: "signature_mismatch"},
	// Every SDK here that signs signs a time.
	{name: "an_hour_too_old", old: true, skew: -time.Hour, status: http.StatusUnauthorized, reason: "timestamp_too_old"},
	{name: "an_hour_ahead", skew: time.Hour, status: http.StatusUnauthorized, reason: "timestamp_in_future"},
}

// signedAt is the time the delivery of a for c claims to be signed at.
func (a attempt) signedAt(c sdkCase) time.Time {
	skew := a.skew
	if a.old {
		p, _ := provider.Lookup(c.provider)
		skew -= p.DefaultTolerance()
	}
	return time.Now().Add(skew)
}

func checkSDKSigned(t *testing.T, g *gateway, c sdkCase) {
	for _, a := range attempts {
		if a.tamper && c.bodyUnsigned {
			continue // a changed body is no forgery there
		}
		t.Run(a.name, func(t *testing.T) {
			key := c.signingKey()
			if a.wrong {
				key = c.wrongSigningKey()
			}
			body := []byte(c.body)
			url := g.URL + "/" + c.name
			h, err := c.sign(key, url, body, a.signedAt(c), "msg_sdk_"+a.name)
			if err != nil {
				t.Fatalf("the SDK did not sign: %v", err)
			}
			h.Set("Content-Type", "application/json")
			sent := delivery{URL: url, Header: h, Body: body}
			if a.tamper {
				sent = sent.tampered()
			}
			g.up.Reset()
			status, answer := g.post(t, sent)
			if status != a.status {
				t.Fatalf("status %d (%s), want %d", status, answer, a.status)
			}
			if a.status != http.StatusOK {
				if got := reason(answer); got != a.reason {
					t.Errorf("reason %q, want %q", got, a.reason)
				}
				if n := g.up.Count(); n != 0 {
					t.Errorf("a refused delivery reached the upstream (%d requests)", n)
				}
				return
			}
			got := g.forwarded(t, sent.URL)
			if !bytes.Equal(got.Body, sent.Body) {
				t.Errorf("the upstream got %q, want %q", got.Body, sent.Body)
			}
			for name := range h {
				if g, w := got.Header.Values(name), h.Values(name); strings.Join(g, "\n") != strings.Join(w, "\n") {
					t.Errorf("header %s arrived as %q, sent %q", name, g, w)
				}
			}
			if err := c.verify(got, c.secret); err != nil {
				t.Errorf("the SDK refused its own delivery as forwarded: %v", err)
			}
		})
	}
}

func checkGatewaySigned(t *testing.T, g *gateway, c sdkCase) {
	file := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(file, []byte(c.body), 0o600); err != nil {
		t.Fatal(err)
	}
	u := g.URL + "/" + c.name
	if c.query != nil {
		u += c.query([]byte(c.body))
	}
	secret := c.signingKey()
	if c.published {
		// The signing key is a key file (Google's service account
		// JSON), which users pass as one.
		keyFile := filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		secret = "{file." + keyFile + "}"
	}
	args := []string{"sign", "--provider", c.provider, "--secret", secret, "--file", file,
		"--url", u, "--send", "--cacert", g.caFile}
	for name, values := range c.header {
		for _, v := range values {
			args = append(args, "--header", name+": "+v)
		}
	}
	g.up.Reset()
	out, err := sign(t, args...)
	if err != nil || !strings.Contains(out, " 200 ") {
		t.Fatalf("webhook-gateway sign --send: %v\n%s", err, out)
	}
	got := g.forwarded(t, u)
	if !c.bodyRewritten && !bytes.Equal(got.Body, []byte(c.body)) {
		t.Errorf("the upstream got %q, want %q", got.Body, c.body)
	}
	if err := c.verify(got, c.secret); err != nil {
		t.Fatalf("the SDK refused what the gateway signed and forwarded: %v", err)
	}
	if c.verify(got, c.wrong) == nil {
		t.Error("the SDK accepted the delivery under a key that did not sign it")
	}
	if !c.bodyUnsigned && c.verify(got.tampered(), c.secret) == nil {
		t.Error("the SDK accepted the delivery with a body byte changed")
	}
}
