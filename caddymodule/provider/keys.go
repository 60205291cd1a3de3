package provider

import (
	"context"
	"regexp"
	"time"
)

// KeySource fetches the documents that some providers' signatures are
// checked with: a certificate named in the message (AWS SNS), a JWKS
// (Google), a key by id from an authenticated API (Plaid). Verifiers call
// it on the request path, so an implementation answers from a cache,
// runs one fetch per document however many callers wait for it, bounds
// each fetch in time and size, and refuses every URL that the request's
// rules and its own allow-list do not admit (caddymodule/keyfetch).
type KeySource interface {
	Fetch(ctx context.Context, req KeyRequest) (KeyDocument, error)
}

// KeyRequest says what to fetch and which URLs are acceptable. Rules only
// narrow: a URL must pass them and the KeySource's own checks (https, no
// userinfo, no redirect, no private address unless configured).
type KeyRequest struct {
	// Provider names the provider, for metrics and logs.
	Provider string

	// URL is what to fetch. It may come from the message (SNS's
	// SigningCertURL), so it is never trusted before the checks.
	URL string

	// Method is GET unless set (Plaid's key API takes a POST).
	Method string

	// Body is sent with a POST, as ContentType. It may carry
	// credentials: it is part of the cache key but never logged.
	Body        []byte
	ContentType string

	// Hosts are hosts the provider's own code names (Google's JWKS
	// host, Plaid's API hosts), admitted on port 443 only.
	Hosts []string

	// HostPattern, when set, admits hosts that match it, on port 443
	// only (SNS's official pattern for the hosts of its certificates).
	// It marks a URL the message names: the KeySource's host entries
	// (meant for configured key locations) do not widen it, only its
	// exact host:port entries.
	HostPattern *regexp.Regexp

	// PathSuffix, when set, is required of the URL's path (".pem").
	PathSuffix string

	// RefreshOlderThan, when set, makes a cached document older than it
	// be fetched again (a JWKS that lacks a key id the message names);
	// the KeySource still runs one fetch at a time per document and
	// keeps a failure for a while, so forged key ids cannot make it
	// fetch at will.
	RefreshOlderThan time.Duration

	// NoCache fetches without reading or filling the cache: a one-off
	// call that no one could repeat at will.
	NoCache bool
}

// KeyDocument is a fetched document. Body is shared by every caller of
// the same cache entry: read it, never change it.
type KeyDocument struct {
	Body    []byte
	Fetched time.Time
}
