package caddymodule_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule"
	"github.com/webrev/webhook-gateway/caddymodule/keyfetch"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testtls"
)

// fetchedKeyScheme is a test-only scheme whose key is a document fetched
// through the route's KeySource from keys_url: an HMAC-SHA256 of the body
// keyed by that document, in X-Doc-Signature. A topic, when the route
// lists some, must be one of them, checked before anything is fetched.
// It exercises the glue as the real key-fetching providers use it.
type fetchedKeyScheme struct{}

const docSignatureHeader = "X-Doc-Signature"

func (fetchedKeyScheme) NewVerifier(cfg provider.VerifierConfig) (provider.Verifier, error) {
	if cfg.Keys == nil || cfg.KeysURL == "" {
		return nil, errors.New("needs a key source and keys_url")
	}
	return fetchedKeyVerifier{keys: cfg.Keys, url: cfg.KeysURL, topics: cfg.Topics}, nil
}

func (fetchedKeyScheme) Sign(secret string, m *provider.Message) error {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(m.Body)
	m.Header.Set(docSignatureHeader, hex.EncodeToString(mac.Sum(nil)))
	return nil
}

func (fetchedKeyScheme) Describe() provider.Description {
	return provider.Description{
		Kind:        "HMAC-SHA256 keyed by a fetched document (tests only)",
		Headers:     []string{docSignatureHeader},
		Replay:      provider.ReplayBodyHash,
		Credentials: provider.Credentials{SignatureHeaders: []string{docSignatureHeader}},
		Body:        provider.BodyWhole,
	}
}

type fetchedKeyVerifier struct {
	keys   provider.KeySource
	url    string
	topics []string
}

func (v fetchedKeyVerifier) Verify(r *provider.Request) (provider.Verified, error) {
	sig, err := hex.DecodeString(r.Header.Get(docSignatureHeader))
	if err != nil || len(sig) == 0 {
		return provider.Verified{}, &provider.Error{Reason: provider.ReasonMissingSignature, Detail: docSignatureHeader + " is missing"}
	}
	if len(v.topics) > 0 && !slices.Contains(v.topics, r.Header.Get("X-Doc-Topic")) {
		return provider.Verified{}, &provider.Error{Reason: provider.ReasonNotAllowed, Detail: "the topic is not accepted"}
	}
	doc, err := v.keys.Fetch(r.Ctx(), provider.KeyRequest{Provider: "fetched_key_test", URL: v.url, PathSuffix: ".pem"})
	if err != nil {
		return provider.Verified{}, err
	}
	mac := hmac.New(sha256.New, doc.Body)
	mac.Write(r.Body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return provider.Verified{}, &provider.Error{Reason: provider.ReasonSignatureMismatch, Detail: "the signature does not match"}
	}
	return provider.Verified{Body: provider.BodyWhole, Headers: []string{docSignatureHeader}}, nil
}

func init() {
	provider.Register(&provider.Provider{
		Name:       "fetched_key_test",
		Scheme:     fetchedKeyScheme{},
		Secretless: true,
		Options:    []string{"keys_url", "topics"},
		Docs:       "https://example.com/tests-only",
	})
}

// keyServer is a real TLS server of key documents that counts its hits
// per path, and the CA file that trusts it.
type keyServer struct {
	*httptest.Server
	ca   string
	mu   sync.Mutex
	hits map[string]int
}

// hangingDoc is served by answering only once the client gives up.
const hangingDoc = "\x00hang"

func newKeyServer(t *testing.T, docs map[string]string) *keyServer {
	ks := &keyServer{hits: map[string]int{}}
	ks.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		ks.hits[r.URL.Path]++
		ks.mu.Unlock()
		doc, ok := docs[r.URL.Path]
		switch {
		case !ok:
			http.NotFound(w, r)
		case doc == hangingDoc:
			<-r.Context().Done()
		default:
			io.WriteString(w, doc)
		}
	}))
	t.Cleanup(ks.Close)
	ks.ca = testtls.CAFile(t, ks.Server)
	return ks
}

func (ks *keyServer) hitsOf(path string) int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.hits[path]
}

func (ks *keyServer) hostPort() string { return strings.TrimPrefix(ks.URL, "https://") }

func docSigned(key, body string, extra http.Header) http.Header {
	m := &provider.Message{Body: []byte(body), Header: http.Header{}}
	fetchedKeyScheme{}.Sign(key, m)
	for k, v := range extra {
		m.Header[k] = v
	}
	return m.Header
}

// TestFetchedKeysThroughCaddy runs the key-fetch glue through a real
// Caddy: a secretless route verifies with a key fetched once for 200
// deliveries; a key that cannot be fetched answers 503 key_unavailable
// with Retry-After, fetched once while the failure is kept; a key URL
// the allow list does not admit is refused without a fetch; a sender the
// route does not accept is refused before any fetch.
func TestFetchedKeysThroughCaddy(t *testing.T) {
	const key = "the fetched key"
	ks := newKeyServer(t, map[string]string{"/key.pem": key, "/hang.pem": hangingDoc})
	other := newKeyServer(t, map[string]string{"/key.pem": key})
	up := gatewaytest.NewUpstream(t)
	globals := fmt.Sprintf("webhook_gateway {\n\tkey_fetch {\n\t\tallow %s\n\t\ttls_ca %s\n\t}\n}", ks.hostPort(), ks.ca)
	routeFor := func(path, url string) string {
		return fmt.Sprintf("route /%s {\n\twebhook_gateway fetched_key_test {\n\t\tkeys_url %s\n\t\ttopics accepted-topic\n\t\tsource %s\n\t}\n\treverse_proxy %s\n}\n", path, url, path, up.Addr())
	}
	site := routeFor("good", ks.URL+"/key.pem") + routeFor("missing", ks.URL+"/missing.pem") + routeFor("other", other.URL+"/key.pem") + routeFor("hang", ks.URL+"/hang.pem")
	g := gatewaytest.Start(t, globals, site)
	topic := http.Header{"X-Doc-Topic": {"accepted-topic"}}

	const deliveries = 200
	var wg sync.WaitGroup
	var forwarded atomic.Int64
	for i := range deliveries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"n":%d}`, i)
			resp, _ := post(t, g, "/good", docSigned(key, body, topic), body)
			if resp.StatusCode == http.StatusOK {
				forwarded.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := forwarded.Load(); n != deliveries || up.Count() != deliveries {
		t.Fatalf("%d answered 200, %d reached the upstream; want %d", n, up.Count(), deliveries)
	}
	if n := ks.hitsOf("/key.pem"); n != 1 {
		t.Fatalf("%d fetches for %d deliveries, want 1", n, deliveries)
	}
	if v, err := caddymodule.MetricValue("caddy_webhook_gateway_key_fetches_total", map[string]string{"provider": "fetched_key_test", "outcome": "fetched"}); err != nil || v != 1 {
		t.Fatalf("key_fetches_total{outcome=fetched} = %v (%v), want 1", v, err)
	}
	up.Reset()

	cases := []struct {
		name, path, key string
		header          http.Header
		status          int
		reason          string
		retryAfter      string
	}{
		{"wrong key", "/good", "another key", topic, http.StatusUnauthorized, "signature_mismatch", ""},
		{"topic not accepted", "/good", key, http.Header{"X-Doc-Topic": {"other-topic"}}, http.StatusUnauthorized, "sender_not_allowed", ""},
		{"key not found", "/missing", key, topic, http.StatusServiceUnavailable, "key_unavailable", "5"},
		{"key not found, failure kept", "/missing", key, topic, http.StatusServiceUnavailable, "key_unavailable", "5"},
		{"key server not allowed", "/other", key, topic, http.StatusUnauthorized, "key_url_not_allowed", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, g, c.path, docSigned(c.key, `{"n":1}`, c.header), `{"n":1}`)
			var p struct{ Reason string }
			json.Unmarshal(body, &p)
			if resp.StatusCode != c.status || p.Reason != c.reason || resp.Header.Get("Retry-After") != c.retryAfter {
				t.Fatalf("status %d reason %q Retry-After %q, want %d %q %q (%s)", resp.StatusCode, p.Reason, resp.Header.Get("Retry-After"), c.status, c.reason, c.retryAfter, body)
			}
		})
	}
	// A key server that hangs holds a delivery no longer than the fetch
	// timeout (the default, 3s), with generous slack for a loaded machine:
	// without the timeout it would wait for a server that never answers.
	start := time.Now()
	resp, body := post(t, g, "/hang", docSigned(key, `{"n":1}`, topic), `{"n":1}`)
	if took := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable || took > keyfetch.DefaultTimeout+8*time.Second {
		t.Fatalf("status %d after %s, want 503 within the fetch timeout: %s", resp.StatusCode, took, body)
	}
	if n := up.Count(); n != 0 {
		t.Fatalf("%d refused deliveries reached the upstream", n)
	}
	if n := ks.hitsOf("/missing.pem"); n != 1 {
		t.Fatalf("%d fetches of the missing key, want 1 (the failure is kept)", n)
	}
	if n := ks.hitsOf("/key.pem"); n != 1 {
		t.Fatalf("%d fetches of the key, want 1", n)
	}
	// The log line says why, and never shows the key.
	logs := string(g.Logs(t))
	for _, want := range []string{"key_unavailable: the key server answered status 404", "key_url_not_allowed: the key URL's port"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	if strings.Contains(logs, key) {
		t.Error("the log shows the fetched key")
	}
	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.hits) != 0 {
		t.Fatalf("the server not allowed was reached: %v", other.hits)
	}
}
