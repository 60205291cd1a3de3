package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// op is one step of a claim scenario.
type op struct {
	do    string // "admit", "complete", "release", "extend" or "sleep"
	owner string
	fp    string        // admit: fingerprint; "" means "f"
	lease time.Duration // admit, extend: lease; 0 means defaultLease
	pin   time.Duration // release: how long the fingerprint is kept
	sleep time.Duration
	want  store.ClaimState // admit
	err   error            // complete, release, extend
}

const shortLease = 200 * time.Millisecond

var pastLease = shortLease + 150*time.Millisecond

// renewedLease is long enough that the extend right after the admit
// lands within it even on a stalled machine, and short enough to wait out.
const renewedLease = 3 * shortLease

func testClaims(t *testing.T, open Open) {
	tests := []struct {
		name string
		ops  []op
	}{
		{"claim then in flight", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "admit", owner: "B", want: store.ClaimInFlight},
		}},
		{"completed answer is replayed", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "admit", owner: "B", want: store.ClaimInFlight},
			{do: "complete", owner: "A"},
			{do: "admit", owner: "C", want: store.ClaimCompleted},
			{do: "admit", owner: "D", want: store.ClaimCompleted},
		}},
		{"resend by the owner is acquired again", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "admit", owner: "B", want: store.ClaimInFlight},
		}},
		{"other payload in flight is a conflict", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "admit", owner: "B", fp: "g", want: store.ClaimConflict},
		}},
		{"other payload after completion is a conflict", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "complete", owner: "A"},
			{do: "admit", owner: "B", fp: "g", want: store.ClaimConflict},
		}},
		{"release by another owner is a no-op", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "B"},
			{do: "admit", owner: "C", want: store.ClaimInFlight},
		}},
		{"release by the owner lets a new claim in", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "A"},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
			{do: "admit", owner: "C", want: store.ClaimInFlight},
		}},
		{"release resent is harmless", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "A"},
			{do: "release", owner: "A"},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
		}},
		{"late release keeps the completed answer", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "complete", owner: "A"},
			{do: "release", owner: "A"},
			{do: "admit", owner: "B", want: store.ClaimCompleted},
		}},
		{"complete by another owner is refused", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "complete", owner: "B", err: store.ErrClaimLost},
			{do: "admit", owner: "C", want: store.ClaimInFlight},
		}},
		{"complete resent by the owner succeeds", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "complete", owner: "A"},
			{do: "complete", owner: "A"},
			{do: "admit", owner: "B", want: store.ClaimCompleted},
		}},
		{"lease expiry lets a new claim in", []op{
			{do: "admit", owner: "A", lease: shortLease, want: store.ClaimAcquired},
			{do: "sleep", sleep: pastLease},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
		}},
		{"complete after lease expiry is refused", []op{
			{do: "admit", owner: "A", lease: shortLease, want: store.ClaimAcquired},
			{do: "sleep", sleep: pastLease},
			{do: "complete", owner: "A", err: store.ErrClaimLost},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
		}},
		{"late release does not delete a newer claim", []op{
			{do: "admit", owner: "A", lease: shortLease, want: store.ClaimAcquired},
			{do: "sleep", sleep: pastLease},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
			{do: "release", owner: "A"},
			{do: "admit", owner: "C", want: store.ClaimInFlight},
		}},
		{"extend by the owner outlives the lease", []op{
			{do: "admit", owner: "A", lease: renewedLease, want: store.ClaimAcquired},
			{do: "extend", owner: "A"},
			{do: "sleep", sleep: renewedLease + 150*time.Millisecond},
			{do: "admit", owner: "B", want: store.ClaimInFlight},
		}},
		{"extend sets the expiry from now", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "extend", owner: "A", lease: shortLease},
			{do: "sleep", sleep: pastLease},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
		}},
		{"extend by another owner is refused", []op{
			{do: "admit", owner: "A", lease: shortLease, want: store.ClaimAcquired},
			{do: "extend", owner: "B", err: store.ErrClaimLost},
			{do: "sleep", sleep: pastLease},
			{do: "admit", owner: "C", want: store.ClaimAcquired},
		}},
		{"extend after complete keeps the answer", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "complete", owner: "A"},
			{do: "extend", owner: "A", lease: shortLease, err: store.ErrClaimLost},
			{do: "sleep", sleep: pastLease},
			{do: "admit", owner: "B", want: store.ClaimCompleted},
		}},
		{"extend after release brings nothing back", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "A"},
			{do: "extend", owner: "A", err: store.ErrClaimLost},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
		}},
		{"a pinned release takes back only the same payload", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "A", pin: time.Hour},
			{do: "admit", owner: "B", fp: "g", want: store.ClaimConflict},
			{do: "admit", owner: "C", want: store.ClaimAcquired},
			{do: "admit", owner: "D", want: store.ClaimInFlight},
			{do: "complete", owner: "C"},
			{do: "admit", owner: "E", want: store.ClaimCompleted},
		}},
		{"a pinned release by another owner is a no-op", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "B", pin: time.Hour},
			{do: "admit", owner: "C", want: store.ClaimInFlight},
		}},
		{"a pin expires", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "A", pin: shortLease},
			{do: "sleep", sleep: pastLease},
			{do: "admit", owner: "B", fp: "g", want: store.ClaimAcquired},
		}},
		{"a pinned claim taken again is released again", []op{
			{do: "admit", owner: "A", want: store.ClaimAcquired},
			{do: "release", owner: "A", pin: time.Hour},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
			{do: "release", owner: "B", pin: time.Hour},
			{do: "admit", owner: "C", fp: "g", want: store.ClaimConflict},
			{do: "admit", owner: "D", want: store.ClaimAcquired},
		}},
		{"extend after lease expiry is refused", []op{
			{do: "admit", owner: "A", lease: shortLease, want: store.ClaimAcquired},
			{do: "sleep", sleep: pastLease},
			{do: "extend", owner: "A", err: store.ErrClaimLost},
			{do: "admit", owner: "B", want: store.ClaimAcquired},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			for i, o := range tt.ops {
				runOp(t, s, i, o)
			}
		})
	}
}

func runOp(t *testing.T, s store.Store, i int, o op) {
	t.Helper()
	ctx := context.Background()
	switch o.do {
	case "admit":
		checkAdmit(t, s, i, o)
	case "complete":
		if err := s.Complete(ctx, t.Name(), "event", o.owner, replayed, time.Hour); !errors.Is(err, o.err) {
			t.Fatalf("step %d: Complete by %s: err = %v, want %v", i, o.owner, err, o.err)
		}
	case "release":
		if err := s.Release(ctx, t.Name(), "event", o.owner, o.pin); !errors.Is(err, o.err) {
			t.Fatalf("step %d: Release by %s: err = %v, want %v", i, o.owner, err, o.err)
		}
	case "extend":
		lease := o.lease
		if lease == 0 {
			lease = defaultLease
		}
		if err := s.Extend(ctx, t.Name(), "event", o.owner, lease); !errors.Is(err, o.err) {
			t.Fatalf("step %d: Extend by %s: err = %v, want %v", i, o.owner, err, o.err)
		}
	case "sleep":
		time.Sleep(o.sleep)
	default:
		t.Fatalf("step %d: unknown op %q", i, o.do)
	}
}

func checkAdmit(t *testing.T, s store.Store, i int, o op) {
	t.Helper()
	a := store.Admission{Source: t.Name(), IdemKey: "event", Fingerprint: o.fp, Owner: o.owner, Lease: o.lease}
	if a.Fingerprint == "" {
		a.Fingerprint = "f"
	}
	if a.Lease == 0 {
		a.Lease = defaultLease
	}
	res := admit(t, s, a)
	if res.State != o.want {
		t.Fatalf("step %d: Admit by %s: state %v, want %v", i, o.owner, res.State, o.want)
	}
	if !res.Rate.Allowed {
		t.Errorf("step %d: no limit configured but refused", i)
	}
	switch o.want {
	case store.ClaimCompleted:
		if res.Stored == nil || !reflect.DeepEqual(*res.Stored, replayed) {
			t.Errorf("step %d: replayed %+v, want %+v", i, res.Stored, replayed)
		}
	case store.ClaimInFlight:
		if res.RetryAfter <= 0 || res.RetryAfter > defaultLease {
			t.Errorf("step %d: in flight, retry after %v, want in (0, %v]", i, res.RetryAfter, defaultLease)
		}
	default:
		if res.Stored != nil || res.RetryAfter != 0 {
			t.Errorf("step %d: state %v with stored %+v, retry after %v", i, res.State, res.Stored, res.RetryAfter)
		}
	}
}

// testConcurrentClaims sends n deliveries of one event at once, from two
// clients: exactly one may reach the upstream.
func testConcurrentClaims(t *testing.T, open Open, n int) {
	clients := []store.Store{open(t), open(t)}
	start := make(chan struct{})
	states := make([]store.ClaimState, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			a := store.Admission{
				Source: t.Name(), IdemKey: "event", Fingerprint: "f",
				Owner: fmt.Sprintf("owner-%d", i), Lease: defaultLease,
			}
			res, err := clients[i%2].Admit(context.Background(), a)
			if err != nil {
				t.Errorf("Admit %d: %v", i, err)
			}
			states[i] = res.State
		})
	}
	close(start)
	wg.Wait()
	count := map[store.ClaimState]int{}
	for _, s := range states {
		count[s]++
	}
	if count[store.ClaimAcquired] != 1 || count[store.ClaimInFlight] != n-1 {
		t.Errorf("states %v, want 1 acquired and %d in flight", count, n-1)
	}
}
