package gatewaytest

import (
	"crypto/sha256"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// App is the application a queue delivers to: a real HTTP server that
// records every attempt (delivery id, attempt number, event id and type,
// a hash of the body, what it answered and when, by its own clock,
// which every gateway process of a test shares), fails a deterministic
// share of attempts, and can be taken down and brought back on its port.
type App struct {
	// URL is http://127.0.0.1:<port>, for a queue's `to`.
	URL string

	cfg  AppConfig
	addr string

	mu          sync.Mutex
	srv         *http.Server
	attempts    []AppAttempt
	inFlight    int
	maxInFlight int
	ok          int // attempts answered 2xx
}

// AppConfig is how an App answers.
type AppConfig struct {
	// FailOneIn answers 500 to about one attempt in FailOneIn, chosen by
	// a hash of the delivery id and the attempt number, so that a given
	// attempt fails the same way in every run and every process. 0:
	// never fail.
	FailOneIn int
	// FailUpTo, with FailOneIn, lets attempts numbered above it always
	// succeed, so that no event runs out of attempts by bad luck. 0: no
	// bound.
	FailUpTo int
	// Delay holds every answer this long, so that attempts overlap.
	Delay time.Duration
}

// AppAttempt is one request as the app saw it.
type AppAttempt struct {
	DeliveryID string // Webhook-Gateway-Delivery-Id
	N          int    // Webhook-Gateway-Attempt; 0 when absent or not a number
	EventID    string // Webhook-Gateway-Event-Id
	EventType  string // Webhook-Gateway-Event-Type
	ReplayOf   string // Webhook-Gateway-Replay-Of
	Idempotent string // Idempotency-Key
	Method     string
	Path       string
	BodyHash   [sha256.Size]byte
	// Status is what the app answered; 0 when the answer could not be
	// written (the app was taken down under it).
	Status int
	// Start and End are by the app's clock: the request's arrival and
	// the answer's departure.
	Start, End time.Time
}

// OK reports whether the app answered the attempt with a 2xx.
func (a AppAttempt) OK() bool { return a.Status >= 200 && a.Status < 300 }

// NewApp starts an App on a free port of 127.0.0.1; it is closed when
// the test ends.
func NewApp(t testing.TB, cfg AppConfig) *App {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("app: listening: %v", err)
	}
	a := &App{cfg: cfg, addr: l.Addr().String()}
	a.URL = "http://" + a.addr
	a.serve(l)
	t.Cleanup(a.Down)
	return a
}

func (a *App) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(a.handle), ReadHeaderTimeout: 10 * time.Second}
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Fails reports whether the app answers 500 to attempt n of delivery id.
func (a *App) Fails(id string, n int) bool {
	if a.cfg.FailOneIn <= 0 || (a.cfg.FailUpTo > 0 && n > a.cfg.FailUpTo) {
		return false
	}
	h := fnv.New64a()
	io.WriteString(h, id+"/"+strconv.Itoa(n))
	return h.Sum64()%uint64(a.cfg.FailOneIn) == 0
}

func (a *App) handle(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(r.Body)
	at := AppAttempt{
		DeliveryID: r.Header.Get("Webhook-Gateway-Delivery-Id"),
		EventID:    r.Header.Get("Webhook-Gateway-Event-Id"),
		EventType:  r.Header.Get("Webhook-Gateway-Event-Type"),
		ReplayOf:   r.Header.Get("Webhook-Gateway-Replay-Of"),
		Idempotent: r.Header.Get("Idempotency-Key"),
		Method:     r.Method,
		Path:       r.URL.Path,
		BodyHash:   sha256.Sum256(body),
		Start:      start,
	}
	at.N, _ = strconv.Atoi(r.Header.Get("Webhook-Gateway-Attempt"))
	a.mu.Lock()
	a.inFlight++
	a.maxInFlight = max(a.maxInFlight, a.inFlight)
	a.mu.Unlock()

	if a.cfg.Delay > 0 {
		time.Sleep(a.cfg.Delay)
	}
	at.Status = http.StatusOK
	if err != nil || a.Fails(at.DeliveryID, at.N) {
		at.Status = http.StatusInternalServerError
	}
	w.WriteHeader(at.Status)
	// Only an answer written to the connection counts as given: one
	// that Down cut off never reached the gateway, and one that was
	// written did, even if Down closes the connection right after.
	if err := http.NewResponseController(w).Flush(); err != nil {
		at.Status = 0
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight--
	at.End = time.Now()
	a.attempts = append(a.attempts, at)
	if at.OK() {
		a.ok++
	}
}

// Down closes the listener and every connection, as an app that crashed
// or is being redeployed: attempts get connection errors until Up.
func (a *App) Down() {
	a.mu.Lock()
	srv := a.srv
	a.srv = nil
	a.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens on the app's port again after Down.
func (a *App) Up(t testing.TB) {
	t.Helper()
	var l net.Listener
	var err error
	// The port was the app's a moment ago; retry briefly in case the
	// kernel has not let go of it yet.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if l, err = net.Listen("tcp", a.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("app: listening again on %s: %v", a.addr, err)
	}
	a.serve(l)
}

// Attempts returns a copy of every attempt answered so far, in the order
// the answers went out.
func (a *App) Attempts() []AppAttempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AppAttempt(nil), a.attempts...)
}

// MaxInFlight is the most requests the app has held at once.
func (a *App) MaxInFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxInFlight
}

// OKCount is how many attempts the app answered 2xx, a cheap figure to
// poll while a large backlog drains.
func (a *App) OKCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok
}

// Delivered groups the attempts the app answered 2xx by event id.
func (a *App) Delivered() map[string][]AppAttempt {
	return a.delivered(func(at AppAttempt) string { return at.EventID })
}

func (a *App) delivered(key func(AppAttempt) string) map[string][]AppAttempt {
	out := make(map[string][]AppAttempt)
	for _, at := range a.Attempts() {
		if at.OK() {
			out[key(at)] = append(out[key(at)], at)
		}
	}
	return out
}

// WaitDelivered polls until every one of the event ids has had a 2xx
// from the app, or timeout passes; it returns the ids still missing.
func (a *App) WaitDelivered(ids []string, timeout time.Duration) []string {
	return a.wait(ids, func(at AppAttempt) string { return at.EventID }, timeout)
}

// WaitDeliveryIDs is WaitDelivered for delivery ids.
func (a *App) WaitDeliveryIDs(ids []string, timeout time.Duration) []string {
	return a.wait(ids, func(at AppAttempt) string { return at.DeliveryID }, timeout)
}

func (a *App) wait(ids []string, key func(AppAttempt) string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		got := a.delivered(key)
		var missing []string
		for _, id := range ids {
			if len(got[id]) == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(100 * time.Millisecond)
	}
}
