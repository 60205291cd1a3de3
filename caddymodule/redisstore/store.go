// Package redisstore is the Redis implementation of store.Store, for
// several gateway instances sharing rate limits and idempotency claims,
// and of queue.Backend (Queue), for their durable delivery.
// It works with a single node, Sentinel or Cluster through go-redis's
// universal client. Each operation is one Lua script, so one round
// trip; all keys of one admission carry the source as hash tag
// (<prefix>:{<source>}:rl:<key> and <prefix>:{<source>}:idem:<key>), so
// a script touches one Cluster slot. The store requires Redis 5 or
// later; the queue Redis 7.0 (Debian's), and uses nothing newer.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// Store is a store.Store on Redis.
type Store struct {
	client  *Client
	prefix  string
	release func() error
	once    sync.Once
}

// Open returns a store on the shared client for cfg (see Acquire);
// Close gives the client back.
func Open(cfg Config) (*Store, error) {
	c, release, err := Acquire(cfg)
	if err != nil {
		return nil, err
	}
	return &Store{client: c, prefix: cfg.keyPrefix(), release: release}, nil
}

// NewStore returns a store on a client the caller owns: Close leaves it
// open. An empty prefix means DefaultKeyPrefix.
func NewStore(c *Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	return &Store{client: c, prefix: prefix}
}

// Client is the client the store talks through.
func (s *Store) Client() *Client { return s.client }

// Close implements store.Store.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		if s.release != nil {
			err = s.release()
		}
	})
	return err
}

func (s *Store) key(source, kind, key string) string {
	return s.prefix + ":{" + source + "}:" + kind + ":" + key
}

// Now is Redis TIME, the clock every rate decision is made by, so that a
// caller can measure what the store did against the store's own clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	now, err := s.client.rdb.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading redis time: %w", err)
	}
	return now, nil
}

// Complete implements store.Store.
func (s *Store) Complete(ctx context.Context, source, idemKey, owner string, resp store.Response, retention time.Duration) error {
	if err := store.ValidateComplete(source, idemKey, owner, resp, retention); err != nil {
		return fmt.Errorf("completing claim: %w", err)
	}
	keys := []string{s.key(source, "idem", idemKey)}
	stored, err := completeScript.Run(ctx, s.client.rdb, keys, owner, encodeResponse(resp), retention.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("running complete script: %w", err)
	}
	if stored == 0 {
		return store.ErrClaimLost
	}
	return nil
}

// Extend implements store.Store.
func (s *Store) Extend(ctx context.Context, source, idemKey, owner string, lease time.Duration) error {
	if err := store.ValidateExtend(source, idemKey, owner, lease); err != nil {
		return fmt.Errorf("extending claim: %w", err)
	}
	keys := []string{s.key(source, "idem", idemKey)}
	extended, err := extendScript.Run(ctx, s.client.rdb, keys, owner, lease.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("running extend script: %w", err)
	}
	if extended == 0 {
		return store.ErrClaimLost
	}
	return nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, source, idemKey, owner string, pin time.Duration) error {
	if err := store.ValidateRelease(source, idemKey, owner); err != nil {
		return fmt.Errorf("releasing claim: %w", err)
	}
	keys := []string{s.key(source, "idem", idemKey)}
	if err := releaseScript.Run(ctx, s.client.rdb, keys, owner, pin.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("running release script: %w", err)
	}
	return nil
}

// Admit implements store.Store.
func (s *Store) Admit(ctx context.Context, a store.Admission) (store.Result, error) {
	if err := a.Validate(); err != nil {
		return store.Result{}, fmt.Errorf("admitting: %w", err)
	}
	if a.RateKey == "" && a.IdemKey == "" {
		return store.Result{Rate: store.Decision{Allowed: true}}, nil
	}
	keys, args := s.admitArgs(a)
	reply, err := admitScript.Run(ctx, s.client.rdb, keys, args...).Slice()
	if err != nil {
		return store.Result{}, fmt.Errorf("running admit script: %w", err)
	}
	res, err := parseAdmit(a, reply)
	if err != nil {
		return store.Result{}, fmt.Errorf("reading admit reply: %w", err)
	}
	return res, nil
}

func (s *Store) admitArgs(a store.Admission) (keys []string, args []any) {
	var interval, window int64
	if a.RateKey != "" {
		interval = a.Limit.IntervalMicros()
		window = interval * a.Limit.Capacity()
		keys = append(keys, s.key(a.Source, "rl", a.RateKey))
	}
	owner := ""
	if a.IdemKey != "" {
		owner = a.Owner
		keys = append(keys, s.key(a.Source, "idem", a.IdemKey))
	}
	return keys, []any{interval, window, owner, a.Fingerprint, a.Lease.Milliseconds()}
}

var claimStates = [...]store.ClaimState{
	scriptNone:      store.ClaimNone,
	scriptAcquired:  store.ClaimAcquired,
	scriptInFlight:  store.ClaimInFlight,
	scriptCompleted: store.ClaimCompleted,
	scriptConflict:  store.ClaimConflict,
}

// parseAdmit turns the script's reply into a Result, computing the
// rate numbers with store's Decide so they match the memory store.
func parseAdmit(a store.Admission, reply []any) (store.Result, error) {
	if len(reply) != 6 {
		return store.Result{}, fmt.Errorf("%d values, want 6", len(reply))
	}
	var n [5]int64
	for i := range n {
		v, ok := reply[i].(int64)
		if !ok {
			return store.Result{}, fmt.Errorf("value %d is %T, want an integer", i, reply[i])
		}
		n[i] = v
	}
	allowed, now, tat, state, leaseLeft := n[0] == 1, n[1], n[2], n[3], n[4]
	if state < 0 || state >= int64(len(claimStates)) {
		return store.Result{}, fmt.Errorf("unknown claim state %d", state)
	}
	res := store.Result{Rate: store.Decision{Allowed: allowed}, State: claimStates[state]}
	if a.RateKey != "" {
		res.Rate = a.Limit.Decide(allowed, now, tat)
	}
	switch res.State {
	case store.ClaimInFlight:
		res.RetryAfter = time.Duration(max(leaseLeft, 0)) * time.Millisecond
	case store.ClaimCompleted:
		stored, err := parseStored(reply[5])
		if err != nil {
			return store.Result{}, err
		}
		res.Stored = &stored
	}
	return res, nil
}

func parseStored(v any) (store.Response, error) {
	s, ok := v.(string)
	if !ok {
		return store.Response{}, errors.New("completed claim without an answer")
	}
	return decodeResponse([]byte(s))
}

// Interface guard
var _ store.Store = (*Store)(nil)
