package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultMaxEntries bounds the memory store when MemoryConfig leaves
// MaxEntries at 0: a day of deliveries for a busy single instance.
const DefaultMaxEntries = 100_000

// DefaultMaxBytes bounds the memory store's estimated footprint when
// MemoryConfig leaves MaxBytes at 0. An entry costs about 300 bytes plus
// its stored answer, so without it 100,000 answers of 64 KiB could
// hold gigabytes.
const DefaultMaxBytes = 64 << 20

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// MaxEntries caps rate buckets plus claims together. When full,
	// expired entries go first, then the least recently written. 0
	// means DefaultMaxEntries.
	MaxEntries int
	// MaxBytes caps the entries' estimated footprint, stored answers
	// included; the same eviction order applies. 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Now replaces the clock in tests; nil means time.Now.
	Now func() time.Time
}

// Memory is a Store for a single gateway instance. It makes the same
// decisions as the Redis store (same GCRA function, same claim rules),
// so a deployment can move between them without changing behaviour.
type Memory struct {
	now func() time.Time

	mu  sync.Mutex
	tab *table
}

// NewMemory returns an empty memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Memory{now: cfg.Now, tab: newBudgetTable(cfg.MaxEntries, cfg.MaxBytes)}
}

// Admit implements Store.
func (m *Memory) Admit(_ context.Context, a Admission) (Result, error) {
	if err := a.Validate(); err != nil {
		return Result{}, fmt.Errorf("admitting: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UnixMicro()

	var claim *entry
	if a.IdemKey != "" {
		claim = m.tab.get(tableKey{kindClaim, a.Source, a.IdemKey}, now)
		switch {
		case claim == nil:
		case claim.resp == nil && claim.owner == a.Owner:
			// A resend: the first send went through, so the answer is
			// "acquired" again.
			return Result{Rate: m.resendDecision(a, now), State: ClaimAcquired}, nil
		case claim.resp == nil && claim.owner == "" && claim.fingerprint == a.Fingerprint:
			// Released with this very payload pinned: claimed anew
			// below, and charged like a first delivery.
		default:
			// A duplicate never reaches the upstream, so it is not
			// charged to the upstream's rate: it is answered from the
			// claim (replay, 409 or 422) whatever the bucket holds.
			res := Result{Rate: m.resendDecision(a, now)}
			m.claim(a, claim, now, &res)
			return res, nil
		}
	}
	res := Result{Rate: Decision{Allowed: true}}
	if a.RateKey != "" {
		res.Rate = m.rate(a, now)
		if !res.Rate.Allowed {
			return res, nil
		}
	}
	if a.IdemKey != "" {
		// Looked up again: charging the rate may have evicted it.
		m.claim(a, m.tab.get(tableKey{kindClaim, a.Source, a.IdemKey}, now), now, &res)
	}
	return res, nil
}

// rate runs the GCRA on a's bucket, charging it when allowed.
func (m *Memory) rate(a Admission, now int64) Decision {
	k := tableKey{kindRate, a.Source, a.RateKey}
	e := m.tab.get(k, now)
	var stored int64
	if e != nil {
		stored = e.tat
	}
	allowed, tat := GCRA(a.Limit, now, stored)
	if allowed {
		if e == nil {
			e = &entry{key: k}
		}
		e.tat, e.expires = tat, tat
		m.tab.put(e, now)
	}
	return a.Limit.Decide(allowed, now, tat)
}

// resendDecision reports the rate for a resent admission, or a
// duplicate, without charging it (see ResendTAT).
func (m *Memory) resendDecision(a Admission, now int64) Decision {
	if a.RateKey == "" {
		return Decision{Allowed: true}
	}
	var stored int64
	if e := m.tab.get(tableKey{kindRate, a.Source, a.RateKey}, now); e != nil {
		stored = e.tat
	}
	return a.Limit.Decide(true, now, ResendTAT(a.Limit, now, stored))
}

// claim takes the claim if the key is free, or reports who has it.
func (m *Memory) claim(a Admission, e *entry, now int64, res *Result) {
	switch {
	case e == nil:
		e = &entry{
			key:         tableKey{kindClaim, a.Source, a.IdemKey},
			expires:     now + a.Lease.Microseconds(),
			owner:       a.Owner,
			fingerprint: a.Fingerprint,
		}
		m.tab.put(e, now)
		res.State = ClaimAcquired
	case e.fingerprint != a.Fingerprint:
		res.State = ClaimConflict
	case e.resp != nil:
		stored := e.resp.Clone()
		res.State, res.Stored = ClaimCompleted, &stored
	case e.owner == "":
		// Released with its payload pinned, and this is that payload.
		e.owner, e.expires = a.Owner, now+a.Lease.Microseconds()
		m.tab.put(e, now)
		res.State = ClaimAcquired
	default:
		res.State = ClaimInFlight
		res.RetryAfter = time.Duration(e.expires-now) * time.Microsecond
	}
}

// Complete implements Store.
func (m *Memory) Complete(_ context.Context, source, idemKey, owner string, resp Response, retention time.Duration) error {
	if err := ValidateComplete(source, idemKey, owner, resp, retention); err != nil {
		return fmt.Errorf("completing claim: %w", err)
	}
	stored := resp.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UnixMicro()
	e := m.tab.get(tableKey{kindClaim, source, idemKey}, now)
	if e == nil || e.owner != owner {
		return ErrClaimLost
	}
	e.resp = &stored
	e.expires = now + retention.Microseconds()
	m.tab.put(e, now)
	return nil
}

// Extend implements Store.
func (m *Memory) Extend(_ context.Context, source, idemKey, owner string, lease time.Duration) error {
	if err := ValidateExtend(source, idemKey, owner, lease); err != nil {
		return fmt.Errorf("extending claim: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UnixMicro()
	e := m.tab.get(tableKey{kindClaim, source, idemKey}, now)
	if e == nil || e.owner != owner || e.resp != nil {
		return ErrClaimLost
	}
	e.expires = now + lease.Microseconds()
	m.tab.put(e, now)
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, source, idemKey, owner string, pin time.Duration) error {
	if err := ValidateRelease(source, idemKey, owner); err != nil {
		return fmt.Errorf("releasing claim: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UnixMicro()
	e := m.tab.get(tableKey{kindClaim, source, idemKey}, now)
	switch {
	case e == nil || e.owner != owner || e.resp != nil:
	case pin > 0:
		e.owner, e.expires = "", now+pin.Microseconds()
		m.tab.put(e, now)
	default:
		m.tab.remove(e)
	}
	return nil
}

// Now is the time the store decides by, so that a caller can measure
// what the store did against the store's own clock.
func (m *Memory) Now(context.Context) (time.Time, error) { return m.now(), nil }

// Len reports how many entries (live or not yet swept) are held, so
// tests and metrics can watch the bound.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tab.len()
}

// Close implements Store. The memory store holds no outside resources,
// so it stays usable; this lets one instance stand in for several
// "clients" in tests.
func (m *Memory) Close() error { return nil }

// Interface guard
var _ Store = (*Memory)(nil)
