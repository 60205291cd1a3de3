package gatewaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// Target is a gateway a Sender delivers to: a *Gateway or an *Instance.
type Target interface{ target() *endpoint }

func (e *endpoint) target() *endpoint { return e }

// Sender is a provider: it signs deliveries as Stripe does and posts
// them over HTTPS to gateways, retrying an event that got no 2xx (a
// connection error, a 5xx, a 409 while the event is in flight) on the
// next target, as a provider behind a load balancer would, until it is
// accepted or RetryFor has passed.
type Sender struct {
	Targets []Target
	// Path is the route of the Stripe handler, such as /stripe.
	Path string
	// Secret is the handler's signing secret.
	Secret string
	// Concurrency is how many events are in flight at once (Send).
	Concurrency int
	// RetryFor bounds the retries of one event; 0 sends it once.
	RetryFor time.Duration
	// RetryEvery is the pause between two tries; default 100ms.
	RetryEvery time.Duration
	// Every paces Send: one event starts at most every Every, so that a
	// run lasts long enough for a test to break things while it goes
	// on. 0: as fast as Concurrency allows.
	Every time.Duration

	accepted atomic.Int64
}

// Sent is what became of one event at the provider's end.
type Sent struct {
	EventID string
	Body    []byte
	// Accepted is true once a gateway answered 2xx; Status is the last
	// answer's status (0 for a connection error) and Err its error.
	Accepted bool
	Status   int
	Err      error
	// DeliveryID is the delivery id the queue named in its answer's
	// JSON body; empty for an answer without one.
	DeliveryID string
	// Tries counts the requests made; AcceptedAt is when the 2xx came.
	Tries      int
	AcceptedAt time.Time
}

// StripeEvent is the body of a Stripe event with the given id and type.
func StripeEvent(id, typ string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "data": map[string]any{"object": map[string]string{"id": id + "_obj"}}})
	return b
}

// Accepted counts the events accepted so far, for a test that acts
// when a share of its events is in.
func (s *Sender) Accepted() int { return int(s.accepted.Load()) }

// Send delivers every body, Concurrency at a time, the i-th starting on
// target i modulo the number of targets, and returns what became of
// each, in the order of bodies.
func (s *Sender) Send(bodies [][]byte) []Sent {
	out := make([]Sent, len(bodies))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(s.Concurrency, 1) {
		wg.Go(func() {
			for i := range work {
				out[i] = s.SendOne(bodies[i], i)
			}
		})
	}
	for i := range bodies {
		if i > 0 && s.Every > 0 {
			time.Sleep(s.Every)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return out
}

// SendOne delivers one body, starting on target first modulo the
// number of targets. Safe in goroutines: it touches no testing.T.
func (s *Sender) SendOne(body []byte, first int) Sent {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &ev)
	sent := Sent{EventID: ev.ID, Body: body}
	every := s.RetryEvery
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	deadline := time.Now().Add(s.RetryFor)
	for try := first; ; try++ {
		sent.Tries++
		sent.Status, sent.DeliveryID, sent.Err = s.post(s.Targets[try%len(s.Targets)].target(), body)
		if sent.Err == nil && sent.Status >= 200 && sent.Status < 300 {
			sent.Accepted, sent.AcceptedAt = true, time.Now()
			s.accepted.Add(1)
			return sent
		}
		if !time.Now().Add(every).Before(deadline) {
			return sent
		}
		time.Sleep(every)
	}
}

// post signs body now (a retry is a new signature, as with Stripe) and
// posts it.
func (s *Sender) post(e *endpoint, body []byte) (status int, deliveryID string, err error) {
	p, ok := provider.Lookup("stripe")
	if !ok {
		return 0, "", fmt.Errorf("no stripe provider")
	}
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: body, Header: http.Header{}}
	if err := p.Scheme.Sign(s.Secret, m); err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest(http.MethodPost, e.URL+s.Path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header = m.Header
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, deliveryIDOf(answer), nil
}

// deliveryIDOf is the delivery id in a queue's intake answer,
// {"delivery_id": …}.
func deliveryIDOf(body []byte) string {
	var answer struct {
		DeliveryID string `json:"delivery_id"`
	}
	_ = json.Unmarshal(body, &answer)
	return answer.DeliveryID
}
