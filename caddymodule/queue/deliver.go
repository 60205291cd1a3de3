package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// answerCap bounds how much of the app's answer is read, and discarded:
// enough for the usual short answer, so that the connection goes back
// to the pool; a longer answer costs its connection instead.
const answerCap = 64 << 10

// maxErrorLen bounds an attempt's recorded error.
const maxErrorLen = 300

// deliverer makes the attempts of one queue. It has one client, and so
// one pool of connections to To, kept alive and reused across attempts.
type deliverer struct {
	client   *http.Client
	to       string
	timeout  time.Duration
	headerUp []HeaderField
}

// newDeliverer is the deliverer of a provisioned, valid Config.
func newDeliverer(c *Config) (*deliverer, error) {
	tlsConfig, err := clientTLS(c)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		// Explicitly none: a proxy from the environment would see every
		// event, and To is where the operator said events go.
		Proxy:               nil,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: c.Concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	return &deliverer{
		client: &http.Client{
			Transport: transport,
			// A redirect is an answer like any other: not 2xx, so retried.
			// Following it would send the event where the operator did not
			// say.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		to:       c.To,
		timeout:  time.Duration(c.Timeout),
		headerUp: c.HeaderUp,
	}, nil
}

// ClientTLS is the TLS of requests to an https To (tls_ca,
// tls_insecure_skip_verify); nil for the system's defaults.
func (c *Config) ClientTLS() (*tls.Config, error) { return clientTLS(c) }

// clientTLS is the TLS of attempts to an https To; nil for the
// system's defaults.
func clientTLS(c *Config) (*tls.Config, error) {
	if c.TLSCA == "" && !c.TLSInsecureSkipVerify {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecureSkipVerify}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("queue: tls_ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("queue: tls_ca %s: no PEM certificate in it", c.TLSCA)
		}
	}
	return cfg, nil
}

// close lets the idle connections go.
func (d *deliverer) close() {
	d.client.CloseIdleConnections()
}

// attempt delivers ev once, as attempt ev.Attempts+1, and returns the
// attempt's record (without its Outcome) and the answer's Retry-After.
// The answer's body is read up to answerCap and discarded: it is never
// stored or logged.
func (d *deliverer) attempt(ctx context.Context, ev *Event) (Attempt, string) {
	a := Attempt{N: ev.Attempts + 1, At: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, ev.Method, d.to, bytes.NewReader(ev.Body))
	if err != nil {
		a.Error = d.describe(err)
		return a, ""
	}
	req.Header = d.header(ev, a.N)
	resp, err := d.client.Do(req)
	if err != nil {
		a.Duration = time.Since(a.At)
		a.Error = d.describe(err)
		return a, ""
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, answerCap))
	resp.Body.Close()
	a.Duration, a.Status = time.Since(a.At), resp.StatusCode
	if err != nil {
		a.Error = "reading the answer: " + d.describe(err)
	}
	return a, resp.Header.Get("Retry-After")
}

// describe is an attempt's error as recorded: without To (whose query
// may hold a token), and short.
func (d *deliverer) describe(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out after " + d.timeout.String()
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	msg := err.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen] + "…"
	}
	return msg
}

// header is what attempt n of ev carries: the stored headers without
// those of the provider's connection, then the gateway's, then the
// queue's header_up.
func (d *deliverer) header(ev *Event, n int) http.Header {
	h := make(http.Header, len(ev.Header)+5)
	named := connectionNamed(ev.Header)
	for k, vs := range ev.Header {
		k = http.CanonicalHeaderKey(k)
		if !dropped(k) && !named[k] {
			h[k] = append(h[k], vs...)
		}
	}
	h[HeaderDeliveryID] = []string{ev.ID}
	h[HeaderAttempt] = []string{strconv.Itoa(n)}
	if h.Get(HeaderIdempotencyKey) == "" {
		h.Set(HeaderIdempotencyKey, ev.ID)
	}
	if ev.ReplayOf != "" {
		h[HeaderReplayOf] = []string{ev.ReplayOf}
	}
	d.setHeaderUp(h, ev)
	if _, ok := h["User-Agent"]; !ok {
		// Go's client would add its own; the app sees the provider's or
		// none, as through reverse_proxy.
		h["User-Agent"] = []string{""}
	}
	return h
}

// setHeaderUp sets the queue's header_up fields, with the event's
// placeholders and Caddy's global ones ({env.*}) replaced. A field that
// comes out empty is removed.
func (d *deliverer) setHeaderUp(h http.Header, ev *Event) {
	if len(d.headerUp) == 0 {
		return
	}
	repl := caddy.NewReplacer()
	repl.Set("webhook.provider", HeaderSafe(ev.Provider))
	repl.Set("webhook.event_id", HeaderSafe(ev.EventID))
	repl.Set("webhook.event_type", HeaderSafe(ev.EventType))
	repl.Set("webhook.delivery_id", ev.ID)
	for _, f := range d.headerUp {
		if v := repl.ReplaceKnown(f.Value, ""); v != "" {
			h.Set(f.Name, v)
		} else {
			h.Del(f.Name)
		}
	}
}

// dropped reports whether a stored header (canonical name) is not passed
// on: hop-by-hop ones (RFC 9110 §7.6.1) belonged to the provider's
// connection; Host and Content-Length are the client's to set; the
// gateway's own are set afresh, so a stored copy cannot spoof them.
func dropped(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Host", "Content-Length", HeaderDeliveryID, HeaderAttempt, HeaderReplayOf:
		return true
	}
	return strings.HasPrefix(name, "Proxy-")
}

// connectionNamed are the headers the Connection header names: hop by
// hop too.
func connectionNamed(h http.Header) map[string]bool {
	var named map[string]bool
	for k, vs := range h {
		if http.CanonicalHeaderKey(k) != "Connection" {
			continue
		}
		for _, v := range vs {
			for tok := range strings.SplitSeq(v, ",") {
				if tok = strings.TrimSpace(tok); tok != "" {
					if named == nil {
						named = make(map[string]bool)
					}
					named[http.CanonicalHeaderKey(tok)] = true
				}
			}
		}
	}
	return named
}
