package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	formURL      = "https://hooks.example.com/sms?x=1"
	formType     = "application/x-www-form-urlencoded"
	settingsName = "X-Twilio-Webhooks-Signature-Settings"
)

// TestFormBodyMustBeSigned: a URL-and-form signature covers a body only
// when it is a form, or when Twilio's bodySHA256 hashes it; any other
// body would reach the app unauthenticated.
func TestFormBodyMustBeSigned(t *testing.T) {
	json := `{"amount":99999999}`
	sum := sha256.Sum256([]byte(json))
	hashed := formURL + "&bodySHA256=" + hex.EncodeToString(sum[:])
	cases := []struct {
		name, provider, header, url, contentType, body string
		sig                                            string
		reason                                         Reason
		coverage                                       Coverage
	}{
		{name: "twilio json without bodySHA256", provider: "twilio", header: "X-Twilio-Signature", url: formURL, contentType: "application/json", body: json, sig: twilioSig("tok", formURL), reason: ReasonUnsignedBody},
		{name: "twilio text without bodySHA256", provider: "twilio", header: "X-Twilio-Signature", url: formURL, contentType: "text/plain", body: "hello", sig: twilioSig("tok", formURL), reason: ReasonUnsignedBody},
		{name: "twilio json with bodySHA256", provider: "twilio", header: "X-Twilio-Signature", url: hashed, contentType: "application/json", body: json, sig: twilioSig("tok", hashed), coverage: BodyWhole},
		{name: "twilio empty body", provider: "twilio", header: "X-Twilio-Signature", url: formURL, contentType: "application/json", sig: twilioSig("tok", formURL), coverage: BodyWhole},
		{name: "twilio form", provider: "twilio", header: "X-Twilio-Signature", url: formURL, contentType: formType, body: "B=2&A=1", sig: twilioSig("tok", formURL+"A1B2"), coverage: BodyParts},
		{name: "mandrill json", provider: "mandrill", header: "X-Mandrill-Signature", url: formURL, contentType: "application/json", body: json, sig: twilioSig("tok", formURL), reason: ReasonUnsignedBody},
		{name: "mandrill json with a bodySHA256 it does not read", provider: "mandrill", header: "X-Mandrill-Signature", url: hashed, contentType: "application/json", body: json, sig: twilioSig("tok", hashed), reason: ReasonUnsignedBody},
		{name: "mandrill form", provider: "mandrill", header: "X-Mandrill-Signature", url: formURL, contentType: formType, body: "mandrill_events=%5B%5D", sig: twilioSig("tok", formURL+"mandrill_events[]"), coverage: BodyParts},
		{name: "mandrill empty body", provider: "mandrill", header: "X-Mandrill-Signature", url: formURL, sig: twilioSig("tok", formURL), coverage: BodyWhole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{c.header: {c.sig}}
			if c.contentType != "" {
				h.Set("Content-Type", c.contentType)
			}
			got, err := verifyAs(t, c.provider, VerifierConfig{Secrets: []string{"tok"}}, Request{Method: "POST", URL: c.url, Header: h, Body: []byte(c.body)})
			switch {
			case c.reason != "" && (err == nil || err.Reason != c.reason):
				t.Fatalf("want %s, got %v", c.reason, err)
			case c.reason == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case c.reason == "" && got.Body != c.coverage:
				t.Errorf("coverage %v, want %v", got.Body, c.coverage)
			}
		})
	}
}

// TestTwilioSharedKey: with X-Twilio-Webhooks-Signature-Settings, Twilio
// signs the same URL and sorted parameters with HMAC-SHA256 under a
// SharedKey's secret (hmacB64 builds one); the header is read strictly.
func TestTwilioSharedKey(t *testing.T) {
	const body = "CallSid=CA1&Digits=1234"
	content := formURL + "CallSid" + "CA1" + "Digits" + "1234"
	cfg := VerifierConfig{Secrets: []string{"auth-token", "shared-key-secret"}}
	cases := []struct {
		name     string
		settings []string // nil: no header
		sig      string
		reason   Reason
		secret   int
	}{
		{name: "sha256 under the shared key", settings: []string{"key=KS0123456789abcdef,algorithm=HMAC_SHA256"}, sig: hmacB64("shared-key-secret", content), secret: 1},
		{name: "settings in the other order, spaced", settings: []string{" algorithm=HMAC_SHA256 , key=KS1 "}, sig: hmacB64("shared-key-secret", content), secret: 1},
		{name: "sha1 named explicitly", settings: []string{"key=KS1,algorithm=HMAC_SHA1"}, sig: twilioSig("shared-key-secret", content), secret: 1},
		{name: "no settings: sha1 under the auth token", sig: twilioSig("auth-token", content)},
		{name: "sha256 without the settings header", sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "sha1 signature under sha256 settings", settings: []string{"key=KS1,algorithm=HMAC_SHA256"}, sig: twilioSig("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "sha256 under an unknown secret", settings: []string{"key=KS1,algorithm=HMAC_SHA256"}, sig: hmacB64("other", content), reason: ReasonSignatureMismatch},
		{name: "unknown algorithm", settings: []string{"key=KS1,algorithm=HMAC_SHA512"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "lower-case algorithm", settings: []string{"key=KS1,algorithm=hmac_sha256"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "no key", settings: []string{"algorithm=HMAC_SHA256"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "empty key", settings: []string{"key=,algorithm=HMAC_SHA256"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "algorithm twice", settings: []string{"algorithm=HMAC_SHA1,algorithm=HMAC_SHA256"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "extra setting", settings: []string{"key=KS1,algorithm=HMAC_SHA256,v=2"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "key with a space", settings: []string{"key=KS 1,algorithm=HMAC_SHA256"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "header repeated", settings: []string{"key=KS1,algorithm=HMAC_SHA256", "key=KS1,algorithm=HMAC_SHA256"}, sig: hmacB64("shared-key-secret", content), reason: ReasonMalformedSignature},
		{name: "empty header", settings: []string{""}, sig: twilioSig("auth-token", content), reason: ReasonMalformedSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {formType}, "X-Twilio-Signature": {c.sig}}
			if c.settings != nil {
				h[settingsName] = c.settings
			}
			got, err := verifyAs(t, "twilio", cfg, Request{Method: "POST", URL: formURL, Header: h, Body: []byte(body), Now: time.Now()})
			switch {
			case c.reason != "" && (err == nil || err.Reason != c.reason):
				t.Fatalf("want %s, got %v", c.reason, err)
			case c.reason == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case c.reason == "" && (got.Secret != c.secret || got.Body != BodyParts || got.ID != "" || len(got.Headers) != 0):
				t.Errorf("verified %+v, want secret %d, BodyParts, no id and no signed header", got, c.secret)
			}
		})
	}
}

// TestTwilioSignsSharedKey: a settings header in the message makes Sign
// produce what Twilio sends under a SharedKey.
func TestTwilioSignsSharedKey(t *testing.T) {
	p := mustLookup("twilio")
	m := Message{Method: "POST", URL: formURL, Body: []byte("A=1"),
		Header: http.Header{"Content-Type": {formType}, settingsName: {"key=KS1,algorithm=HMAC_SHA256"}}}
	if err := p.Scheme.Sign("shared-key-secret", &m); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Header.Get("X-Twilio-Signature"), hmacB64("shared-key-secret", formURL+"A1"); got != want {
		t.Fatalf("signed %q, want %q", got, want)
	}
	m.Header.Set(settingsName, "key=KS1,algorithm=MD5")
	if err := p.Scheme.Sign("shared-key-secret", &m); err == nil || !strings.Contains(err.Error(), "unknown algorithm") {
		t.Fatalf("signing under an unknown algorithm: %v", err)
	}
}

// TestFormSignSaysItIsAForm: a signed form goes out as one, so that the
// gateway reads its body as the fields that were signed; a sender's own
// Content-Type and a body signed by its hash are left as they are.
func TestFormSignSaysItIsAForm(t *testing.T) {
	hashedFormURL := func(body string) string {
		sum := sha256.Sum256([]byte(body))
		return formURL + "&bodySHA256=" + hex.EncodeToString(sum[:])
	}
	cases := []struct {
		name, provider, url, body, contentType, want string
	}{
		{name: "twilio form", provider: "twilio", url: formURL, body: "A=1", want: formType},
		{name: "mandrill form", provider: "mandrill", url: formURL, body: "mandrill_events=%5B%5D", want: formType},
		{name: "sender's own type", provider: "twilio", url: formURL, body: "A=1", contentType: "application/x-www-form-urlencoded; charset=utf-8", want: "application/x-www-form-urlencoded; charset=utf-8"},
		{name: "json signed by its hash", provider: "twilio", url: hashedFormURL(`{"a":1}`), body: `{"a":1}`, want: ""},
		{name: "empty body", provider: "twilio", url: formURL, want: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := Message{Method: "POST", URL: c.url, Body: []byte(c.body), Header: http.Header{}}
			if c.contentType != "" {
				m.Header.Set("Content-Type", c.contentType)
			}
			if err := mustLookup(c.provider).Scheme.Sign("secret", &m); err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get("Content-Type"); got != c.want {
				t.Errorf("Content-Type %q, want %q", got, c.want)
			}
		})
	}
}

// TestFormSchemeDescriptions: form schemes name their signature header
// as a credential and promise nothing against a replay.
func TestFormSchemeDescriptions(t *testing.T) {
	for name, hdr := range map[string]string{"twilio": "X-Twilio-Signature", "mandrill": "X-Mandrill-Signature"} {
		d := mustLookup(name).Scheme.Describe()
		if len(d.Credentials.SignatureHeaders) != 1 || d.Credentials.SignatureHeaders[0] != hdr || d.Replay != ReplayNone {
			t.Errorf("%s: credentials %+v replay %q", name, d.Credentials, d.Replay)
		}
	}
}
