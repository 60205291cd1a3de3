// Package storetest is the behaviour every store.Store must show. The
// memory and Redis stores both run it, which is what lets the gateway
// switch between them without changing what senders observe.
package storetest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// Open returns a store on the backend under test. Calling it again must
// return another handle (another client, for Redis) on the same shared
// state, so that tests can act as several gateway instances.
type Open func(t *testing.T) store.Store

// Run runs the conformance suite. Subtests key their state by their own
// name, so one backend can serve the whole run.
func Run(t *testing.T, open Open) {
	t.Run("validation", func(t *testing.T) { testValidation(t, open) })
	t.Run("no_rate_no_idempotency", func(t *testing.T) { testNoop(t, open) })
	t.Run("rate", func(t *testing.T) { testRate(t, open) })
	t.Run("rate_limited_makes_no_claim", func(t *testing.T) { testRateLimitedNoClaim(t, open) })
	t.Run("resend_not_charged_twice", func(t *testing.T) { testResendNotCharged(t, open) })
	t.Run("duplicates_not_charged", func(t *testing.T) { testDuplicatesNotCharged(t, open) })
	t.Run("claims", func(t *testing.T) { testClaims(t, open) })
	t.Run("concurrent_claims", func(t *testing.T) { testConcurrentClaims(t, open, 200) })
	t.Run("rate_accuracy_two_clients", func(t *testing.T) { testRateAccuracy(t, open) })
}

const defaultLease = 5 * time.Second

var replayed = store.Response{
	Status: http.StatusAccepted,
	Header: http.Header{
		"Content-Type": {"application/json"},
		"X-Multi":      {"a", "b", ""},
	},
	// Not UTF-8, with NULs and CRLFs: the replay must be byte-exact.
	Body: []byte("{\"ok\":true}\x00\xff\xfe\r\n\r\nend"),
}

func testValidation(t *testing.T, open Open) {
	s := open(t)
	ctx := context.Background()
	good := store.Admission{
		Source: t.Name(), RateKey: "r", Limit: store.Limit{Count: 1, Period: time.Second},
		IdemKey: "i", Owner: "o", Lease: time.Second,
	}
	tests := []struct {
		name   string
		change func(a *store.Admission)
	}{
		{"empty source", func(a *store.Admission) { a.Source = "" }},
		{"zero count", func(a *store.Admission) { a.Limit.Count = 0 }},
		{"zero period", func(a *store.Admission) { a.Limit.Period = 0 }},
		{"negative burst", func(a *store.Admission) { a.Limit.Burst = -1 }},
		{"faster than a microsecond", func(a *store.Admission) { a.Limit = store.Limit{Count: 2e6, Period: time.Second} }},
		{"window too large", func(a *store.Admission) { a.Limit = store.Limit{Count: 1, Period: 1e6 * time.Hour, Burst: 1e6} }},
		{"empty owner", func(a *store.Admission) { a.Owner = "" }},
		{"zero lease", func(a *store.Admission) { a.Lease = 0 }},
	}
	if _, err := s.Admit(ctx, good); err != nil {
		t.Fatalf("valid admission refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good
			tt.change(&a)
			if _, err := s.Admit(ctx, a); err == nil {
				t.Errorf("Admit accepted an invalid admission: %+v", a)
			}
		})
	}
	t.Run("complete zero retention", func(t *testing.T) {
		if err := s.Complete(ctx, t.Name(), "i", "o", replayed, 0); err == nil || errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Complete with zero retention: err = %v, want a validation error", err)
		}
	})
	t.Run("complete bad status", func(t *testing.T) {
		if err := s.Complete(ctx, t.Name(), "i", "o", store.Response{}, time.Hour); err == nil || errors.Is(err, store.ErrClaimLost) {
			t.Errorf("Complete with status 0: err = %v, want a validation error", err)
		}
	})
	t.Run("release empty owner", func(t *testing.T) {
		if err := s.Release(ctx, t.Name(), "i", "", 0); err == nil {
			t.Error("Release with empty owner accepted")
		}
	})
}

func testNoop(t *testing.T, open Open) {
	res, err := open(t).Admit(context.Background(), store.Admission{Source: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Rate.Allowed || res.Rate.Limit != 0 || res.State != store.ClaimNone || res.Stored != nil {
		t.Errorf("Admit with neither limit nor key = %+v, want allowed, no limit, no claim", res)
	}
}

// admit runs Admit and fails the test on error.
func admit(t *testing.T, s store.Store, a store.Admission) store.Result {
	t.Helper()
	res, err := s.Admit(context.Background(), a)
	if err != nil {
		t.Fatalf("Admit(%+v): %v", a, err)
	}
	return res
}
