package caddymodule_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/keyfetch"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/testtls"
)

const (
	snsTopic      = "arn:aws:sns:us-east-1:123456789012:orders"
	snsOtherTopic = "arn:aws:sns:us-east-1:123456789012:other"
	snsKeyTimeout = 2 * time.Second
)

// snsKeyServer is a real TLS server that records every path it is asked
// for: the certificate server of a test, or a decoy that must never be
// reached.
type snsKeyServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newSNSKeyServer(t *testing.T, handler http.HandlerFunc) *snsKeyServer {
	k := &snsKeyServer{hits: map[string]int{}}
	k.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.hits[r.URL.Path]++
		k.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(k.Close)
	return k
}

func (k *snsKeyServer) count(path string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hits[path]
}

func (k *snsKeyServer) total() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.hits {
		n += c
	}
	return n
}

// snsSigner signs as SNS with one key, whose certificate it serves.
type snsSigner struct {
	key     string // PEM private key: sign's --secret
	certPEM []byte
}

func newSNSSigner(t *testing.T) snsSigner {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return snsSigner{
		key:     string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

// sign produces an SNS delivery of envelope, whose certificate is at
// certURL.
func (s snsSigner) sign(t testing.TB, envelope, id, certURL string) (http.Header, []byte) {
	m := &provider.Message{Method: http.MethodPost, ID: id, Timestamp: time.Now(), Body: []byte(envelope), Header: http.Header{}, KeyURL: certURL}
	if err := builtin("sns").Sign(s.key, m); err != nil {
		t.Fatal(err)
	}
	return m.Header, m.Body
}

func notification(topic string) string {
	return `{"Type":"Notification","TopicArn":"` + topic + `","Subject":"order","Message":"{\"id\":\"evt_1\",\"total\":42}"}`
}

func confirmation(topic, subscribeURL string) string {
	return `{"Type":"SubscriptionConfirmation","TopicArn":"` + topic + `","Token":"2336412f37","Message":"You have chosen to subscribe","SubscribeURL":"` + subscribeURL + `"}`
}

// snsServers are the servers of an SNS test: certs serves the signer's
// certificate on any path ending .pem, answers /confirm as SNS's
// ConfirmSubscription, hangs on /hang.pem and redirects /redirect.pem to
// the decoy, which must never be reached. ca is a file trusting both.
type snsServers struct {
	signer       snsSigner
	certs, decoy *snsKeyServer
	ca           string
	confirmed    atomic.Value // the last /confirm query
}

func newSNSServers(t *testing.T) *snsServers {
	s := &snsServers{signer: newSNSSigner(t)}
	s.decoy = newSNSKeyServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(s.signer.certPEM) })
	release := make(chan struct{})
	s.certs = newSNSKeyServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang.pem":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/redirect.pem":
			http.Redirect(w, r, s.decoy.URL+"/cert.pem", http.StatusFound)
		case "/confirm":
			s.confirmed.Store(r.URL.RawQuery)
			io.WriteString(w, "<ConfirmSubscriptionResponse/>")
		default:
			w.Write(s.signer.certPEM)
		}
	})
	// Runs before the servers close, which waits for the hanging handler.
	t.Cleanup(func() { close(release) })
	s.ca = testtls.CAFile(t, s.certs.Server)
	return s
}

// host is the allowed server's host:port, what key_fetch's allow names.
func (s *snsServers) host() string { return s.certs.Listener.Addr().String() }

func (s *snsServers) confirmURL(topic string) string {
	return s.certs.URL + "/confirm?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(topic) + "&Token=2336412f37"
}

// burst signs n notifications whose certificate is at path and hands
// them to deliver from 8 goroutines at once; it returns how many deliver
// reported refused.
func (s *snsServers) burst(t *testing.T, n int, path string, deliver func(h http.Header, body []byte) bool) int64 {
	type delivery struct {
		h    http.Header
		body []byte
	}
	all := make(chan delivery, n)
	for i := range n {
		h, body := s.signer.sign(t, notification(snsTopic), fmt.Sprintf("msg-burst-%d", i), s.certs.URL+path)
		all <- delivery{h, body}
	}
	close(all)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for d := range all {
				if !deliver(d.h, d.body) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// forgedCertURL is a SigningCertURL that must be refused with reason,
// nothing reaching the decoy.
type forgedCertURL struct{ name, url, reason string }

func (s *snsServers) forged() []forgedCertURL {
	_, port, _ := strings.Cut(s.host(), ":")
	decoyHost := strings.TrimPrefix(s.decoy.URL, "https://")
	return []forgedCertURL{
		{"other host", "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem", "key_url_not_allowed"},
		{"localhost for the allowed address", "https://localhost:" + port + "/cert.pem", "key_url_not_allowed"},
		{"userinfo", "https://sns.us-east-1.amazonaws.com@" + decoyHost + "/cert.pem", "key_url_not_allowed"},
		{"port", "https://sns.us-east-1.amazonaws.com:8443/cert.pem", "key_url_not_allowed"},
		{"http", "http://" + s.host() + "/cert.pem", "key_url_not_allowed"},
		{"not a pem path", s.certs.URL + "/cert.txt", "key_url_not_allowed"},
		// Spellings that other parsers read as another host, or that
		// name an AWS host only in part: refused before any lookup.
		{"trailing dot", "https://sns.us-east-1.amazonaws.com./cert.pem", "key_url_not_allowed"},
		{"percent-encoded dot", "https://sns.us-east-1.amazonaws%2Ecom/cert.pem", "key_url_not_allowed"},
		{"backslash before @", "https://sns.us-east-1.amazonaws.com\\@" + decoyHost + "/cert.pem", "key_url_not_allowed"},
		{"host after a fragment", "https://" + decoyHost + "#@sns.us-east-1.amazonaws.com/cert.pem", "key_url_not_allowed"},
		{"unicode lookalike", "https://\u0455ns.us-east-1.amazonaws.com/cert.pem", "key_url_not_allowed"},
		{"punycode", "https://xn--ns-tmc.us-east-1.amazonaws.com/cert.pem", "key_url_not_allowed"},
		{"region too short", "https://sns.x.amazonaws.com/cert.pem", "key_url_not_allowed"},
		{"dotted region", "https://sns.evil.example.amazonaws.com/cert.pem", "key_url_not_allowed"},
		{"empty port", "https://sns.us-east-1.amazonaws.com:/cert.pem", "key_url_not_allowed"},
		{"IPv6 literal", "https://[::1]/cert.pem", "key_url_not_allowed"},
		{"private address not named exactly", s.decoy.URL + "/cert.pem", "key_url_not_allowed"},
		// AWS's certificate URLs carry neither: each variant would be a
		// document of its own, a cache entry and a fetch an attacker
		// chooses, of the genuine certificate.
		{"query on the allowed server", s.certs.URL + "/cert.pem?v=2", "key_url_not_allowed"},
		{"fragment on the allowed server", s.certs.URL + "/cert.pem#v2", "key_url_not_allowed"},
		// The allowed server is asked; its redirect is not followed,
		// and keyfetch answers its status as the key being unavailable.
		{"redirect to another server", s.certs.URL + "/redirect.pem", "key_unavailable"},
	}
}

// TestSNSWithKeyFetcher verifies SNS deliveries with the gateway's real
// key fetcher against local TLS servers (the same checks run through
// Caddy in TestSNSThroughCaddy): forged certificate URLs reach nothing
// but the allowed server, a burst signed by one certificate fetches it
// once, a hanging fetch ends at the timeout, and a subscription is
// confirmed only for its own, allowed topic.
func TestSNSWithKeyFetcher(t *testing.T) {
	s := newSNSServers(t)
	f, err := keyfetch.New(keyfetch.Config{Allow: []string{s.host()}, TLSCA: s.ca, Timeout: caddy.Duration(snsKeyTimeout)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	p, _ := provider.Lookup("sns")
	v, err := p.NewVerifier(provider.VerifierConfig{Keys: f, Topics: []string{snsTopic}})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(ctx context.Context, h http.Header, body []byte) (provider.Verified, error) {
		return v.Verify(&provider.Request{Method: http.MethodPost, Header: h, Body: body, Now: time.Now(), Context: ctx})
	}
	reason := func(err error) string {
		var perr *provider.Error
		if errors.As(err, &perr) {
			return string(perr.Reason)
		}
		return fmt.Sprint(err)
	}

	t.Run("forged certificate URL", func(t *testing.T) {
		for _, c := range s.forged() {
			t.Run(c.name, func(t *testing.T) {
				h, body := s.signer.sign(t, notification(snsTopic), "msg-forged", c.url)
				if _, err := verify(t.Context(), h, body); reason(err) != c.reason {
					t.Fatalf("got %v, want %s", err, c.reason)
				}
			})
		}
		if n := s.decoy.total(); n != 0 {
			t.Fatalf("the decoy was reached %d times", n)
		}
		if n := s.certs.total(); n != s.certs.count("/redirect.pem") || n != 1 {
			t.Fatalf("the allowed server was asked %d times, want only the redirect's first hop", n)
		}
	})

	t.Run("topic not allowed fetches nothing", func(t *testing.T) {
		h, body := s.signer.sign(t, notification(snsOtherTopic), "msg-other", s.certs.URL+"/other.pem")
		if _, err := verify(t.Context(), h, body); reason(err) != "sender_not_allowed" || s.certs.count("/other.pem") != 0 {
			t.Fatalf("got %v after %d fetches", err, s.certs.count("/other.pem"))
		}
	})

	t.Run("1000 deliveries, one fetch", func(t *testing.T) {
		const n = 1000
		failed := s.burst(t, n, "/burst.pem", func(h http.Header, body []byte) bool {
			_, err := verify(context.Background(), h, body)
			return err == nil
		})
		if failed != 0 || s.certs.count("/burst.pem") != 1 {
			t.Fatalf("%d refused; %d fetches for %d deliveries, want 1", failed, s.certs.count("/burst.pem"), n)
		}
	})

	t.Run("a hanging fetch ends at its timeout", func(t *testing.T) {
		h, body := s.signer.sign(t, notification(snsTopic), "msg-hang", s.certs.URL+"/hang.pem")
		start := time.Now()
		_, err := verify(t.Context(), h, body)
		// Generous slack for a busy machine: nothing waits for the server.
		if took := time.Since(start); reason(err) != "key_unavailable" || took > snsKeyTimeout+8*time.Second {
			t.Fatalf("got %v after %s, timeout %s", err, took, snsKeyTimeout)
		}
	})

	t.Run("subscription confirmation", func(t *testing.T) {
		for _, c := range []struct {
			name, topic, url string
			status, confirms int
		}{
			{"allowed topic", snsTopic, s.confirmURL(snsTopic), http.StatusOK, 1},
			{"url for another topic", snsTopic, s.confirmURL(snsOtherTopic), http.StatusForbidden, 0},
			{"url on a decoy", snsTopic, strings.Replace(s.confirmURL(snsTopic), s.certs.URL, s.decoy.URL, 1), http.StatusForbidden, 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := s.certs.count("/confirm")
				h, body := s.signer.sign(t, confirmation(c.topic, c.url), "msg-"+c.name, s.certs.URL+"/cert.pem")
				req := &provider.Request{Method: http.MethodPost, Header: h, Body: body, Now: time.Now(), Context: t.Context()}
				got, err := v.Verify(req)
				if err != nil {
					t.Fatal(err)
				}
				ans, ok := p.Handshake.AfterVerify(req, got, provider.HandshakeConfig{Keys: f, Topics: []string{snsTopic}})
				if !ok || ans.Status != c.status || s.certs.count("/confirm")-before != c.confirms {
					t.Fatalf("answered=%v %+v, %d confirmations", ok, ans, s.certs.count("/confirm")-before)
				}
				if s.decoy.total() != 0 {
					t.Fatal("the decoy was reached")
				}
			})
		}
	})
}
