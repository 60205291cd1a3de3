package keyfetch

import (
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// Bounds on the fetches of one provider, so that a flood of distinct key
// locations (forged key ids, each a document of its own to Plaid's API;
// forged SNS certificate paths) holds a bounded number of connections and
// goroutines, spends the account's API quota no faster than a trickle,
// and cannot starve the other providers. Each provider has two budgets:
// one for documents not in the cache (never fetched, or evicted), which
// anyone may name, and one for refetching documents fetched before, so
// that a flood of new ones never makes a known document's refresh busy.
// Genuine traffic needs a few documents per provider, all at start-up or
// when a key rotates.
const (
	// MaxInFlight bounds the fetches of documents not in the cache
	// running at once.
	MaxInFlight = 8
	// FetchBurst fetches of documents not in the cache may start at
	// once; after them, one per FetchInterval.
	FetchBurst    = 8
	FetchInterval = time.Second

	// MaxRefreshInFlight, RefreshBurst and RefreshInterval are the same
	// bounds on refetches of cached documents, expired or too old for
	// the request.
	MaxRefreshInFlight = 16
	RefreshBurst       = 16
	RefreshInterval    = time.Second
)

// budgetKey names one of a provider's two budgets.
type budgetKey struct {
	provider string
	refresh  bool // a refetch of a cached document
}

// takeLocked takes one of the budget's fetch slots and one fetch of its
// pace (GCRA: a theoretical arrival time advanced by the interval per
// fetch, at most a burst of intervals ahead), under f.mu; false when
// either is spent.
func (f *Fetcher) takeLocked(b budgetKey) bool {
	inFlight, burst, interval := MaxInFlight, FetchBurst, FetchInterval
	if b.refresh {
		inFlight, burst, interval = MaxRefreshInFlight, RefreshBurst, RefreshInterval
	}
	if f.running[b] >= inFlight {
		return false
	}
	now := f.now()
	next := f.paced[b]
	if next.Before(now) {
		next = now
	}
	if next.Sub(now) >= time.Duration(burst)*interval {
		return false
	}
	f.paced[b] = next.Add(interval)
	f.running[b]++
	return true
}

// endLocked gives a fetch slot back, under f.mu.
func (f *Fetcher) endLocked(b budgetKey) {
	if f.running[b]--; f.running[b] <= 0 {
		delete(f.running, b)
	}
}

// busy refuses a fetch when its budget's slots or pace are spent. Nothing
// is kept: it says nothing about the document.
func busy(req provider.KeyRequest, observe Observer) (provider.KeyDocument, error) {
	observe(req.Provider, OutcomeBusy)
	return provider.KeyDocument{}, unavailable("too many key fetches for %s just now", req.Provider)
}
