package caddymodule_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestSNSThroughCaddy runs AWS SNS deliveries through a real Caddy whose
// key_fetch allows exactly one local TLS server, which serves the
// signer's certificate: a valid notification is forwarded byte for byte;
// a forged SigningCertURL is refused without anything reaching a decoy;
// a burst signed by one certificate fetches it once; a hanging fetch
// holds deliveries no longer than its timeout; a subscription to an
// allowed topic is confirmed by the gateway, any other is not.
func TestSNSThroughCaddy(t *testing.T) {
	s := newSNSServers(t)
	up := gatewaytest.NewUpstream(t)
	g := gatewaytest.Start(t,
		fmt.Sprintf("webhook_gateway {\nkey_fetch {\nallow %s\ntls_ca %s\ntimeout %s\n}\n}", s.host(), s.ca, snsKeyTimeout),
		fmt.Sprintf("route /sns {\nwebhook_gateway sns {\ntopics %s\n}\nreverse_proxy %s\n}\n", snsTopic, up.Addr()))

	// send may run on any goroutine; post is for the test's own.
	send := func(h http.Header, body []byte) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/sns", bytes.NewReader(body))
		req.Header = h.Clone()
		req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
		resp, err := g.Client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, got, err
	}
	post := func(t *testing.T, h http.Header, body []byte) (*http.Response, []byte) {
		t.Helper()
		resp, got, err := send(h, body)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		return resp, got
	}
	refused := func(t *testing.T, resp *http.Response, body []byte, status int, reason string) {
		t.Helper()
		if p := decodeProblem(t, resp, body); resp.StatusCode != status || p.Reason != reason {
			t.Fatalf("status %d reason %q (%s), want %d %s", resp.StatusCode, p.Reason, p.Detail, status, reason)
		}
	}
	statusOf := map[string]int{"key_url_not_allowed": http.StatusUnauthorized, "key_unavailable": http.StatusServiceUnavailable}

	t.Run("notification forwarded byte for byte", func(t *testing.T) {
		up.Reset()
		h, body := s.signer.sign(t, notification(snsTopic), "msg-valid", s.certs.URL+"/cert.pem")
		resp, got := post(t, h, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, got)
		}
		rec := up.Received()
		if len(rec) != 1 || !bytes.Equal(rec[0].Body, body) {
			t.Fatalf("upstream got %d requests, want the body as sent", len(rec))
		}
		if id, typ := rec[0].Header.Get("Webhook-Gateway-Event-Id"), rec[0].Header.Get("Webhook-Gateway-Event-Type"); id != "msg-valid" || typ != "Notification" {
			t.Fatalf("event id %q type %q, want the signed MessageId and Type", id, typ)
		}
		if n := s.certs.count("/cert.pem"); n != 1 {
			t.Fatalf("certificate fetched %d times", n)
		}
	})

	t.Run("forged certificate URL", func(t *testing.T) {
		before := s.certs.total()
		for _, c := range s.forged() {
			t.Run(c.name, func(t *testing.T) {
				up.Reset()
				h, body := s.signer.sign(t, notification(snsTopic), "msg-forged", c.url)
				resp, got := post(t, h, body)
				refused(t, resp, got, statusOf[c.reason], c.reason)
				if up.Count() != 0 {
					t.Fatal("a refused delivery reached the upstream")
				}
			})
		}
		if n := s.decoy.total(); n != 0 {
			t.Fatalf("the decoy was reached %d times", n)
		}
		if n := s.certs.total() - before; n != 1 || s.certs.count("/redirect.pem") != 1 {
			t.Fatalf("the allowed server was asked %d times, want only the redirect's first hop", n)
		}
	})

	t.Run("topic not allowed fetches nothing", func(t *testing.T) {
		up.Reset()
		h, body := s.signer.sign(t, notification(snsOtherTopic), "msg-other-topic", s.certs.URL+"/other-topic.pem")
		resp, got := post(t, h, body)
		refused(t, resp, got, http.StatusUnauthorized, "sender_not_allowed")
		if n := s.certs.count("/other-topic.pem"); n != 0 || up.Count() != 0 {
			t.Fatalf("%d fetches, %d forwarded for a topic the route does not accept", n, up.Count())
		}
	})

	t.Run("1000 deliveries, one fetch", func(t *testing.T) {
		up.Reset()
		const n = 1000
		failed := s.burst(t, n, "/burst.pem", func(h http.Header, body []byte) bool {
			resp, _, err := send(h, body)
			return err == nil && resp.StatusCode == http.StatusOK
		})
		if failed != 0 || up.Count() != n {
			t.Fatalf("%d refused, %d forwarded of %d", failed, up.Count(), n)
		}
		if got := s.certs.count("/burst.pem"); got != 1 {
			t.Fatalf("%d fetches of the certificate for %d deliveries, want 1", got, n)
		}
	})

	t.Run("a hanging fetch holds deliveries no longer than its timeout", func(t *testing.T) {
		up.Reset()
		const n = 4
		// Generous slack for a busy machine; the point is that nothing
		// waits for the server, which never answers.
		limit := snsKeyTimeout + 8*time.Second
		type answer struct {
			resp *http.Response
			body []byte
			err  error
			took time.Duration
		}
		var wg sync.WaitGroup
		answers := make([]answer, n)
		start := time.Now()
		for i := range n {
			h, body := s.signer.sign(t, notification(snsTopic), fmt.Sprintf("msg-hang-%d", i), s.certs.URL+"/hang.pem")
			wg.Go(func() {
				resp, got, err := send(h, body)
				answers[i] = answer{resp, got, err, time.Since(start)}
			})
		}
		wg.Wait()
		for i, a := range answers {
			if a.err != nil {
				t.Fatalf("delivery %d: %v", i, a.err)
			}
			refused(t, a.resp, a.body, http.StatusServiceUnavailable, "key_unavailable")
			if a.took > limit {
				t.Errorf("delivery %d answered after %s, timeout %s", i, a.took, snsKeyTimeout)
			}
		}
		if up.Count() != 0 || s.certs.count("/hang.pem") != 1 {
			t.Fatalf("upstream got %d, the hanging server was asked %d times", up.Count(), s.certs.count("/hang.pem"))
		}
	})

	t.Run("subscription confirmation", func(t *testing.T) {
		for _, c := range []struct {
			name, topic, url string
			status           int
			reason           string
			confirms         int
		}{
			{"allowed topic", snsTopic, s.confirmURL(snsTopic), http.StatusOK, "", 1},
			{"topic not allowed", snsOtherTopic, s.confirmURL(snsOtherTopic), http.StatusUnauthorized, "sender_not_allowed", 0},
			{"url for another topic", snsTopic, s.confirmURL(snsOtherTopic), http.StatusForbidden, "", 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				up.Reset()
				before := s.certs.count("/confirm")
				h, body := s.signer.sign(t, confirmation(c.topic, c.url), "msg-"+c.name, s.certs.URL+"/cert.pem")
				resp, got := post(t, h, body)
				if c.reason != "" {
					refused(t, resp, got, c.status, c.reason)
				} else if resp.StatusCode != c.status {
					t.Fatalf("status %d: %s", resp.StatusCode, got)
				}
				if n := s.certs.count("/confirm") - before; n != c.confirms {
					t.Fatalf("SubscribeURL called %d times, want %d", n, c.confirms)
				}
				if q, _ := s.confirmed.Load().(string); c.confirms == 1 && !strings.Contains(q, "TopicArn="+url.QueryEscape(snsTopic)) {
					t.Fatalf("confirmed %q", q)
				}
				if up.Count() != 0 {
					t.Fatal("the confirmation reached the upstream")
				}
			})
		}
		// A signed confirmation can be replayed for the Timestamp's hour:
		// each replay must not call AWS again (nor take the fetch slots
		// that SNS's certificates need), only the first.
		t.Run("replayed confirmation", func(t *testing.T) {
			before := s.certs.count("/confirm")
			subscribe := strings.Replace(s.confirmURL(snsTopic), "Token=2336412f37", "Token=replayed-7f3a", 1)
			h, body := s.signer.sign(t, confirmation(snsTopic, subscribe), "msg-replayed", s.certs.URL+"/cert.pem")
			for i := range 20 {
				if resp, got := post(t, h, body); resp.StatusCode != http.StatusOK {
					t.Fatalf("replay %d: status %d: %s", i, resp.StatusCode, got)
				}
			}
			if n := s.certs.count("/confirm") - before; n != 1 {
				t.Fatalf("20 posts of one confirmation called SubscribeURL %d times, want 1", n)
			}
		})
	})
}
