package provider

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The second wave's rows checked against signatures computed here with
// crypto/hmac straight from each provider's documented formula, not with
// the scheme's own Sign: a wrong header, prefix, template, encoding or
// secret decoding in a row fails here even though TestCatalog, which
// signs and verifies with the same row, would pass.

func mac(h func() hash.Hash, key []byte, parts ...string) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func hexMAC(h func() hash.Hash, key string, parts ...string) string {
	return hex.EncodeToString(mac(h, []byte(key), parts...))
}

func b64MAC(h func() hash.Hash, key string, parts ...string) string {
	return base64.StdEncoding.EncodeToString(mac(h, []byte(key), parts...))
}

// standardHeaders signs as the Standard Webhooks spec says: the key is
// the base64 after an optional whsec_.
func standardHeaders(secret, id, ts, body string) http.Header {
	key, err := base64.StdEncoding.DecodeString(trimWhsec(secret))
	if err != nil {
		panic(err)
	}
	sig := base64.StdEncoding.EncodeToString(mac(sha256.New, key, id, ".", ts, ".", body))
	return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {"v1," + sig}}
}

func trimWhsec(s string) string {
	if len(s) > 6 && s[:6] == "whsec_" {
		return s[6:]
	}
	return s
}

func bodyHeader(name, value string) func(secret, body string) http.Header {
	return func(string, string) http.Header { return http.Header{http.CanonicalHeaderKey(name): {value}} }
}

func TestSecondWaveIndependentSignatures(t *testing.T) {
	now := time.Unix(1700000000, 0)
	unix := strconv.FormatInt(now.Unix(), 10)
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	const body = `{"id":"evt_1","type":"test.event"}`
	const raw = "s3cr3t-Key_9"
	const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hexBody := func(name string, h func() hash.Hash) func(string, string) http.Header {
		return func(secret, body string) http.Header {
			return http.Header{http.CanonicalHeaderKey(name): {hexMAC(h, secret, body)}}
		}
	}
	b64Body := func(name string, h func() hash.Hash) func(string, string) http.Header {
		return func(secret, body string) http.Header {
			return http.Header{http.CanonicalHeaderKey(name): {b64MAC(h, secret, body)}}
		}
	}
	for _, c := range []struct {
		name     string
		provider string
		secret   string
		sign     func(secret, body string) http.Header
		// token: the scheme authenticates the sender, not the body.
		token bool
	}{
		{name: "airwallex ms timestamp + body", provider: "airwallex", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"X-Timestamp": {ms}, "X-Signature": {hexMAC(sha256.New, s, ms, b)}}
		}},
		{name: "alchemy hex body", provider: "alchemy", secret: raw, sign: hexBody("X-Alchemy-Signature", sha256.New)},
		{name: "autodesk sha1hash= prefix", provider: "autodesk", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"X-Adsk-Signature": {"sha1hash=" + hexMAC(sha1.New, s, b)}}
		}},
		{name: "bolt pending header during rotation", provider: "bolt", secret: raw, sign: b64Body("X-Bolt-Hmac-Sha256-Pending", sha256.New)},
		{name: "bolt current header", provider: "bolt", secret: raw, sign: b64Body("X-Bolt-Hmac-Sha256", sha256.New)},
		{name: "brex secret without whsec_", provider: "brex", secret: trimWhsec(whsec), sign: func(s, b string) http.Header {
			return standardHeaders(s, "msg_1", unix, b)
		}},
		{name: "cal.com hex body", provider: "cal_com", secret: raw, sign: hexBody("X-Cal-Signature-256", sha256.New)},
		{name: "chargify hex body", provider: "chargify", secret: raw, sign: hexBody("X-Chargify-Webhook-Signature-Hmac-Sha-256", sha256.New)},
		{name: "checkout.com hex body", provider: "checkout_com", secret: raw, sign: hexBody("Cko-Signature", sha256.New)},
		{name: "commerce layer base64 body", provider: "commerce_layer", secret: raw, sign: b64Body("X-CommerceLayer-Signature", sha256.New)},
		{name: "customer.io v0:ts:body", provider: "customerio", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"X-Cio-Timestamp": {unix}, "X-Cio-Signature": {hexMAC(sha256.New, s, "v0:", unix, ":", b)}}
		}},
		{name: "dwolla hex body", provider: "dwolla", secret: raw, sign: hexBody("X-Request-Signature-SHA-256", sha256.New)},
		{name: "fastspring base64 body", provider: "fastspring", secret: raw, sign: b64Body("X-FS-Signature", sha256.New)},
		{name: "front ms:body base64", provider: "front", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"X-Front-Request-Timestamp": {ms}, "X-Front-Signature": {b64MAC(sha256.New, s, ms, ":", b)}}
		}},
		{name: "gocardless hex body", provider: "gocardless", secret: raw, sign: hexBody("Webhook-Signature", sha256.New)},
		{name: "heroku base64 body", provider: "heroku", secret: raw, sign: b64Body("Heroku-Webhook-Hmac-SHA256", sha256.New)},
		{name: "incident.io standard webhooks", provider: "incident_io", secret: whsec, sign: func(s, b string) http.Header {
			return standardHeaders(s, "msg_1", unix, b)
		}},
		{name: "klaviyo body then timestamp", provider: "klaviyo", secret: raw, sign: func(s, b string) http.Header {
			ts := "2026-12-01T21:00:00+00:00"
			return http.Header{"Klaviyo-Timestamp": {ts}, "Klaviyo-Signature": {hexMAC(sha256.New, s, b, ts)}}
		}},
		{name: "launchdarkly hex body", provider: "launch_darkly", secret: raw, sign: hexBody("X-LD-Signature", sha256.New)},
		{name: "lithic standard webhooks", provider: "lithic", secret: whsec, sign: func(s, b string) http.Header {
			return standardHeaders(s, "msg_1", unix, b)
		}},
		{name: "modern treasury hex body", provider: "modern_treasury", secret: raw, sign: hexBody("X-Signature", sha256.New)},
		{name: "mollie bare hex", provider: "mollie", secret: raw, sign: hexBody("X-Mollie-Signature", sha256.New)},
		{name: "mollie sha256= hex", provider: "mollie", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"X-Mollie-Signature": {"sha256=" + hexMAC(sha256.New, s, b)}}
		}},
		{name: "mongodb base64 sha1 body", provider: "mongodb", secret: raw, sign: b64Body("X-MMS-Signature", sha1.New)},
		{name: "openai standard webhooks", provider: "openai", secret: whsec, sign: func(s, b string) http.Header {
			return standardHeaders(s, "msg_1", unix, b)
		}},
		{name: "orb zone-less ISO time", provider: "orb", secret: raw, sign: func(s, b string) http.Header {
			ts := now.UTC().Format("2006-01-02T15:04:05.000")
			return http.Header{"X-Orb-Timestamp": {ts}, "X-Orb-Signature": {"v1=" + hexMAC(sha256.New, s, "v1:", ts, ":", b)}}
		}},
		{name: "pinwheel v2:ts:body with v2= prefix", provider: "pinwheel", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"X-Timestamp": {unix}, "X-Pinwheel-Signature": {"v2=" + hexMAC(sha256.New, s, "v2:", unix, ":", b)}}
		}},
		{name: "polar standard webhooks", provider: "polar", secret: whsec, sign: func(s, b string) http.Header {
			return standardHeaders(s, "msg_1", unix, b)
		}},
		{name: "pusher hex body", provider: "pusher", secret: raw, sign: hexBody("X-Pusher-Signature", sha256.New)},
		{name: "recurly ms timestamp first, then signatures", provider: "recurly", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"Recurly-Signature": {ms + "," + hexMAC(sha256.New, "previous-key", ms, ".", b) + "," + hexMAC(sha256.New, s, ms, ".", b)}}
		}},
		{name: "render standard webhooks", provider: "render", secret: whsec, sign: func(s, b string) http.Header {
			return standardHeaders(s, "msg_1", unix, b)
		}},
		{name: "replicate standard webhooks", provider: "replicate", secret: whsec, sign: func(s, b string) http.Header {
			return standardHeaders(s, "msg_1", unix, b)
		}},
		{name: "signal sciences hex body", provider: "signal_sciences", secret: raw, sign: hexBody("X-SigSci-Signature", sha256.New)},
		{name: "sinch conversation body.nonce.ts base64", provider: "sinch_conversation", secret: raw, sign: func(s, b string) http.Header {
			const nonce = "01JHFFHWYY7HSS4FWTMDTQEK8V"
			return http.Header{
				"X-Sinch-Webhook-Signature-Timestamp": {unix}, "X-Sinch-Webhook-Signature-Nonce": {nonce},
				"X-Sinch-Webhook-Signature-Algorithm": {"HmacSHA256"},
				"X-Sinch-Webhook-Signature":           {b64MAC(sha256.New, s, b, ".", nonce, ".", unix)},
			}
		}},
		{name: "sinch numbers hex sha1 body", provider: "sinch_numbers", secret: raw, sign: hexBody("X-Sinch-Signature", sha1.New)},
		{name: "sonatype hex sha1 body", provider: "sonatype", secret: raw, sign: hexBody("X-Nexus-Webhook-Signature", sha1.New)},
		{name: "stytch svix headers", provider: "stytch", secret: whsec, sign: func(s, b string) http.Header {
			h := standardHeaders(s, "msg_1", unix, b)
			return http.Header{"Svix-Id": h["Webhook-Id"], "Svix-Timestamp": h["Webhook-Timestamp"], "Svix-Signature": h["Webhook-Signature"]}
		}},
		{name: "tally base64 body", provider: "tally", secret: raw, sign: b64Body("Tally-Signature", sha256.New)},
		{name: "webex hex sha1 body", provider: "webex", secret: raw, sign: hexBody("X-Spark-Signature", sha1.New)},
		{name: "woocommerce base64 body", provider: "woocommerce", secret: raw, sign: b64Body("X-WC-Webhook-Signature", sha256.New)},
		{name: "workos t=ms, v1=hex", provider: "workos", secret: raw, sign: func(s, b string) http.Header {
			return http.Header{"Workos-Signature": {"t=" + ms + ", v1=" + hexMAC(sha256.New, s, ms, ".", b)}}
		}},
		{name: "auth0 authorization token", provider: "auth0", secret: "Bearer abc123", token: true, sign: bodyHeader("Authorization", "Bearer abc123")},
		{name: "chargebee basic auth", provider: "chargebee", secret: "hooks:pa55", token: true,
			sign: bodyHeader("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("hooks:pa55")))},
		{name: "revenuecat authorization header", provider: "revenuecat", secret: "rc-token", token: true, sign: bodyHeader("Authorization", "rc-token")},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, ok := Lookup(c.provider)
			if !ok {
				t.Fatalf("provider %s is not registered", c.provider)
			}
			v, err := p.NewVerifier(VerifierConfig{Secrets: []string{c.secret}})
			if err != nil {
				t.Fatal(err)
			}
			req := func(h http.Header, b string) *Request {
				return &Request{Method: "POST", URL: "https://hooks.example.com/in", Header: h, Body: []byte(b), Now: now}
			}
			if _, err := v.Verify(req(c.sign(c.secret, body), body)); err != nil {
				t.Fatalf("independently signed delivery refused: %v", err)
			}
			if !c.token {
				// The signature of one body must not pass for another.
				if _, err := v.Verify(req(c.sign(c.secret, body), body+" ")); !isRefusal(err) {
					t.Fatalf("changed body: want a refusal, got %v", err)
				}
			}
			other, err := p.NewVerifier(VerifierConfig{Secrets: []string{wrongSecret(c.secret)}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Verify(req(c.sign(c.secret, body), body)); !isRefusal(err) {
				t.Fatalf("wrong secret: want a refusal, got %v", err)
			}
		})
	}
}

// wrongSecret is another secret in the same format.
func wrongSecret(s string) string {
	if len(s) > 6 && s[:6] == "whsec_" {
		return "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key of 24 bytes!"))
	}
	if _, err := base64.StdEncoding.DecodeString(s); err == nil {
		return base64.StdEncoding.EncodeToString([]byte("another key of 24 bytes!"))
	}
	if i := len(s) - 1; s[i] != 'x' {
		return s[:i] + "x"
	}
	return s[:len(s)-1] + "y"
}

func isRefusal(err error) bool {
	var perr *Error
	return errors.As(err, &perr)
}

// TestSecondWaveTolerances pins the documented bounds: WorkOS's 180 s,
// five minutes for the SDK-checked ones (Recurly's included), and Orb's
// zone-less time read as UTC (read as local time it would be off by the
// zone's offset).
func TestSecondWaveTolerances(t *testing.T) {
	for _, c := range []struct {
		provider string
		want     time.Duration
	}{
		{"workos", 180 * time.Second},
		{"openai", 5 * time.Minute},
		{"lithic", 5 * time.Minute},
		{"orb", 5 * time.Minute},
		{"recurly", 5 * time.Minute},
		{"front", 5 * time.Minute},
		{"sinch_conversation", DefaultTolerance},
		{"klaviyo", 0},
		{"replicate", DefaultTolerance},
		{"airwallex", DefaultTolerance},
		{"customerio", DefaultTolerance},
		{"heroku", 0},
	} {
		t.Run(c.provider, func(t *testing.T) {
			p, _ := Lookup(c.provider)
			if got := p.DefaultTolerance(); got != c.want {
				t.Fatalf("tolerance %s, want %s", got, c.want)
			}
		})
	}
	t.Run("orb zone-less time is UTC", func(t *testing.T) {
		p, _ := Lookup("orb")
		v, err := p.NewVerifier(VerifierConfig{Secrets: []string{"k"}})
		if err != nil {
			t.Fatal(err)
		}
		signed := time.Unix(1700000000, 0)
		ts := signed.UTC().Format("2006-01-02T15:04:05")
		h := http.Header{"X-Orb-Timestamp": {ts}, "X-Orb-Signature": {"v1=" + hexMAC(sha256.New, "k", "v1:", ts, ":", "{}")}}
		for _, c := range []struct {
			name string
			now  time.Time
			want Reason
		}{
			{"within", signed.Add(4 * time.Minute), ""},
			{"too old", signed.Add(6 * time.Minute), ReasonTimestampTooOld},
			{"ahead", signed.Add(-6 * time.Minute), ReasonTimestampInFuture},
		} {
			_, err := v.Verify(&Request{Method: "POST", Header: h, Body: []byte("{}"), Now: c.now})
			var perr *Error
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%s: %v", c.name, err)
			case c.want != "" && (!errors.As(err, &perr) || perr.Reason != c.want):
				t.Errorf("%s: got %v, want %s", c.name, err, c.want)
			}
		}
	})
}

// FuzzTimestampFirst fuzzes Recurly's keyless "<ms>,<sig>[,<sig>]" list.
func FuzzTimestampFirst(f *testing.F) {
	body := []byte(`{"id":"acct_1","object_type":"account","event_type":"created"}`)
	fuzzOneHeader(f, "recurly", "Recurly-Signature", body, func(sig string) []string {
		seeds := []string{strings.Replace(sig, ",", ",de1ec7ab1e,", 1), "," + sig, sig + strings.Repeat(",", 40)}
		return append(seeds, vectorHeaders(f, "Recurly-Signature")...)
	})
}

// FuzzOptionalPrefix fuzzes Mollie's signature, read with or without its
// "sha256=" prefix.
func FuzzOptionalPrefix(f *testing.F) {
	body := []byte(`{"resource":"event","type":"payment-link.paid"}`)
	fuzzOneHeader(f, "mollie", "X-Mollie-Signature", body, func(sig string) []string {
		return []string{strings.TrimPrefix(sig, "sha256="), "sha256=" + sig}
	})
}

// fuzzOneHeader fuzzes one provider's signature header and body: the
// genuine header, and seeds derived from it, start the corpus, and no
// header may pass a changed body.
func fuzzOneHeader(f *testing.F, provider, header string, body []byte, seeds func(genuine string) []string) {
	r := fuzzGenuine(f, provider, fuzzSecret, body, http.Header{}, "")
	v := fuzzVerifier(f, provider)
	sig := r.Header.Get(header)
	for _, s := range append([]string{sig}, seeds(sig)...) {
		f.Add(s, body)
	}
	f.Fuzz(func(t *testing.T, value string, b []byte) {
		req := *r
		req.Header = http.Header{http.CanonicalHeaderKey(header): {value}}
		req.Body = b
		if _, err := v.Verify(&req); err == nil && !bytes.Equal(b, body) {
			t.Fatalf("%s accepted a changed body %q with header %q", provider, b, value)
		}
	})
}
