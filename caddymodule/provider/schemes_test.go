package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func hmacHex(key, msg string) string { return hexMAC(sha256.New, key, msg) }

func hmacB64(key, msg string) string { return b64MAC(sha256.New, key, msg) }

func jwtOf(key, header, claims string) string {
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(m.Sum(nil))
}

// schemeCase is a hand-built delivery from a provider's documented
// algorithm, independent of Sign.
type schemeCase struct {
	name     string
	provider string
	cfg      VerifierConfig
	req      Request
	reason   Reason // empty: must verify
}

func TestSchemeCases(t *testing.T) {
	now := time.Unix(1700000000, 0)
	bodyHash := sha256.Sum256([]byte(`{"a":1}`))
	netlifyClaims := `{"iss":"netlify","sha256":"` + hex.EncodeToString(bodyHash[:]) + `"}`
	post := func(url string, h http.Header, body string) Request {
		return Request{Method: "POST", URL: url, Header: h, Body: []byte(body), Now: now}
	}
	btKey := sha1.Sum([]byte("private"))
	btMAC := hmac.New(sha1.New, btKey[:])
	btMAC.Write([]byte("cGF5bG9hZA==\n"))
	btSig := hex.EncodeToString(btMAC.Sum(nil))
	secrets := func(s ...string) VerifierConfig { return VerifierConfig{Secrets: s} }
	cases := []schemeCase{
		{
			name: "netlify jwt", provider: "netlify", cfg: secrets("jws"),
			req: post("", http.Header{"X-Webhook-Signature": {jwtOf("jws", `{"alg":"HS256","typ":"JWT"}`, netlifyClaims)}}, `{"a":1}`),
		},
		{
			name: "netlify body changed", provider: "netlify", cfg: secrets("jws"), reason: ReasonSignatureMismatch,
			req: post("", http.Header{"X-Webhook-Signature": {jwtOf("jws", `{"alg":"HS256"}`, netlifyClaims)}}, `{"a":2}`),
		},
		{
			name: "netlify alg none", provider: "netlify", cfg: secrets("jws"), reason: ReasonMalformedSignature,
			req: post("", http.Header{"X-Webhook-Signature": {base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(netlifyClaims)) + "."}}, `{"a":1}`),
		},
		{
			name: "netlify alg HS512 refused", provider: "netlify", cfg: secrets("jws"), reason: ReasonMalformedSignature,
			req: post("", http.Header{"X-Webhook-Signature": {jwtOf("jws", `{"alg":"HS512"}`, netlifyClaims)}}, `{"a":1}`),
		},
		{
			name: "netlify wrong issuer", provider: "netlify", cfg: secrets("jws"), reason: ReasonSignatureMismatch,
			req: post("", http.Header{"X-Webhook-Signature": {jwtOf("jws", `{"alg":"HS256"}`, strings.Replace(netlifyClaims, "netlify", "evil", 1))}}, `{"a":1}`),
		},
		{
			name: "monday audience", provider: "monday", cfg: secrets("sign"),
			req: post("https://hooks.example.com/monday", http.Header{"Authorization": {jwtOf("sign", `{"alg":"HS256"}`, `{"aud":"https://hooks.example.com/monday","exp":1700000100}`)}}, `{}`),
		},
		{
			name: "monday other audience", provider: "monday", cfg: secrets("sign"), reason: ReasonSignatureMismatch,
			req: post("https://hooks.example.com/monday", http.Header{"Authorization": {jwtOf("sign", `{"alg":"HS256"}`, `{"aud":"https://other.example.com/","exp":1700000100}`)}}, `{}`),
		},
		{
			name: "monday expired", provider: "monday", cfg: secrets("sign"), reason: ReasonTimestampTooOld,
			req: post("https://hooks.example.com/monday", http.Header{"Authorization": {jwtOf("sign", `{"alg":"HS256"}`, `{"aud":"https://hooks.example.com/monday","exp":1699999000}`)}}, `{}`),
		},
		{
			name: "twilio json bodySHA256", provider: "twilio", cfg: secrets("12345"),
			req: post("https://mycompany.com/myapp?bodySHA256="+hex.EncodeToString(bodyHash[:]),
				http.Header{"Content-Type": {"application/json"}, "X-Twilio-Signature": {twilioSig("12345", "https://mycompany.com/myapp?bodySHA256="+hex.EncodeToString(bodyHash[:]))}}, `{"a":1}`),
		},
		{
			name: "twilio json body changed", provider: "twilio", cfg: secrets("12345"), reason: ReasonSignatureMismatch,
			req: post("https://mycompany.com/myapp?bodySHA256="+hex.EncodeToString(bodyHash[:]),
				http.Header{"Content-Type": {"application/json"}, "X-Twilio-Signature": {twilioSig("12345", "https://mycompany.com/myapp?bodySHA256="+hex.EncodeToString(bodyHash[:]))}}, `{"a":2}`),
		},
		{
			name: "twilio signed with default port", provider: "twilio", cfg: secrets("12345"),
			req: post("https://mycompany.com/myapp", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Signature": {twilioSig("12345", "https://mycompany.com:443/myappA1")}}, "A=1"),
		},
		{
			name: "persona second set matches", provider: "persona", cfg: secrets("new"),
			req: post("", http.Header{"Persona-Signature": {"t=1700000000,v1=" + hmacHex("old", "1700000000.{}") + " t=1700000000,v1=" + hmacHex("new", "1700000000.{}")}}, `{}`),
		},
		{
			name: "persona no set matches", provider: "persona", cfg: secrets("other"), reason: ReasonSignatureMismatch,
			req: post("", http.Header{"Persona-Signature": {"t=1700000000,v1=" + hmacHex("old", "1700000000.{}") + " t=1700000000,v1=" + hmacHex("new", "1700000000.{}")}}, `{}`),
		},
		{
			name: "box secondary key", provider: "box", cfg: secrets("primary", "secondary"),
			req: post("", http.Header{
				"Box-Signature-Primary": {hmacB64("rotated-away", "{}2023-11-14T22:13:20Z")}, "Box-Signature-Secondary": {hmacB64("secondary", "{}2023-11-14T22:13:20Z")},
				"Box-Delivery-Timestamp": {"2023-11-14T22:13:20Z"},
			}, `{}`),
		},
		{
			name: "docusign third header", provider: "docusign", cfg: secrets("k3"),
			req: post("", http.Header{"X-Docusign-Signature-1": {hmacB64("k1", "{}")}, "X-Docusign-Signature-2": {hmacB64("k2", "{}")}, "X-Docusign-Signature-3": {hmacB64("k3", "{}")}}, `{}`),
		},
		{
			name: "mailgun parent signature", provider: "mailgun", cfg: secrets("parent-key"),
			req: post("", nil, `{"signature":{"timestamp":"1700000000","token":"tok","signature":"`+hmacHex("sub-key", "1700000000tok")+`","parent-signature":"`+hmacHex("parent-key", "1700000000tok")+`"}}`),
		},
		{
			name: "adyen batch with one forged item", provider: "adyen", cfg: secrets("00112233"), reason: ReasonSignatureMismatch,
			req: post("", nil, `{"notificationItems":[`+adyenSigned("00112233", "p1")+`,`+adyenSigned("44556677", "p2")+`]}`),
		},
		{
			name: "adyen batch", provider: "adyen", cfg: secrets("00112233"),
			req: post("", nil, `{"notificationItems":[`+adyenSigned("00112233", "p1")+`,`+adyenSigned("00112233", "p2")+`]}`),
		},
		{
			name: "braintree several key pairs", provider: "braintree", cfg: secrets("private"),
			req: post("", nil, "bt_payload=cGF5bG9hZA%3D%3D%0A&bt_signature="+urlQueryEscape("other|deadbeef&pub|"+btSig)),
		},
		{
			name: "token of another length", provider: "telegram", cfg: secrets("my_secret_token"), reason: ReasonSignatureMismatch,
			req: post("", http.Header{"X-Telegram-Bot-Api-Secret-Token": {"my_secret_token-and-more"}}, `{}`),
		},
		{
			name: "basic wrong password", provider: "postmark", cfg: secrets("user:pass"), reason: ReasonSignatureMismatch,
			req: post("", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("user:guess"))}}, `{}`),
		},
		{
			name: "mailchimp query secret", provider: "mailchimp", cfg: secrets("s3cret"),
			req: post("https://hooks.example.com/mc?secret=s3cret", nil, `type=subscribe`),
		},
		{
			name: "savvycal uppercase hex", provider: "savvycal", cfg: secrets("k"),
			req: post("", http.Header{"X-Savvycal-Signature": {"sha256=" + strings.ToUpper(hmacHex("k", "{}"))}}, `{}`),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := Lookup(c.provider)
			if !ok {
				t.Fatalf("no provider %s", c.provider)
			}
			if c.cfg.Tolerance == 0 {
				c.cfg.Tolerance = p.Tolerance
			}
			v, err := p.NewVerifier(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.req.Header == nil {
				c.req.Header = http.Header{}
			}
			_, err = v.Verify(&c.req)
			var perr *Error
			switch {
			case c.reason == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case c.reason != "" && (!errors.As(err, &perr) || perr.Reason != c.reason):
				t.Fatalf("want %s, got %v", c.reason, err)
			}
		})
	}
}

func twilioSig(token, s string) string {
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func adyenSigned(hexKey, psp string) string {
	key, _ := hex.DecodeString(hexKey)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(psp + "::M:r:1000:EUR:AUTHORISATION:true"))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	return `{"NotificationRequestItem":{"pspReference":"` + psp + `","merchantAccountCode":"M","merchantReference":"r","amount":{"currency":"EUR","value":1000},"eventCode":"AUTHORISATION","success":"true","additionalData":{"hmacSignature":"` + sig + `"}}}`
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("&", "%26", "|", "%7C")
	return r.Replace(s)
}

// TestConfigErrorsHideSecrets builds verifiers from bad secrets and
// checks that no error repeats one.
func TestConfigErrorsHideSecrets(t *testing.T) {
	for _, c := range []struct{ provider, secret string }{
		{"adyen", "not-hex-secret-value"},
		{"airtable", "!!not base64 secret!!"},
		{"discord", "not-a-public-key-value"},
		{"sendgrid", "not-a-public-key-value"},
		{"paypal", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----"},
		{"postmark", "no-colon-in-this-secret"},
	} {
		p, _ := Lookup(c.provider)
		_, err := p.NewVerifier(VerifierConfig{Secrets: []string{c.secret}, WebhookID: "WH"})
		if err == nil {
			t.Errorf("%s: bad secret accepted", c.provider)
			continue
		}
		if strings.Contains(err.Error(), c.secret) || strings.Contains(err.Error(), "bm90IGEgY2VydA") {
			t.Errorf("%s: error shows the secret: %v", c.provider, err)
		}
	}
	p, _ := Lookup("paypal")
	if _, err := p.NewVerifier(VerifierConfig{Secrets: []string{"x"}}); err == nil || !strings.Contains(err.Error(), "webhook_id") {
		t.Errorf("paypal without a webhook id: %v", err)
	}
}
