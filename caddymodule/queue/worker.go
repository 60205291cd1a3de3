package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Limiter bounds the attempts per period to a queue's To, across every
// instance sharing the store.
type Limiter interface {
	// Allow takes one attempt's share of the rate. Without one, ok is
	// false and retryAfter is when there will be one.
	Allow(ctx context.Context) (ok bool, retryAfter time.Duration, err error)
}

// Observer is told of every attempt, for metrics. Deferred leases (rate,
// concurrency, shutting down) are not attempts and are not told.
type Observer interface {
	// Attempted: attempt a led to outcome (a budget spent by a failed
	// attempt is Dead).
	Attempted(queue string, a Attempt, outcome Outcome)
	// Delivered: the app answered 2xx, sinceIntake after the event was
	// accepted.
	Delivered(queue string, sinceIntake time.Duration)
}

// PoolOptions are what a Pool works with.
type PoolOptions struct {
	Backend Backend
	Spec    *Spec
	// Config is the queue's provisioned, valid Config.
	Config *Config
	// Limiter is the queue's rate; nil for none.
	Limiter Limiter
	// Observer may be nil.
	Observer Observer
	Logger   *zap.Logger
	// Consumer names this process to the backend: unique per process
	// (ConsumerName makes one). Default: ConsumerName().
	Consumer string
}

// Timing of the pool's loop and its calls to the backend.
const (
	// receiveWait is how long one Receive waits for an event; Stop
	// waits at most that long for the loop.
	receiveWait = time.Second
	// backendCall bounds one call to the backend.
	backendCall = 5 * time.Second
	// firstBackoff and lastBackoff bound the waits between failing
	// calls to the backend: never a hot loop, never long after it is
	// back.
	firstBackoff = 100 * time.Millisecond
	lastBackoff  = 5 * time.Second
	// busyDefer and busyJitter: a lease that found every concurrency
	// slot taken is due again after busyDefer plus up to busyJitter,
	// so that the waiting ones do not all come back at once.
	busyDefer  = 50 * time.Millisecond
	busyJitter = 150 * time.Millisecond
	// failedDefer: a lease whose admission could not be checked (the
	// store failed) is due again after this.
	failedDefer = time.Second
)

// Pool is the workers of one queue in one process. It receives leases
// from the backend and makes their attempts, at most Config.Concurrency
// at a time here, and as many across every process that shares the
// backend (AcquireSlot), within the Limiter's rate.
type Pool struct {
	backend   Backend
	spec      *Spec
	config    *Config
	limiter   Limiter
	observer  Observer
	logger    *zap.Logger
	consumer  string
	policy    *Policy
	deliverer *deliverer

	// slots holds a token per lease received and not yet settled.
	slots chan struct{}

	mu       sync.Mutex
	started  bool
	stopping bool
	// stop is closed when Stop begins: nothing more is received, and a
	// lease not yet attempted is handed back.
	stop chan struct{}
	// abort is cancelled when Stop's ctx ends first: attempts in flight
	// are cancelled and their leases handed back.
	abort     context.Context
	cancel    context.CancelFunc
	loopDone  chan struct{}
	handling  sync.WaitGroup
	admitting atomic.Bool // admission is failing: logged once per change
}

// NewPool makes the pool of a queue; Start starts it.
func NewPool(o PoolOptions) (*Pool, error) {
	if o.Backend == nil || o.Spec == nil || o.Config == nil {
		return nil, errors.New("queue: pool: a backend, a spec and a config are required")
	}
	d, err := newDeliverer(o.Config)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Consumer == "" {
		o.Consumer = ConsumerName()
	}
	abort, cancel := context.WithCancel(context.Background())
	return &Pool{
		backend: o.Backend, spec: o.Spec, config: o.Config,
		limiter: o.Limiter, observer: o.Observer,
		logger:   o.Logger.With(zap.String("queue", o.Spec.Name)),
		consumer: o.Consumer,
		policy:   NewPolicy(o.Config), deliverer: d,
		slots: make(chan struct{}, o.Config.Concurrency),
		stop:  make(chan struct{}), abort: abort, cancel: cancel,
		loopDone: make(chan struct{}),
	}, nil
}

// ConsumerName is a name for this process, unique among those sharing a
// backend: the host, the process id and a random part (a restarted
// process must not inherit its predecessor's leases).
func ConsumerName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "gateway"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Start starts receiving. It does nothing after Start or Stop.
func (p *Pool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopping {
		return
	}
	p.started = true
	go p.run()
}

// Stop stops receiving and waits for the attempts in flight, which the
// queue's timeout bounds; leases received but not yet attempted are
// handed back, due at once. When ctx ends first, the attempts in flight
// are cancelled and their leases handed back too, and Stop returns
// ctx's error: an attempt cancelled after the app received it reaches
// the app again, with the same delivery id. Stop is safe to call more
// than once, and before Start.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	started := p.started
	if !p.stopping {
		p.stopping = true
		close(p.stop)
	}
	p.mu.Unlock()
	defer p.deliverer.close()
	defer p.cancel()
	if !started {
		return nil
	}
	done := make(chan struct{})
	go func() {
		<-p.loopDone
		p.handling.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		p.cancel()
		// Bounded: a cancelled attempt hands its lease back with one
		// call to the backend, itself bounded by backendCall.
		<-done
		return ctx.Err()
	}
}

func (p *Pool) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// run receives leases and starts their attempts until Stop.
func (p *Pool) run() {
	defer close(p.loopDone)
	var failing backoff
	for {
		n := p.reserve()
		if n == 0 {
			return
		}
		leases, err := p.backend.Receive(p.abort, p.spec, p.consumer, n, receiveWait)
		for range n - len(leases) {
			<-p.slots
		}
		for _, l := range leases {
			p.handling.Add(1)
			go p.handle(l)
		}
		if err == nil {
			if failing.reset() {
				p.logger.Info("receiving from the queue again")
			}
			continue
		}
		if p.stopped() {
			return
		}
		if failing.first() {
			p.logger.Error("receiving from the queue failed; retrying with backoff", zap.Error(err))
		}
		if !p.sleep(failing.next(), p.stop) {
			return
		}
	}
}

// reserve waits for a free local slot and takes every free one; 0 once
// the pool stops.
func (p *Pool) reserve() int {
	select {
	case p.slots <- struct{}{}:
	case <-p.stop:
		return 0
	}
	if p.stopped() {
		<-p.slots
		return 0
	}
	n := 1
	for n < cap(p.slots) {
		select {
		case p.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// sleep waits d; false when done closes first.
func (p *Pool) sleep(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// handle takes a lease from admission to settlement.
func (p *Pool) handle(l *Lease) {
	defer p.handling.Done()
	defer func() { <-p.slots }()
	if p.stopped() {
		p.handBack(l, "stopping")
		return
	}
	token := p.consumer + "/" + l.Event.ID
	if ok, wait := p.admit(token); !ok {
		if p.abort.Err() != nil {
			p.handBack(l, "stopping")
		} else {
			p.settle(l, Settlement{Outcome: Defer, At: time.Now().Add(wait)})
		}
		return
	}
	defer p.releaseSlot(token)
	if p.stopped() {
		p.handBack(l, "stopping")
		return
	}
	a, retryAfter := p.deliverer.attempt(p.abort, l.Event)
	if a.Status == 0 && p.abort.Err() != nil {
		p.handBack(l, "attempt cancelled by shutdown")
		return
	}
	p.finish(l, a, retryAfter)
}

// admit takes a concurrency slot shared with the other processes, then
// a share of the rate. Without either, the lease is deferred by wait,
// and no attempt is spent.
func (p *Pool) admit(token string) (ok bool, wait time.Duration) {
	ctx, cancel := context.WithTimeout(p.abort, backendCall)
	defer cancel()
	got, err := p.backend.AcquireSlot(ctx, p.spec, token, p.config.Concurrency, p.spec.ReclaimAfter)
	if p.admissionFailed("concurrency slot", err) {
		return false, failedDefer
	}
	if !got {
		return false, busyDefer + mathrand.N(busyJitter)
	}
	if p.limiter == nil {
		return true, 0
	}
	allowed, retryAfter, err := p.limiter.Allow(ctx)
	if p.admissionFailed("rate", err) {
		// The rate protects the app: when it cannot be checked, the
		// event waits in the queue rather than go unpaced.
		p.releaseSlot(token)
		return false, failedDefer
	}
	if !allowed {
		p.releaseSlot(token)
		return false, max(retryAfter, time.Millisecond)
	}
	return true, 0
}

// admissionFailed notes err (nil: success) of an admission check, and
// logs when checks start or stop failing, not for every lease.
func (p *Pool) admissionFailed(what string, err error) bool {
	if err == nil {
		if p.admitting.CompareAndSwap(true, false) {
			p.logger.Info("admission checks work again")
		}
		return false
	}
	if p.abort.Err() != nil {
		return true // cancelled by Stop, not failing
	}
	if p.admitting.CompareAndSwap(false, true) {
		p.logger.Error("checking the "+what+" failed; leases are deferred until it works", zap.Error(err))
	}
	return true
}

func (p *Pool) releaseSlot(token string) {
	ctx, cancel := context.WithTimeout(context.Background(), backendCall)
	defer cancel()
	if err := p.backend.ReleaseSlot(ctx, p.spec, token); err != nil {
		p.logger.Warn("releasing a concurrency slot failed; it frees itself after reclaim_after",
			zap.Duration("reclaim_after", p.spec.ReclaimAfter), zap.Error(err))
	}
}

// handBack defers a lease that was not attempted, due at once.
func (p *Pool) handBack(l *Lease, why string) {
	if err := p.settle(l, Settlement{Outcome: Defer, At: time.Now()}); err == nil {
		p.logger.Debug("lease handed back", zap.String("delivery_id", l.Event.ID), zap.String("reason", why))
	}
}

// finish settles an attempt, logs it and tells the observer.
func (p *Pool) finish(l *Lease, a Attempt, retryAfter string) {
	ev := l.Event
	outcome, reason := p.policy.Classify(a.Status)
	if reason != "" && a.Error == "" {
		a.Error = reason
	}
	s := Settlement{Outcome: outcome, Attempt: &a}
	a.Outcome = outcome
	if outcome == Retry {
		now := time.Now()
		s.At = now.Add(p.policy.Delay(a.N, retryAfter, now))
		if ev.Budget > 0 && a.N >= ev.Budget {
			// The backend ends it, its budget spent.
			a.Outcome = Dead
			if a.Error == "" {
				a.Error = "no attempts left"
			}
		}
	}
	err := p.settle(l, s)
	p.logAttempt(ev, a, s.At, err)
	if p.observer != nil {
		p.observer.Attempted(p.spec.Name, a, a.Outcome)
		if a.Outcome == Delivered {
			p.observer.Delivered(p.spec.Name, time.Since(ev.ReceivedAt))
		}
	}
}

// settle ends a lease, retrying a failing backend with backoff until the
// lease would have been reclaimed anyway, or the pool aborts. A lease
// that was lost is not retried: another consumer has the event.
func (p *Pool) settle(l *Lease, s Settlement) error {
	var failing backoff
	until := time.Now().Add(p.spec.ReclaimAfter)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), backendCall)
		err := p.backend.Settle(ctx, p.spec, l, s)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrLeaseLost):
			p.logger.Warn("lease lost: another consumer took the event over and attempts it",
				zap.String("delivery_id", l.Event.ID), zap.String("outcome", string(s.Outcome)))
			return err
		case time.Now().After(until) || !p.sleep(failing.next(), p.abort.Done()):
			p.logger.Error("settling a lease failed; the event is attempted again once reclaimed",
				zap.String("delivery_id", l.Event.ID), zap.String("outcome", string(s.Outcome)),
				zap.Duration("reclaim_after", p.spec.ReclaimAfter), zap.Error(err))
			return err
		}
	}
}

// logAttempt writes the attempt's line: what it was and led to, never a
// body or a header's value.
func (p *Pool) logAttempt(ev *Event, a Attempt, next time.Time, settleErr error) {
	fields := []zap.Field{
		zap.String("delivery_id", ev.ID),
		zap.String("event_id", ev.EventID),
		zap.String("event_type", ev.EventType),
		zap.String("provider", ev.Provider),
		zap.Int("attempt", a.N),
		zap.Int("status", a.Status),
		zap.Duration("duration", a.Duration),
		zap.String("outcome", string(a.Outcome)),
	}
	if a.Outcome == Retry {
		fields = append(fields, zap.Time("next_at", next))
	}
	if a.Error != "" {
		fields = append(fields, zap.String("error", a.Error))
	}
	if settleErr != nil {
		fields = append(fields, zap.NamedError("settle_error", settleErr))
	}
	switch a.Outcome {
	case Delivered:
		p.logger.Info("attempt", fields...)
	case Dead:
		p.logger.Error("attempt", fields...)
	default:
		p.logger.Warn("attempt", fields...)
	}
}

// backoff is the growing wait between calls to a failing backend.
type backoff struct{ delay time.Duration }

// first reports whether nothing failed before: the failure to log.
func (b *backoff) first() bool { return b.delay == 0 }

func (b *backoff) next() time.Duration {
	b.delay = min(max(2*b.delay, firstBackoff), lastBackoff)
	return b.delay
}

// reset reports whether calls were failing.
func (b *backoff) reset() bool {
	was := b.delay != 0
	b.delay = 0
	return was
}
