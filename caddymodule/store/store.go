// Package store holds the gateway's shared state: per-source rate limits
// and the idempotency claims that keep a redelivered event from reaching
// the upstream twice. The Store interface is what the HTTP handler talks
// to; Memory implements it for a single instance, and the redisstore
// package implements it for several instances sharing Redis.
//
// Every operation is one round trip to the backend: the handler pays at
// most two per accepted event (Admit, then Complete or Release), plus one
// Extend per third of the lease for an upstream that is slow to answer,
// and one for a refused or duplicate one.
package store

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Store keeps rate limits and idempotency claims. Implementations are
// safe for concurrent use.
type Store interface {
	// Admit applies the rate limit and, only if the event is allowed,
	// the idempotency claim, atomically and in one round trip, so that
	// a refused event never holds a claim its retry would trip over.
	Admit(ctx context.Context, a Admission) (Result, error)

	// Complete records the upstream's answer for retention, so that
	// redeliveries are answered from the store. It stores nothing and
	// returns ErrClaimLost when owner no longer holds the claim (the
	// lease ran out and another delivery may have taken over).
	Complete(ctx context.Context, source, idemKey, owner string, resp Response, retention time.Duration) error

	// Extend pushes an in-flight claim's expiry to lease from now, so
	// that an upstream slower than the lease does not let a redelivery
	// through. Only the owner of a claim still in flight may extend it;
	// otherwise nothing changes and it returns ErrClaimLost.
	Extend(ctx context.Context, source, idemKey, owner string, lease time.Duration) error

	// Release drops the claim so that the provider's retry is let
	// through, but only if owner still holds it: a late release must
	// never delete a claim that a newer delivery has since taken, nor a
	// completed answer. Releasing a claim one does not hold is a no-op.
	//
	// A positive pin keeps the claim's fingerprint for that long: the
	// key may be claimed again only with the same payload, and another
	// one is a ClaimConflict. Where a signature covers only part of a
	// body, this stops a captured signature from taking a released key
	// with a payload of the attacker's choosing.
	Release(ctx context.Context, source, idemKey, owner string, pin time.Duration) error

	// Close frees the store's resources (for Redis, its reference to
	// a shared client).
	Close() error
}

// ErrClaimLost is returned by Complete and Extend when the caller's claim expired
// or was taken over before the answer could be stored.
var ErrClaimLost = errors.New("idempotency claim no longer held")

// Admission describes one delivery to admit. Rate limiting and
// idempotency are each optional, and all keys of one admission are
// stored under the same Source so that Redis Cluster can run them in
// one script on one slot.
type Admission struct {
	// Source groups the keys of one sender (typically the route or the
	// provider). It must not be empty: it is the Redis Cluster hash tag.
	Source string

	// RateKey names the rate-limit bucket; "" disables rate limiting.
	RateKey string
	// Limit is the rate applied to RateKey.
	Limit Limit

	// IdemKey is the deduplication key (usually the event id); ""
	// disables idempotency.
	IdemKey string
	// Fingerprint identifies the payload (for example the hex SHA-256
	// of the body), so that an event id reused for a different payload
	// is reported as ClaimConflict rather than deduplicated.
	Fingerprint string
	// Owner is a random token unique to this delivery attempt; only its
	// holder may complete or release the claim.
	Owner string
	// Lease bounds how long an in-flight claim blocks redeliveries if
	// its holder dies without completing or releasing it.
	Lease time.Duration
}

// Validate reports the first problem that would make the admission
// unsafe to run, so both stores refuse the same inputs.
func (a Admission) Validate() error {
	if a.Source == "" {
		return errors.New("source must not be empty")
	}
	if a.RateKey != "" {
		if err := a.Limit.Validate(); err != nil {
			return err
		}
	}
	if a.IdemKey != "" {
		if a.Owner == "" {
			return errors.New("owner must not be empty")
		}
		if a.Lease < time.Millisecond {
			return errors.New("lease must be at least 1ms")
		}
	}
	return nil
}

// ClaimState is the outcome of the idempotency half of Admit.
type ClaimState int

const (
	// ClaimNone: no claim was attempted, because the admission has no
	// IdemKey or because the rate limit refused it.
	ClaimNone ClaimState = iota
	// ClaimAcquired: the caller holds the claim and must forward the
	// event, then Complete or Release.
	ClaimAcquired
	// ClaimInFlight: another delivery of the same event holds the claim;
	// the caller should answer 409 with Result.RetryAfter.
	ClaimInFlight
	// ClaimCompleted: the event was already delivered; Result.Stored is
	// the answer to replay.
	ClaimCompleted
	// ClaimConflict: the key is known with a different fingerprint, so
	// the sender reused an event id for another payload.
	ClaimConflict
)

// String names the state for logs and test failures.
func (s ClaimState) String() string {
	switch s {
	case ClaimNone:
		return "none"
	case ClaimAcquired:
		return "acquired"
	case ClaimInFlight:
		return "in_flight"
	case ClaimCompleted:
		return "completed"
	case ClaimConflict:
		return "conflict"
	default:
		return "unknown"
	}
}

// Response is an upstream answer kept for replay. The handler chooses
// which headers are worth keeping (Content-Type, not Date) and how much
// body; the store keeps the bytes exactly (an empty Header or Body may
// come back nil).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Clone returns a deep copy, so that a stored answer cannot be changed
// through a slice the caller still holds.
func (r Response) Clone() Response {
	c := Response{Status: r.Status, Header: r.Header.Clone()}
	if r.Body != nil {
		c.Body = append([]byte{}, r.Body...)
	}
	return c
}

// Result is the outcome of Admit.
type Result struct {
	// Rate is the rate-limit decision; Rate.Limit is 0 when the
	// admission had no rate limit (and Rate.Allowed is then true).
	Rate Decision
	// State is the idempotency outcome; ClaimNone when no claim was
	// attempted.
	State ClaimState
	// Stored is the answer to replay when State is ClaimCompleted.
	Stored *Response
	// RetryAfter is what is left of the holder's lease when State is
	// ClaimInFlight: the earliest a retry could be let through.
	RetryAfter time.Duration
}

// validateFinish checks the arguments shared by Complete and Release.
func validateFinish(source, idemKey, owner string) error {
	switch {
	case source == "":
		return errors.New("source must not be empty")
	case idemKey == "":
		return errors.New("idempotency key must not be empty")
	case owner == "":
		return errors.New("owner must not be empty")
	}
	return nil
}

// ValidateComplete checks Complete's arguments, so both stores refuse
// the same inputs.
func ValidateComplete(source, idemKey, owner string, resp Response, retention time.Duration) error {
	if err := validateFinish(source, idemKey, owner); err != nil {
		return err
	}
	if resp.Status < 100 || resp.Status > 999 {
		return errors.New("response status must be a three-digit code")
	}
	if retention < time.Millisecond {
		return errors.New("retention must be at least 1ms")
	}
	return nil
}

// ValidateExtend checks Extend's arguments.
func ValidateExtend(source, idemKey, owner string, lease time.Duration) error {
	if err := validateFinish(source, idemKey, owner); err != nil {
		return err
	}
	if lease < time.Millisecond {
		return errors.New("lease must be at least 1ms")
	}
	return nil
}

// ValidateRelease checks Release's arguments.
func ValidateRelease(source, idemKey, owner string) error {
	return validateFinish(source, idemKey, owner)
}
