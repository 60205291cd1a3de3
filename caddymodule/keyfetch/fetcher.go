package keyfetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// Outcomes passed to an Observer, one per Fetch call except a caller
// that stops waiting (its context ends) before the answer.
const (
	// OutcomeFetched: a fetch this call started succeeded.
	OutcomeFetched = "fetched"
	// OutcomeFailed: a fetch this call started failed (timeout, status
	// other than 200, too large, unreachable); the failure is kept for
	// FailureTTL.
	OutcomeFailed = "failed"
	// OutcomeCached: answered from the cache, or by a fetch another call
	// had started.
	OutcomeCached = "cached"
	// OutcomeFailureCached: answered with a failure kept from an earlier
	// fetch, or by a failing fetch another call had started.
	OutcomeFailureCached = "failure_cached"
	// OutcomeRefused: the URL is not allowed, or its host resolved to an
	// address that is not public.
	OutcomeRefused = "refused"
	// OutcomeBusy: the provider already has MaxInFlight fetches running,
	// or started more than its pace allows (FetchBurst, FetchInterval);
	// nothing was fetched and nothing is kept.
	OutcomeBusy = "busy"
)

// Bounds on the fetches of one provider, so that a flood of distinct key
// locations (forged key ids, each a document of its own to Plaid's API)
// holds a bounded number of connections and goroutines, spends the
// account's API quota no faster than a trickle, and cannot starve the
// other providers. Genuine traffic needs a few documents per provider,
// all at start-up or when a key rotates.
const (
	// MaxInFlight bounds the fetches running at once.
	MaxInFlight = 16
	// FetchBurst fetches may start at once; after them, one per
	// FetchInterval.
	FetchBurst    = 16
	FetchInterval = time.Second
)

// Observer is told the outcome of every Fetch, for metrics.
type Observer func(provider, outcome string)

// Fetcher is the gateway's provider.KeySource. Its errors are
// *provider.Error with Reason provider.ReasonKeyNotAllowed (the URL or
// the address it resolves to is refused; nothing was fetched) or
// provider.ReasonKeyUnavailable (the document could not be had now).
// Safe for concurrent use.
type Fetcher struct {
	allow    allowList
	client   *http.Client
	timeout  time.Duration
	maxBytes int64
	now      func() time.Time // tests replace it

	mu       sync.Mutex
	docs     *lru[cached]
	failures *lru[failure]
	inflight map[string]*call
	running  map[string]int       // fetches running, per provider
	paced    map[string]time.Time // per provider: when its pace allows the next fetch without burst
}

type cached struct {
	doc     provider.KeyDocument
	expires time.Time
}

type failure struct {
	err   *provider.Error
	until time.Time
}

// call is one fetch, waited for by every caller that asked for its
// document meanwhile.
type call struct {
	done chan struct{}
	doc  provider.KeyDocument
	err  *provider.Error
}

// New builds a Fetcher; it reads cfg.TLSCA.
func New(cfg Config) (*Fetcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	allow, _ := parseAllow(cfg.Allow)
	roots, err := cfg.rootCAs()
	if err != nil {
		return nil, err
	}
	timeout := cfg.timeout()
	transport := &http.Transport{
		// Proxy variables are ignored: a proxy would dial for us, past
		// the address check.
		Proxy:                  nil,
		DialContext:            allow.dialContext(timeout),
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &Fetcher{
		allow: allow,
		client: &http.Client{
			Transport: transport,
			// A redirect is answered as it is, and its status refused:
			// its target passed no check.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:  timeout,
		maxBytes: cfg.maxBytes(),
		now:      time.Now,
		docs:     newLRU[cached](cfg.cacheEntries()),
		failures: newLRU[failure](cfg.cacheEntries()),
		inflight: make(map[string]*call),
		running:  make(map[string]int),
		paced:    make(map[string]time.Time),
	}, nil
}

// Close lets the idle connections go.
func (f *Fetcher) Close() { f.client.CloseIdleConnections() }

// Fetch implements provider.KeySource, with no observer.
func (f *Fetcher) Fetch(ctx context.Context, req provider.KeyRequest) (provider.KeyDocument, error) {
	return f.fetch(ctx, req, func(string, string) {})
}

// Observed is the Fetcher seen through an observer, which is told the
// outcome of every Fetch (for the config's metrics).
func (f *Fetcher) Observed(o Observer) provider.KeySource {
	if o == nil {
		o = func(string, string) {}
	}
	return observed{f, o}
}

type observed struct {
	f *Fetcher
	o Observer
}

func (s observed) Fetch(ctx context.Context, req provider.KeyRequest) (provider.KeyDocument, error) {
	return s.f.fetch(ctx, req, s.o)
}

func (f *Fetcher) fetch(ctx context.Context, req provider.KeyRequest, observe Observer) (provider.KeyDocument, error) {
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	u, err := f.allow.admit(req)
	if err != nil {
		observe(req.Provider, OutcomeRefused)
		return provider.KeyDocument{}, err
	}
	if req.NoCache {
		return f.once(ctx, req, u, observe)
	}
	key := cacheKey(req, u)
	f.mu.Lock()
	if doc, perr, ok := f.lookup(key, req); ok {
		f.mu.Unlock()
		return answered(req, doc, perr, observe)
	}
	c, joined := f.inflight[key]
	if !joined {
		if !f.startLocked(req.Provider) {
			f.mu.Unlock()
			return busy(req, observe)
		}
		c = &call{done: make(chan struct{})}
		f.inflight[key] = c
		// The fetch has a context of its own: a caller that hangs up
		// does not cancel it for the others.
		go f.run(context.WithoutCancel(ctx), key, req, u, c, observe)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		if joined {
			return answered(req, c.doc, c.err, observe)
		}
		return result(c.doc, c.err)
	case <-ctx.Done():
		return provider.KeyDocument{}, unavailable("stopped waiting for the key: %v", ctx.Err())
	}
}

// startLocked takes one of the provider's MaxInFlight fetch slots and
// one fetch of its pace (GCRA: a theoretical arrival time advanced by
// FetchInterval per fetch, at most FetchBurst intervals ahead), under
// f.mu; false when either is spent.
func (f *Fetcher) startLocked(provider string) bool {
	if f.running[provider] >= MaxInFlight {
		return false
	}
	now := f.now()
	next := f.paced[provider]
	if next.Before(now) {
		next = now
	}
	if next.Sub(now) >= FetchBurst*FetchInterval {
		return false
	}
	f.paced[provider] = next.Add(FetchInterval)
	f.running[provider]++
	return true
}

// endLocked gives a fetch slot back, under f.mu.
func (f *Fetcher) endLocked(provider string) {
	if f.running[provider]--; f.running[provider] <= 0 {
		delete(f.running, provider)
	}
}

// busy refuses a fetch when the provider's slots or pace are spent. Nothing
// is kept: it says nothing about the document.
func busy(req provider.KeyRequest, observe Observer) (provider.KeyDocument, error) {
	observe(req.Provider, OutcomeBusy)
	return provider.KeyDocument{}, unavailable("too many key fetches for %s just now", req.Provider)
}

// lookup answers from the cache, under f.mu: a document that is fresh
// and, when the request asks, young enough; else a failure still kept.
func (f *Fetcher) lookup(key string, req provider.KeyRequest) (provider.KeyDocument, *provider.Error, bool) {
	now := f.now()
	if c, ok := f.docs.get(key); ok && now.Before(c.expires) &&
		(req.RefreshOlderThan <= 0 || now.Sub(c.doc.Fetched) < req.RefreshOlderThan) {
		return c.doc, nil, true
	}
	if fl, ok := f.failures.get(key); ok && now.Before(fl.until) {
		return provider.KeyDocument{}, fl.err, true
	}
	return provider.KeyDocument{}, nil, false
}

// answered returns what the cache or another call's fetch gave.
func answered(req provider.KeyRequest, doc provider.KeyDocument, err *provider.Error, observe Observer) (provider.KeyDocument, error) {
	if err != nil {
		observe(req.Provider, OutcomeFailureCached)
	} else {
		observe(req.Provider, OutcomeCached)
	}
	return result(doc, err)
}

// result keeps a nil *provider.Error from becoming a non-nil error.
func result(doc provider.KeyDocument, err *provider.Error) (provider.KeyDocument, error) {
	if err != nil {
		return provider.KeyDocument{}, err
	}
	return doc, nil
}

// run makes one fetch, keeps its result and hands it to every waiter.
func (f *Fetcher) run(ctx context.Context, key string, req provider.KeyRequest, u *url.URL, c *call, observe Observer) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	doc, life, err := f.get(ctx, req, u)
	now := f.now()
	f.mu.Lock()
	delete(f.inflight, key)
	f.endLocked(req.Provider)
	if err == nil {
		f.docs.put(key, cached{doc: doc, expires: now.Add(life)})
		f.failures.remove(key)
	} else {
		// A refused address is kept too: it spares a DNS lookup per
		// delivery.
		f.failures.put(key, failure{err: err, until: now.Add(FailureTTL)})
	}
	f.mu.Unlock()
	c.doc, c.err = doc, err
	// Counted before the callers are answered, so that what they
	// observe afterwards includes this fetch.
	observeFetch(req, err, observe)
	close(c.done)
}

// once fetches without the cache, for a one-off call: bounded the same
// way (time, size, the provider's fetch slots), and cancelled with its
// caller.
func (f *Fetcher) once(ctx context.Context, req provider.KeyRequest, u *url.URL, observe Observer) (provider.KeyDocument, error) {
	f.mu.Lock()
	started := f.startLocked(req.Provider)
	f.mu.Unlock()
	if !started {
		return busy(req, observe)
	}
	defer func() {
		f.mu.Lock()
		f.endLocked(req.Provider)
		f.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	doc, _, err := f.get(ctx, req, u)
	observeFetch(req, err, observe)
	return result(doc, err)
}

func observeFetch(req provider.KeyRequest, err *provider.Error, observe Observer) {
	switch {
	case err == nil:
		observe(req.Provider, OutcomeFetched)
	case err.Reason == provider.ReasonKeyNotAllowed:
		observe(req.Provider, OutcomeRefused)
	default:
		observe(req.Provider, OutcomeFailed)
	}
}

// get makes the HTTP call. The body of the request is never logged nor
// put in an error: it may carry credentials (Plaid's).
func (f *Fetcher) get(ctx context.Context, req provider.KeyRequest, u *url.URL) (provider.KeyDocument, time.Duration, *provider.Error) {
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return provider.KeyDocument{}, 0, notAllowed("the key URL cannot be requested")
	}
	if req.ContentType != "" {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	hr.Header.Set("User-Agent", "webhook-gateway key fetch")
	resp, err := f.client.Do(hr)
	if err != nil {
		return provider.KeyDocument{}, 0, f.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return provider.KeyDocument{}, 0, unavailable("the key server answered status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err == nil {
		// An answer that completes as the fetch is abandoned (a server
		// that gives up when the client does) is not taken.
		err = ctx.Err()
	}
	if err != nil {
		return provider.KeyDocument{}, 0, f.transportError(ctx, err)
	}
	switch {
	case int64(len(b)) > f.maxBytes:
		return provider.KeyDocument{}, 0, unavailable("the key document exceeds %d bytes", f.maxBytes)
	case len(b) == 0:
		return provider.KeyDocument{}, 0, unavailable("the key document is empty")
	}
	return provider.KeyDocument{Body: b, Fetched: f.now()}, ttl(resp.Header), nil
}

// transportError says why a call failed without quoting the server: a
// refused address is "not allowed", the rest "unavailable".
func (f *Fetcher) transportError(ctx context.Context, err error) *provider.Error {
	switch {
	case errors.Is(err, errAddressRefused):
		return notAllowed("%v", errAddressRefused)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return unavailable("fetching the key took longer than %s", f.timeout)
	case ctx.Err() != nil:
		return unavailable("the key fetch was cancelled")
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return unavailable("the key server's certificate is not trusted")
	}
	return unavailable("the key server could not be reached")
}

// cacheKey names a document by what was asked: method, URL and a hash of
// the body (never the body itself, which may carry credentials).
func cacheKey(req provider.KeyRequest, u *url.URL) string {
	sum := sha256.Sum256(req.Body)
	return req.Method + " " + u.String() + " " + req.ContentType + " " + hex.EncodeToString(sum[:])
}

func notAllowed(format string, args ...any) *provider.Error {
	return &provider.Error{Reason: provider.ReasonKeyNotAllowed, Detail: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) *provider.Error {
	return &provider.Error{Reason: provider.ReasonKeyUnavailable, Detail: fmt.Sprintf(format, args...)}
}

// Interface guards
var (
	_ provider.KeySource = (*Fetcher)(nil)
	_ provider.KeySource = observed{}
)
