package keyfetch

import (
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/store"
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

// The two budgets' paces, for the project's one GCRA: one fetch per
// interval, a burst of them after a quiet spell.
var (
	fetchPace   = store.Limit{Count: 1, Period: FetchInterval, Burst: FetchBurst}
	refreshPace = store.Limit{Count: 1, Period: RefreshInterval, Burst: RefreshBurst}
)

// takeLocked takes one of the budget's fetch slots and one fetch of its
// pace, under f.mu; false when either is spent.
func (f *Fetcher) takeLocked(b budgetKey) bool {
	inFlight, pace := MaxInFlight, fetchPace
	if b.refresh {
		inFlight, pace = MaxRefreshInFlight, refreshPace
	}
	if f.running[b] >= inFlight {
		return false
	}
	allowed, tat := store.GCRA(pace, f.now().UnixMicro(), f.paced[b])
	if !allowed {
		return false
	}
	f.paced[b] = tat
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
