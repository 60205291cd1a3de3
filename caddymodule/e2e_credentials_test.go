package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestCredentialsStayAtTheGateway: a static token that proved the
// delivery is removed before forwarding, unless the route keeps it; a
// signature, which reveals no secret, is forwarded for the app to check.
func TestCredentialsStayAtTheGateway(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	up := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
	})
	cases := []struct {
		name, provider, opts string
		header               http.Header // what the provider sends
		query                string
		wantQuery            string   // the query the upstream must get
		gone, kept           []string // headers the upstream must not, and must, get
	}{
		{name: "gitlab", provider: "gitlab", header: http.Header{"X-Gitlab-Token": {"tok-s3cret"}}, gone: []string{"X-Gitlab-Token"}},
		{name: "gitlab_keep", provider: "gitlab", opts: "keep_credentials", header: http.Header{"X-Gitlab-Token": {"tok-s3cret"}}, kept: []string{"X-Gitlab-Token"}},
		{name: "telegram", provider: "telegram", header: http.Header{"X-Telegram-Bot-Api-Secret-Token": {"tok-s3cret"}}, gone: []string{"X-Telegram-Bot-Api-Secret-Token"}},
		{name: "cloudflare", provider: "cloudflare", header: http.Header{"Cf-Webhook-Auth": {"tok-s3cret"}}, gone: []string{"Cf-Webhook-Auth"}},
		{name: "mailchimp", provider: "mailchimp", query: "list=a&secret=tok-s3cret&b=%2F", wantQuery: "list=a&b=%2F"},
		{name: "mailchimp_encoded_name", provider: "mailchimp", query: "s%65cret=tok-s3cret", wantQuery: ""},
		{name: "mailchimp_keep", provider: "mailchimp", opts: "keep_credentials", query: "secret=tok-s3cret", wantQuery: "secret=tok-s3cret"},
		{name: "github_signature_forwarded", provider: "github", kept: []string{"X-Hub-Signature-256"}},
	}
	site := ""
	for _, c := range cases {
		site += providerRoute(c.name, c.provider, "tok-s3cret", c.opts, up.Addr())
	}
	g := gatewaytest.Start(t, "", site)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			mu.Lock()
			queries = nil
			mu.Unlock()
			body := `{"update_id":1}`
			h := c.header
			if c.provider == "github" {
				h = routes[1].signed(t, "tok-s3cret", time.Now(), body)
			}
			path := "/" + c.name
			if c.query != "" {
				path += "?" + c.query
			}
			if resp, got := post(t, g, path, h.Clone(), body); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%q), want 200", resp.StatusCode, got)
			}
			rcv := up.Received()
			if len(rcv) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(rcv))
			}
			for _, name := range c.gone {
				if v := rcv[0].Header.Values(name); len(v) != 0 {
					t.Errorf("the upstream got %s: %q", name, v)
				}
			}
			for _, name := range c.kept {
				if v := rcv[0].Header.Get(name); v != h.Get(name) {
					t.Errorf("the upstream got %s = %q, want %q", name, v, h.Get(name))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if queries[0] != c.wantQuery {
				t.Errorf("the upstream got query %q, want %q", queries[0], c.wantQuery)
			}
		})
	}
}

// signedInBody signs a body whose signature fields exist, empty.
func signedInBody(t *testing.T, name, secret, body string) string {
	t.Helper()
	p, _ := provider.Lookup(name)
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
	if err := p.Scheme.Sign(secret, m); err != nil {
		t.Fatalf("signing: %v", err)
	}
	return string(m.Body)
}

// TestLogBodyRedactsSignatures: log_body shows a body's data but never
// the signature a provider put inside it.
func TestLogBodyRedactsSignatures(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	mailgun := signedInBody(t, "mailgun", "mg-key", fmt.Sprintf(`{"signature":{"timestamp":"%d","token":"tok-log","signature":""},"event-data":{"id":"visible-mailgun"}}`, time.Now().Unix()))
	adyenItem := `{"NotificationRequestItem":{"pspReference":"visible-adyen","merchantAccountCode":"M","merchantReference":"R","amount":{"value":1,"currency":"EUR"},"eventCode":"AUTHORISATION","success":"true","additionalData":{"hmacSignature":""}}}`
	adyen := signedInBody(t, "adyen", "00112233", `{"live":"false","notificationItems":[`+adyenItem+`,`+strings.Replace(adyenItem, "visible-adyen", "visible-adyen-2", 1)+`]}`)
	braintree := signedInBody(t, "braintree", "private", "bt_payload=dmlzaWJsZS1icmFpbnRyZWU%3D%0A&bt_signature=")
	cases := []struct {
		name, secret, body, contentType, visible string
		signatures                               []string
	}{
		{"mailgun", "mg-key", mailgun, "application/json", "visible-mailgun", []string{gjson.Get(mailgun, "signature.signature").String()}},
		{"adyen", "00112233", adyen, "application/json", "visible-adyen-2", []string{
			gjson.Get(adyen, "notificationItems.0.NotificationRequestItem.additionalData.hmacSignature").String(),
			gjson.Get(adyen, "notificationItems.1.NotificationRequestItem.additionalData.hmacSignature").String(),
		}},
		{"braintree", "private", braintree, "application/x-www-form-urlencoded", "dmlzaWJsZS1icmFpbnRyZWU", formSignatures(t, braintree)},
	}
	site := ""
	for _, c := range cases {
		site += providerRoute(c.name, c.name, c.secret, "log_body", up.Addr())
	}
	g := gatewaytest.Start(t, "", site)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if resp, got := post(t, g, "/"+c.name, http.Header{"Content-Type": {c.contentType}}, c.body); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%q), want 200", resp.StatusCode, got)
			}
			line := deliveryLine(t, g, c.name)
			if !strings.Contains(line, c.visible) || !strings.Contains(line, "[REDACTED]") {
				t.Errorf("the logged body lacks the data or the redaction mark: %s", line)
			}
			for _, sig := range c.signatures {
				if len(sig) < 8 {
					t.Fatalf("signature %q: the test did not find it", sig)
				}
				if logs := string(g.Logs(t)); strings.Contains(logs, sig) || strings.Contains(logs, url.QueryEscape(sig)) {
					t.Errorf("the log shows the signature %q:\n%s", sig, logs)
				}
			}
		})
	}
}

// formSignatures are the signatures of a Braintree form body.
func formSignatures(t *testing.T, body string) []string {
	t.Helper()
	vals, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for _, pair := range strings.Split(vals.Get("bt_signature"), "&") {
		_, sig, _ := strings.Cut(pair, "|")
		sigs = append(sigs, sig)
	}
	return sigs
}

// deliveryLine is the gateway's last log line with a body from the
// route of that provider.
func deliveryLine(t *testing.T, g *gatewaytest.Gateway, provider string) string {
	t.Helper()
	var found string
	for _, line := range strings.Split(string(g.Logs(t)), "\n") {
		if strings.Contains(line, `"provider":"`+provider+`"`) && strings.Contains(line, `"body":`) {
			found = line
		}
	}
	if found == "" {
		t.Fatalf("no delivery line with a body for %s:\n%s", provider, g.Logs(t))
	}
	return found
}
