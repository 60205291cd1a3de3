package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/redisstore"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// adminFixture is an app whose registry holds real queues (memory or
// Redis), and the admin API over it.
type adminFixture struct {
	app     *App
	api     *AdminAPI
	backend queue.Backend
}

// backends are the real backends the admin API is tested against.
var backends = []struct {
	name string
	open func(t *testing.T) queue.Backend
}{
	{"memory", func(*testing.T) queue.Backend { return &queue.Memory{} }},
	{"redis", func(t *testing.T) queue.Backend {
		c, err := redisstore.NewClient(redisstore.Config{URL: testredis.Start(t).URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return redisstore.NewQueue(c, "", zap.NewNop())
	}},
}

// forEachBackend runs test once per backend.
func forEachBackend(t *testing.T, test func(t *testing.T, open func(*testing.T) queue.Backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open) })
	}
}

func newAdminFixture(t *testing.T, queues map[string]*queue.Rate) *adminFixture {
	t.Helper()
	return newAdminFixtureOn(t, &queue.Memory{}, queues)
}

func newAdminFixtureOn(t *testing.T, backend queue.Backend, queues map[string]*queue.Rate) *adminFixture {
	t.Helper()
	f := &adminFixture{app: &App{}, backend: backend}
	f.api = &AdminAPI{app: func() (*App, error) { return f.app, nil }}
	for name, rate := range queues {
		cfg := &queue.Config{To: "http://127.0.0.1:1/hooks", Rate: rate}
		cfg.Provision()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		q, err := f.app.queues.register(cfg.Spec(name), cfg)
		if err != nil {
			t.Fatal(err)
		}
		q.backend = f.backend
	}
	return f
}

func (f *adminFixture) queue(t *testing.T, name string) *runningQueue {
	t.Helper()
	q, ok := f.app.queues.byName(name)
	if !ok {
		t.Fatalf("no queue %q", name)
	}
	return q
}

// enqueue stores an event as intake does and returns its id.
func (f *adminFixture) enqueue(t *testing.T, name, eventType string) string {
	t.Helper()
	q := f.queue(t, name)
	ev := &queue.Event{
		ID: queue.NewID(time.Now()), Queue: name, Provider: "stripe", EventID: "evt_" + eventType, EventType: eventType,
		Method: http.MethodPost, ReceivedAt: time.Now(), Status: queue.StatusQueued, Budget: q.spec.Attempts,
		Header: http.Header{"Stripe-Signature": {"t=1,v1=deadbeef"}, "Content-Type": {"application/json"}},
		Body:   []byte(`{"id":"evt_` + eventType + `","secret_looking":"kept in the body"}`),
	}
	if err := q.backend.Enqueue(context.Background(), q.spec, ev); err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

// settleAll leases every ready event of the queue and ends each attempt
// with outcome, as a worker would.
func (f *adminFixture) settleAll(t *testing.T, name string, outcome queue.Outcome, status int) {
	t.Helper()
	q := f.queue(t, name)
	leases, err := q.backend.Receive(context.Background(), q.spec, "test", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		s := queue.Settlement{Outcome: outcome, At: time.Now().Add(time.Hour),
			Attempt: &queue.Attempt{N: l.Event.Attempts + 1, At: time.Now(), Status: status, Outcome: outcome}}
		if err := q.backend.Settle(context.Background(), q.spec, l, s); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *adminFixture) get(t *testing.T, name, id string) *queue.Event {
	t.Helper()
	q := f.queue(t, name)
	ev, err := q.backend.Get(context.Background(), q.spec, id)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// call serves one request as Caddy's admin server does: a returned
// caddy.APIError becomes its status and a JSON error.
func (f *adminFixture) call(t *testing.T, method, target, body string) (int, http.Header, []byte) {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	err := f.api.serveHTTP(w, r)
	if err == nil {
		return w.Code, w.Header(), w.Body.Bytes()
	}
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s %s: a plain error (500 without a status): %v", method, target, err)
	}
	msg, _ := json.Marshal(map[string]string{"error": apiErr.Error()})
	return apiErr.HTTPStatus, w.Header(), msg
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

func TestAdminErrors(t *testing.T) {
	f := newAdminFixture(t, map[string]*queue.Rate{"stripe": nil})
	delivered := f.enqueue(t, "stripe", "delivered")
	f.settleAll(t, "stripe", queue.Delivered, 200)
	queued := f.enqueue(t, "stripe", "queued")
	cases := []struct {
		name, method, target, body string
		status                     int
		want                       string // in the body
		allow                      string
	}{
		{name: "unknown_endpoint", method: "GET", target: "/webhook_gateway/nope", status: 404, want: "no such endpoint"},
		{name: "unknown_queue", method: "GET", target: "/webhook_gateway/queues/github", status: 404, want: `no queue \"github\" (queues: stripe)`},
		{name: "unknown_event", method: "GET", target: "/webhook_gateway/events/01nope", status: 404, want: `no event \"01nope\" in any queue`},
		{name: "unknown_event_in_queue", method: "GET", target: "/webhook_gateway/events/01nope?queue=stripe", status: 404, want: `in \"stripe\"`},
		{name: "event_in_unknown_queue", method: "GET", target: "/webhook_gateway/events/" + queued + "?queue=github", status: 404, want: "no queue"},
		{name: "two_queues", method: "GET", target: "/webhook_gateway/events?queue=a&queue=b", status: 400, want: "one queue"},
		{name: "bad_status", method: "GET", target: "/webhook_gateway/events?status=lost", status: 400, want: "status"},
		{name: "bad_since", method: "GET", target: "/webhook_gateway/events?since=yesterday", status: 400, want: "since"},
		{name: "negative_since", method: "GET", target: "/webhook_gateway/events?since=-1h", status: 400, want: "since"},
		{name: "bad_limit", method: "GET", target: "/webhook_gateway/events?limit=0", status: 400, want: "limit"},
		{name: "huge_limit", method: "GET", target: "/webhook_gateway/events?limit=1000000", status: 400, want: "limit"},
		{name: "post_to_list", method: "POST", target: "/webhook_gateway/events", status: 405, allow: "GET"},
		{name: "get_replay_is_not_an_event", method: "GET", target: "/webhook_gateway/events/replay", status: 405, allow: "POST"},
		{name: "get_pause", method: "GET", target: "/webhook_gateway/queues/stripe/pause", status: 405, allow: "POST"},
		{name: "delete_event", method: "DELETE", target: "/webhook_gateway/events/" + queued, status: 405, allow: "GET"},
		{name: "retry_delivered_conflicts", method: "POST", target: "/webhook_gateway/events/" + delivered + "/retry", status: 409, want: "retry"},
		{name: "retry_queued_conflicts", method: "POST", target: "/webhook_gateway/events/" + queued + "/retry", status: 409},
		{name: "replay_queued_status", method: "POST", target: "/webhook_gateway/events/replay?status=queued", status: 400, want: "on their way"},
		{name: "replay_ids_and_filter", method: "POST", target: "/webhook_gateway/events/replay", body: `{"ids":["x"],"status":"dead"}`, status: 400, want: "not both"},
		{name: "replay_unknown_field", method: "POST", target: "/webhook_gateway/events/replay", body: `{"stauts":"dead"}`, status: 400, want: "stauts"},
		{name: "replay_unknown_id", method: "POST", target: "/webhook_gateway/events/replay", body: `{"ids":["01nope"]}`, status: 404, want: "01nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, header, body := f.call(t, c.method, c.target, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			if !strings.Contains(string(body), c.want) {
				t.Errorf("body %s lacks %q", body, c.want)
			}
			if c.allow != "" && header.Get("Allow") != c.allow {
				t.Errorf("Allow %q, want %q", header.Get("Allow"), c.allow)
			}
		})
	}
}

func TestAdminNoQueueConfigured(t *testing.T) {
	f := newAdminFixture(t, nil)
	for _, target := range []string{"/webhook_gateway/queues", "/webhook_gateway/events", "/webhook_gateway/events/01x"} {
		status, _, body := f.call(t, "GET", target, "")
		if status != 404 || !strings.Contains(string(body), "no queue is configured") {
			t.Errorf("GET %s: %d %s, want 404 saying no queue is configured", target, status, body)
		}
	}
	// With no config running at all, the active context has no app.
	status, _, body := (&adminFixture{api: &AdminAPI{}}).call(t, "GET", "/webhook_gateway/queues", "")
	if status != 404 || !strings.Contains(string(body), "no queue is configured") {
		t.Errorf("without a running config: %d %s", status, body)
	}
}

func TestAdminQueues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) queue.Backend) {
		f := newAdminFixtureOn(t, open(t), map[string]*queue.Rate{"stripe": nil, "github/push": nil})
		f.enqueue(t, "stripe", "a")
		f.enqueue(t, "stripe", "b")
		f.settleAll(t, "stripe", queue.Dead, 410)
		f.enqueue(t, "stripe", "c")
		f.enqueue(t, "github/push", "d")

		status, _, body := f.call(t, "GET", "/webhook_gateway/queues", "")
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		list := decode[queueList](t, body)
		if len(list.Queues) != 2 || list.Queues[0].Queue != "github/push" || list.Queues[1].Queue != "stripe" {
			t.Fatalf("queues %+v, want github/push and stripe", list.Queues)
		}
		if s := list.Queues[1]; s.Dead != 2 || s.Queued != 1 || s.Ready != 1 || s.Oldest.IsZero() {
			t.Errorf("stripe %+v, want 2 dead, 1 queued and ready, an oldest time", s)
		}

		// A name with a slash is one escaped segment.
		status, _, body = f.call(t, "GET", "/webhook_gateway/queues/github%2Fpush", "")
		if s := decode[queue.Stats](t, body); status != 200 || s.Queue != "github/push" || s.Queued != 1 {
			t.Fatalf("github/push: %d %s", status, body)
		}

		status, _, body = f.call(t, "POST", "/webhook_gateway/queues/stripe/pause", "")
		if s := decode[queue.Stats](t, body); status != 200 || !s.Paused {
			t.Fatalf("pause: %d %s", status, body)
		}
		q := f.queue(t, "stripe")
		if leases, _ := q.backend.Receive(context.Background(), q.spec, "w", 10, 0); len(leases) != 0 {
			t.Fatalf("a paused queue leased %d events", len(leases))
		}
		status, _, body = f.call(t, "POST", "/webhook_gateway/queues/stripe/resume", "")
		if s := decode[queue.Stats](t, body); status != 200 || s.Paused {
			t.Fatalf("resume: %d %s", status, body)
		}
		if leases, _ := q.backend.Receive(context.Background(), q.spec, "w", 10, 0); len(leases) != 1 {
			t.Fatalf("a resumed queue leased %d events, want 1", len(leases))
		}
	})
}

func TestAdminListAndShowEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) queue.Backend) {
		f := newAdminFixtureOn(t, open(t), map[string]*queue.Rate{"stripe": nil, "github": nil})
		dead := f.enqueue(t, "stripe", "dead")
		f.settleAll(t, "stripe", queue.Dead, 410)
		retrying := f.enqueue(t, "stripe", "retrying")
		f.settleAll(t, "stripe", queue.Retry, 500)
		other := f.enqueue(t, "github", "queued")

		cases := []struct {
			name, query string
			want        []string
		}{
			{"all_queues_newest_first", "", []string{other, retrying, dead}},
			{"one_queue", "?queue=stripe", []string{retrying, dead}},
			{"by_status", "?status=retrying", []string{retrying}},
			{"limit", "?limit=1", []string{other}},
			{"since_excludes_older", "?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil},
			{"since_duration", "?since=1h&status=dead", []string{dead}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, _, body := f.call(t, "GET", "/webhook_gateway/events"+c.query, "")
				if status != 200 {
					t.Fatalf("%d %s", status, body)
				}
				list := decode[eventList](t, body)
				var got []string
				for _, e := range list.Events {
					got = append(got, e.ID)
				}
				if strings.Join(got, ",") != strings.Join(c.want, ",") {
					t.Errorf("ids %v, want %v", got, c.want)
				}
				for _, leak := range []string{"deadbeef", "kept in the body", "Stripe-Signature"} {
					if strings.Contains(string(body), leak) {
						t.Errorf("the list shows %q: %s", leak, body)
					}
				}
			})
		}

		t.Run("show", func(t *testing.T) {
			status, _, body := f.call(t, "GET", "/webhook_gateway/events/"+retrying, "")
			if status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			ev := decode[shownEvent](t, body)
			if ev.Header.Get("Stripe-Signature") != redacted || strings.Contains(string(body), "deadbeef") {
				t.Errorf("signature not redacted: %s", body)
			}
			if ev.Body != nil || ev.BodySize == 0 || strings.Contains(string(body), `"body":`) {
				t.Errorf("body shown without ?body=1, or its size missing: %s", body)
			}
			if len(ev.Log) != 1 || ev.Log[0].Status != 500 || ev.Status != queue.StatusRetrying {
				t.Errorf("attempts %+v status %s, want one 500 and retrying", ev.Log, ev.Status)
			}
		})
		t.Run("show_body", func(t *testing.T) {
			status, _, body := f.call(t, "GET", "/webhook_gateway/events/"+retrying+"?queue=stripe&body=1", "")
			ev := decode[shownEvent](t, body)
			if status != 200 || !strings.Contains(string(ev.Body), "kept in the body") || strings.Contains(string(body), "deadbeef") {
				t.Errorf("%d %s: want the body and no signature", status, body)
			}
		})
	})
}

func TestAdminRetryAndReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) queue.Backend) {
		f := newAdminFixtureOn(t, open(t), map[string]*queue.Rate{"stripe": nil})
		delivered := f.enqueue(t, "stripe", "delivered")
		f.settleAll(t, "stripe", queue.Delivered, 200)
		dead1 := f.enqueue(t, "stripe", "dead1")
		dead2 := f.enqueue(t, "stripe", "dead2")
		f.settleAll(t, "stripe", queue.Dead, 410)
		dead3 := f.enqueue(t, "stripe", "dead3")
		f.settleAll(t, "stripe", queue.Dead, 410)

		status, _, body := f.call(t, "POST", "/webhook_gateway/events/"+dead1+"/retry", "")
		if acted := decode[actedEvent](t, body); status != 200 || acted.DeliveryID != dead1 || acted.Queue != "stripe" {
			t.Fatalf("retry: %d %s", status, body)
		}
		if ev := f.get(t, "stripe", dead1); ev.Status != queue.StatusQueued {
			t.Fatalf("retried event is %s, want queued", ev.Status)
		}

		// Bulk, by filter: the dead ones left, oldest first.
		status, _, body = f.call(t, "POST", "/webhook_gateway/events/replay?queue=stripe&status=dead&since=1h", "")
		res := decode[replayResult](t, body)
		if status != 200 || len(res.Replayed) != 2 || res.Replayed[0].ID != dead2 || res.Replayed[1].ID != dead3 || res.More {
			t.Fatalf("replay by filter: %d %s, want %s then %s", status, body, dead2, dead3)
		}
		for _, r := range res.Replayed {
			if r.DeliveryID != r.ID {
				t.Errorf("a dead event kept its delivery id? %+v", r)
			}
		}

		// By id, JSON: a delivered event gets a new delivery id; a queued one
		// is skipped, with the reason.
		status, _, body = f.call(t, "POST", "/webhook_gateway/events/replay", `{"queue":"stripe","ids":["`+delivered+`","`+dead1+`"]}`)
		res = decode[replayResult](t, body)
		if status != 200 || len(res.Replayed) != 1 || len(res.Skipped) != 1 || res.Skipped[0].ID != dead1 {
			t.Fatalf("replay by id: %d %s", status, body)
		}
		newID := res.Replayed[0].DeliveryID
		if newID == delivered || newID == "" {
			t.Fatalf("a delivered event replayed under its old id %q", newID)
		}
		if ev := f.get(t, "stripe", newID); ev.ReplayOf != delivered || ev.Status != queue.StatusQueued {
			t.Errorf("new event replay_of %q status %s", ev.ReplayOf, ev.Status)
		}

		// The limit: one of two matching, and "more".
		f.settleAll(t, "stripe", queue.Dead, 410)
		status, _, body = f.call(t, "POST", "/webhook_gateway/events/replay", `{"status":"dead","limit":1}`)
		if res = decode[replayResult](t, body); status != 200 || len(res.Replayed) != 1 || !res.More {
			t.Fatalf("limited replay: %d %s, want one replayed and more", status, body)
		}
	})
}

// TestAdminReplayPaced: a bulk replay goes at the queue's own rate, so
// that it cannot flood the app; a queue without a rate is not held up.
func TestAdminReplayPaced(t *testing.T) {
	const n = 6
	f := newAdminFixture(t, map[string]*queue.Rate{
		"paced":   {Count: 10, Period: caddy.Duration(time.Second), Burst: 1},
		"unpaced": nil,
	})
	cases := []struct {
		queue    string
		min, max time.Duration
	}{
		// 10/s with a burst of 1: the first at once, then one per 100ms.
		{"paced", (n - 1) * 100 * time.Millisecond * 9 / 10, time.Minute},
		{"unpaced", 0, (n - 1) * 100 * time.Millisecond * 9 / 10},
	}
	for _, c := range cases {
		t.Run(c.queue, func(t *testing.T) {
			for range n {
				f.enqueue(t, c.queue, "x")
			}
			f.settleAll(t, c.queue, queue.Dead, 410)
			start := time.Now()
			status, _, body := f.call(t, "POST", "/webhook_gateway/events/replay?queue="+c.queue, "")
			elapsed := time.Since(start)
			if res := decode[replayResult](t, body); status != 200 || len(res.Replayed) != n {
				t.Fatalf("%d %s", status, body)
			}
			if elapsed < c.min || elapsed > c.max {
				t.Errorf("replaying %d events took %v, want between %v and %v", n, elapsed, c.min, c.max)
			}
		})
	}
}

func TestQueueGauges(t *testing.T) {
	f := newAdminFixture(t, map[string]*queue.Rate{"stripe": nil})
	f.enqueue(t, "stripe", "dead")
	f.settleAll(t, "stripe", queue.Dead, 410)
	f.enqueue(t, "stripe", "retrying")
	f.settleAll(t, "stripe", queue.Retry, 500)
	f.enqueue(t, "stripe", "ready")
	q := f.queue(t, "stripe")
	if err := q.backend.SetPaused(context.Background(), q.spec, true); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := f.app.registerQueueGauges(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != "stripe" {
				t.Errorf("%s labelled %v", fam.GetName(), m.GetLabel())
			}
			got[strings.TrimPrefix(fam.GetName(), "caddy_webhook_gateway_queue_")] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"depth": 2, "ready": 1, "delayed": 1, "in_flight": 0, "waiting": 0, "dead": 1, "paused": 1}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (reported %v), want %v", name, g, ok, v)
		}
	}
	if got["oldest_age_seconds"] <= 0 || got["oldest_age_seconds"] > 60 || got["bytes"] <= 0 {
		t.Errorf("oldest age %v, bytes %v: want both positive", got["oldest_age_seconds"], got["bytes"])
	}
}

// TestQueueGroupsRecreatedCounter: a Redis that lost the queue's streams
// (restarted empty) shows in a counter once the workers recreate the
// consumer group.
func TestQueueGroupsRecreatedCounter(t *testing.T) {
	srv := testredis.Start(t)
	c, err := redisstore.NewClient(redisstore.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	f := newAdminFixtureOn(t, redisstore.NewQueue(c, "", zap.NewNop()), map[string]*queue.Rate{"stripe": nil})
	q := f.queue(t, "stripe")
	receive := func() {
		t.Helper()
		if _, err := q.backend.Receive(context.Background(), q.spec, "c1", 1, 0); err != nil {
			t.Fatalf("receive: %v", err)
		}
	}
	counter := func() float64 {
		t.Helper()
		reg := prometheus.NewPedanticRegistry()
		if err := f.app.registerQueueGauges(reg); err != nil {
			t.Fatal(err)
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range families {
			if fam.GetName() == "caddy_webhook_gateway_queue_groups_recreated_total" {
				return fam.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no caddy_webhook_gateway_queue_groups_recreated_total")
		return 0
	}
	receive()
	if n := counter(); n != 0 {
		t.Fatalf("before Redis lost the queue: %v groups recreated, want 0", n)
	}
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	receive()
	if n := counter(); n != 1 {
		t.Fatalf("after Redis lost the queue: %v groups recreated, want 1", n)
	}
}
