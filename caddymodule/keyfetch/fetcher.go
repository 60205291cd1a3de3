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
	// OutcomeBusy: the fetch's budget is spent (budget.go: fetches
	// running, or more started than its pace allows) and no document can
	// stand in; nothing was fetched and nothing is kept.
	OutcomeBusy = "busy"
	// OutcomeStale: answered with a document past its expiry, at most
	// MaxStale past it, because its refetch was refused as busy or
	// failed (by this call's fetch, another's, or a failure still kept).
	// A refetch is tried again as soon as the budget allows, or the
	// failure is no longer kept.
	OutcomeStale = "stale"
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
	running  map[budgetKey]int   // fetches running, per budget
	paced    map[budgetKey]int64 // per budget: the GCRA's theoretical arrival time, Unix µs
}

// cached is a document fetched before, with the failure of its last
// refetch while that is kept: kept here rather than among the failures,
// so that a flood of forged locations' failures cannot evict it and
// make the document's server be asked again at once.
type cached struct {
	doc     provider.KeyDocument
	expires time.Time
	failed  *provider.Error
	retry   time.Time // the refetch's failure is kept until then
}

type failure struct {
	err   *provider.Error
	until time.Time
}

// call is one fetch, waited for by every caller that asked for its
// document meanwhile.
type call struct {
	done   chan struct{}
	budget budgetKey
	doc    provider.KeyDocument
	err    *provider.Error
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
		running:  make(map[budgetKey]int),
		paced:    make(map[budgetKey]int64),
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
	e := f.lookup(key, req)
	if e.fresh || e.failed != nil {
		f.mu.Unlock()
		return e.answer(req, observe)
	}
	c, joined := f.inflight[key]
	if !joined {
		if c = f.startLocked(ctx, key, req, u, e, observe); c == nil {
			f.mu.Unlock()
			if e.stale {
				return stale(req, e.doc, observe)
			}
			return busy(req, observe)
		}
	}
	f.mu.Unlock()
	return e.await(ctx, req, c, joined, observe)
}

// startLocked starts the fetch of a document the cache cannot answer,
// under f.mu, taking the provider's refresh budget for a document fetched
// before and its other budget for any other; nil when that is spent.
func (f *Fetcher) startLocked(ctx context.Context, key string, req provider.KeyRequest, u *url.URL, e entry, observe Observer) *call {
	b := budgetKey{provider: req.Provider, refresh: e.known}
	if !f.takeLocked(b) {
		return nil
	}
	c := &call{done: make(chan struct{}), budget: b}
	f.inflight[key] = c
	// The fetch has a context of its own: a caller that hangs up does
	// not cancel it for the others.
	go f.run(context.WithoutCancel(ctx), key, req, u, c, e.stale, observe)
	return c
}

// entry is what the cache has for a request, read under f.mu.
type entry struct {
	doc    provider.KeyDocument // the cached document, if any
	fresh  bool                 // doc answers the request as it is
	known  bool                 // a document was fetched before: a refetch takes the refresh budget
	stale  bool                 // doc may stand in while its refetch is refused or fails
	failed *provider.Error      // a failure still kept: answer it (or doc, if stale) without fetching
}

// lookup reads the cache, under f.mu. A document answers while it is
// fresh and, when the request asks, young enough. Past its expiry, for up
// to MaxStale, one that is young enough may stand in while its refetch
// is refused or fails: it was the provider's document, and refusing
// every delivery because a refetch cannot be had now would let a flood
// of forged key locations (spending the budget) or a key server's
// outage block genuine deliveries. A document never fetched has nothing
// to stand in for it.
func (f *Fetcher) lookup(key string, req provider.KeyRequest) entry {
	now := f.now()
	if c, ok := f.docs.get(key); ok {
		young := req.RefreshOlderThan <= 0 || now.Sub(c.doc.Fetched) < req.RefreshOlderThan
		e := entry{doc: c.doc, known: true, fresh: young && now.Before(c.expires),
			stale: young && now.Before(c.expires.Add(MaxStale))}
		if now.Before(c.retry) {
			e.failed = c.failed
		}
		return e
	}
	if fl, ok := f.failures.get(key); ok && now.Before(fl.until) {
		return entry{failed: fl.err}
	}
	return entry{}
}

// answer answers from the cache alone: a fresh document, else a failure
// still kept, or the document standing in for it.
func (e entry) answer(req provider.KeyRequest, observe Observer) (provider.KeyDocument, error) {
	switch {
	case e.fresh:
		return answered(req, e.doc, nil, observe)
	case e.stale:
		return stale(req, e.doc, observe)
	}
	return answered(req, provider.KeyDocument{}, e.failed, observe)
}

// await answers with what c fetched or, when it failed, with the
// document standing in for it. The call's starter (not joined) was
// counted by run.
func (e entry) await(ctx context.Context, req provider.KeyRequest, c *call, joined bool, observe Observer) (provider.KeyDocument, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return provider.KeyDocument{}, unavailable("stopped waiting for the key: %v", ctx.Err())
	}
	switch {
	case c.err != nil && e.stale && joined:
		return stale(req, e.doc, observe)
	case c.err != nil && e.stale:
		return e.doc, nil
	case joined:
		return answered(req, c.doc, c.err, observe)
	}
	return result(c.doc, c.err)
}

// stale answers with a document past its expiry whose refetch is
// refused or failed.
func stale(req provider.KeyRequest, doc provider.KeyDocument, observe Observer) (provider.KeyDocument, error) {
	observe(req.Provider, OutcomeStale)
	return doc, nil
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
// stale says its caller has a document to stand in should it fail.
func (f *Fetcher) run(ctx context.Context, key string, req provider.KeyRequest, u *url.URL, c *call, stale bool, observe Observer) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	doc, life, err := f.get(ctx, req, u)
	now := f.now()
	f.mu.Lock()
	delete(f.inflight, key)
	f.endLocked(c.budget)
	if err == nil {
		f.docs.put(key, cached{doc: doc, expires: now.Add(life)})
		f.failures.remove(key)
	} else {
		// A refused address is kept too: it spares a DNS lookup per
		// delivery.
		f.keepFailureLocked(key, err, now.Add(FailureTTL))
	}
	f.mu.Unlock()
	c.doc, c.err = doc, err
	// Counted before the callers are answered, so that what they
	// observe afterwards includes this fetch.
	if err != nil && stale {
		observe(req.Provider, OutcomeStale)
	} else {
		observeFetch(req, err, observe)
	}
	close(c.done)
}

// keepFailureLocked keeps a failed fetch until then, under f.mu: with its
// document when one was fetched before, else among the failures.
func (f *Fetcher) keepFailureLocked(key string, err *provider.Error, until time.Time) {
	if c, ok := f.docs.get(key); ok {
		c.failed, c.retry = err, until
		f.docs.put(key, c)
		return
	}
	f.failures.put(key, failure{err: err, until: until})
}

// once fetches without the cache, for a one-off call: bounded the same
// way (time, size, the provider's fetch slots), and cancelled with its
// caller.
func (f *Fetcher) once(ctx context.Context, req provider.KeyRequest, u *url.URL, observe Observer) (provider.KeyDocument, error) {
	// A one-off fetch is never a refresh: it takes the budget that
	// anyone may spend.
	b := budgetKey{provider: req.Provider}
	f.mu.Lock()
	started := f.takeLocked(b)
	f.mu.Unlock()
	if !started {
		return busy(req, observe)
	}
	defer func() {
		f.mu.Lock()
		f.endLocked(b)
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
