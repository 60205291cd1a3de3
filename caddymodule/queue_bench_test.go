package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// benchConcurrency is how many deliveries the benchmarks keep in flight,
// as a busy provider would.
const benchConcurrency = 16

// queueBench is an in-process gateway on a Redis (append-only file,
// everysec) with four routes, so that every comparison is made in one
// run: /plain proxies to an instant app (Caddy's `respond`) and /intake
// queues to it; /plain_app proxies to a recording app and /drain queues
// to it.
type queueBench struct {
	g     *gatewaytest.Gateway
	redis *testredis.Server
	app   *gatewaytest.App
	seq   int
}

func newQueueBench(b *testing.B) *queueBench {
	redis := testredis.StartWith(b, testredis.Options{AppendFsync: "everysec"})
	app := gatewaytest.NewApp(b, gatewaytest.AppConfig{})
	respond := gatewaytest.FreePort(b)
	queued := func(source, to string) string {
		return fmt.Sprintf("webhook_gateway stripe {\n\tsecret %s\n\tsource %s\n\tqueue {\n\t\tto %s\n\t\tconcurrency 64\n\t}\n}", durableSecret, source, to)
	}
	site := fmt.Sprintf("route /plain {\n\treverse_proxy 127.0.0.1:%d\n}\nroute /intake {\n%s\n}\nroute /plain_app {\n\treverse_proxy %s\n}\nroute /drain {\n%s\n}\n",
		respond, queued("intake", fmt.Sprintf("http://127.0.0.1:%d/", respond)), strings.TrimPrefix(app.URL, "http://"), queued("drain", app.URL+"/"))
	g := gatewaytest.StartWith(b, gatewaytest.Config{
		Globals: redisGlobals("redis " + redis.URL()),
		Site:    site,
		Sites:   fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"ok\" 200\n}", respond),
		Admin:   true,
	})
	return &queueBench{g: g, redis: redis, app: app}
}

// send posts n signed events to path, benchConcurrency at a time, and
// returns how long it took; every one must be answered 2xx.
func (q *queueBench) send(b *testing.B, path string, n int) time.Duration {
	b.Helper()
	bodies := durableEvents(fmt.Sprintf("bench%d", q.seq), n, "invoice.paid")
	q.seq++
	s := &gatewaytest.Sender{Targets: []gatewaytest.Target{q.g}, Path: path, Secret: durableSecret, Concurrency: benchConcurrency}
	start := time.Now()
	sent := s.Send(bodies)
	elapsed := time.Since(start)
	for _, r := range sent {
		if !r.Accepted {
			b.Fatalf("%s: event %s: status %d, %v", path, r.EventID, r.Status, r.Err)
		}
	}
	return elapsed
}

// admin calls the in-process admin API, which must answer 200.
func (q *queueBench) admin(b *testing.B, method, path string) []byte {
	b.Helper()
	status, body := adminCall(b, q.g.Admin, method, path)
	if status != http.StatusOK {
		b.Fatalf("%s %s: %d %s", method, path, status, body)
	}
	return body
}

// waitEmpty waits until the queue holds no event that is not delivered.
func (q *queueBench) waitEmpty(b *testing.B, name string) {
	b.Helper()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var st struct {
			Queued int64 `json:"queued"`
		}
		if err := json.Unmarshal(q.admin(b, http.MethodGet, "/webhook_gateway/queues/"+name), &st); err != nil {
			b.Fatal(err)
		}
		if st.Queued == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("queue %s still holds %d events", name, st.Queued)
		}
	}
}

// resetCommandStats zeroes Redis's per-command counters.
func (q *queueBench) resetCommandStats(b *testing.B) {
	b.Helper()
	if _, err := q.redis.Do("CONFIG", "RESETSTAT"); err != nil {
		b.Fatal(err)
	}
}

// logCommandStats logs, per event, the calls and CPU of each Redis
// command since resetCommandStats (commands run by scripts included):
// where redis-µs/event goes.
func (q *queueBench) logCommandStats(b *testing.B) {
	b.Helper()
	info, err := q.redis.Do("INFO", "commandstats")
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(info, "\r\n") {
		name, fields, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || name == line {
			continue
		}
		var calls, usec float64
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseFloat(v, 64)
			case "usec":
				usec, _ = strconv.ParseFloat(v, 64)
			}
		}
		lines = append(lines, fmt.Sprintf("%s %.2f calls %.1fµs", name, calls/float64(b.N), usec/float64(b.N)))
	}
	sort.Strings(lines)
	b.Logf("redis per event: %s", strings.Join(lines, "; "))
}

// redisCPU is redis-server's CPU time so far.
func (q *queueBench) redisCPU(b *testing.B) time.Duration {
	b.Helper()
	d, err := q.redis.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkQueue compares, in one run, the queue with plain
// reverse_proxy: b.N events through each side of each comparison.
//
// intake: signed events answered by the queue (stored in Redis, the
// workers delivering meanwhile to an instant Caddy `respond`) against
// reverse_proxy to that same `respond`. drain: a backlog of b.N events
// taken in while the queue is paused, then resumed, until the app has
// them all, against the same b.N sent through reverse_proxy to the same
// app. Ratios above 1 favour the queue; redis-µs/event is redis-server's
// CPU per event: intake and delivery for intake, delivery alone for
// drain.
//
//	go test -run '^$' -bench Queue -benchtime 50000x ./caddymodule/
func BenchmarkQueue(b *testing.B) {
	q := newQueueBench(b)
	q.send(b, "/plain", 50) // warm the connections and the scripts
	q.send(b, "/intake", 50)
	q.waitEmpty(b, "intake")

	b.Run("intake", func(b *testing.B) {
		b.StopTimer()
		plain := q.send(b, "/plain", b.N)
		cpu := q.redisCPU(b)
		q.resetCommandStats(b)
		b.StartTimer()
		queued := q.send(b, "/intake", b.N)
		b.StopTimer()
		q.waitEmpty(b, "intake")
		q.report(b, plain, queued, q.redisCPU(b)-cpu)
		q.logCommandStats(b)
	})
	b.Run("drain", func(b *testing.B) {
		b.StopTimer()
		plain := q.send(b, "/plain_app", b.N)
		q.admin(b, http.MethodPost, "/webhook_gateway/queues/drain/pause")
		q.send(b, "/drain", b.N)
		want := q.app.OKCount() + b.N
		cpu := q.redisCPU(b)
		q.resetCommandStats(b)
		b.StartTimer()
		start := time.Now()
		q.admin(b, http.MethodPost, "/webhook_gateway/queues/drain/resume")
		for q.app.OKCount() < want {
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("the app has %d of %d events after 10 minutes", q.app.OKCount(), want)
			}
			time.Sleep(time.Millisecond)
		}
		drained := time.Since(start)
		b.StopTimer()
		q.waitEmpty(b, "drain")
		q.report(b, plain, drained, q.redisCPU(b)-cpu)
		q.logCommandStats(b)
	})
}

// report states both sides as events per second, their ratio and Redis's
// CPU per event; ns/op is the queue's time per event.
func (q *queueBench) report(b *testing.B, plain, queued, redisCPU time.Duration) {
	n := float64(b.N)
	b.ReportMetric(n/plain.Seconds(), "proxy-events/s")
	b.ReportMetric(n/queued.Seconds(), "queue-events/s")
	b.ReportMetric(plain.Seconds()/queued.Seconds(), "x-proxy")
	b.ReportMetric(float64(redisCPU.Microseconds())/n, "redis-µs/event")
	b.ReportMetric(float64(queued.Nanoseconds())/n, "ns/op")
}
