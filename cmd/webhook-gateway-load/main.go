// Command webhook-gateway-load measures what the gateway costs over a
// plain reverse_proxy: it runs Caddy in-process with both routes in front
// of one upstream and drives them in alternating rounds, so that every
// ratio compares numbers taken on the same machine, in the same minute.
//
//	go run ./cmd/webhook-gateway-load -redis redis://127.0.0.1:6379
//
// With -queue the measured route stores each event and answers at once,
// its workers delivering to the same upstream meanwhile (and during the
// plain rounds, while a backlog lasts: the comparison is of intake with
// delivery running, as in production):
//
//	go run ./cmd/webhook-gateway-load -redis redis://127.0.0.1:6379 -queue
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/webrev/webhook-gateway/caddymodule"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

const secret = "whsec_load_test"

func main() {
	duration := flag.Duration("duration", 3*time.Second, "length of one measurement")
	rounds := flag.Int("rounds", 3, "alternating rounds per comparison")
	concurrency := flag.Int("concurrency", 32, "concurrent connections")
	bodySize := flag.Int("body", 1024, "payload size in bytes")
	redisURL := flag.String("redis", "", "Redis URL for the shared-store comparison (empty: memory store only)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	options := flag.String("options", "rate_limit 1000000/s\nidempotency 1h", "webhook_gateway options of the measured route, besides its secret")
	queued := flag.Bool("queue", false, "the measured route queues each event to the upstream (durable delivery, its workers running) instead of proxying it")
	flag.Parse()
	log.SetFlags(0)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	dir, err := os.MkdirTemp("", "webhook-gateway-load")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	port := freePort()

	stores := []struct{ name, globals string }{{"memory", ""}}
	if *redisURL != "" {
		stores = append(stores, struct{ name, globals string }{"redis", "webhook_gateway {\n\t\tredis " + *redisURL + "\n\t}"})
	}
	route := "webhook_gateway + reverse_proxy"
	if *queued {
		route = "webhook_gateway queue"
		*options += fmt.Sprintf("\nqueue {\n\t\t\tto %s\n\t\t\tconcurrency 64\n\t\t}", upstream.URL)
	}
	l := &load{body: *bodySize, concurrency: *concurrency, duration: *duration}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "store\troute\treq/s (mean of %d)\tratio\tCPU/request\tratio\terrors\t\n", *rounds)
	for _, st := range stores {
		if err := loadCaddy(config(dir, port, st.globals, *options, upstream.Listener.Addr().String())); err != nil {
			log.Fatalf("loading Caddy: %v", err)
		}
		l.base = fmt.Sprintf("https://localhost:%d", port)
		l.client = client(dir)
		l.warm()
		var plain, gateway stats
		for r := 0; r < *rounds; r++ {
			plain.add(l.run("/plain"))
			gateway.add(l.run("/gateway"))
		}
		fmt.Fprintf(tw, "%s\treverse_proxy\t%.0f\t1.00\t%s\t1.00\t%d\t\n", st.name, plain.mean(), plain.cpuPerRequest(), plain.errors)
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%s\t%.2f\t%d\t\n", st.name, route, gateway.mean(), gateway.mean()/plain.mean(),
			gateway.cpuPerRequest(), float64(gateway.cpuPerRequest())/float64(plain.cpuPerRequest()), gateway.errors)
	}
	caddy.Stop()
	tw.Flush()
}

// config is a Caddyfile with a plain proxy route and a gateway route
// (Stripe signature, rate limit and idempotency) to the same upstream.
func config(dir string, port int, globals, options, upstream string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	skip_install_trust
	storage file_system %s
	http_port %d
	https_port %d
	log {
		output discard
	}
	%s
}

https://localhost:%d {
	tls internal
	route /plain {
		reverse_proxy %s
	}
	route /gateway {
		webhook_gateway stripe {
			secret %s
			%s
		}
		reverse_proxy %s
	}
}
`, filepath.Join(dir, "storage"), freePort(), port, globals, port, upstream, secret, options, upstream)
}

func loadCaddy(caddyfile string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

// client trusts the local CA and speaks HTTP/1.1 over many connections,
// as providers' senders do.
func client(dir string) *http.Client {
	root := filepath.Join(dir, "storage", "pki", "authorities", "local", "root.crt")
	var pem []byte
	for i := 0; i < 200; i++ {
		var err error
		if pem, err = os.ReadFile(root); err == nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 1024,
	}}
}

// load drives one route with signed, unique events.
type load struct {
	base        string
	client      *http.Client
	body        int
	concurrency int
	duration    time.Duration
	seq         atomic.Int64
}

type result struct {
	requests, errors int64
	elapsed, cpu     time.Duration
}

// run sends as fast as the workers can for the load's duration. Both
// routes get identically signed requests, so the client's own work is
// the same on each side of the ratio.
func (l *load) run(path string) result {
	var ok, bad atomic.Int64
	deadline := time.Now().Add(l.duration)
	start, cpuStart := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for w := 0; w < l.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if l.send(path) {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return result{requests: ok.Load(), errors: bad.Load(), elapsed: time.Since(start), cpu: cpuTime() - cpuStart}
}

func (l *load) warm() {
	for i := 0; i < 100 && !l.send("/plain"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *load) send(path string) bool {
	id := "evt_" + strconv.FormatInt(l.seq.Add(1), 10)
	body := bytes.Repeat([]byte("x"), l.body)
	copy(body, `{"id":"`+id+`","type":"load.test","pad":"`)
	body[len(body)-2], body[len(body)-1] = '"', '}'
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: body, Header: http.Header{}}
	p, _ := provider.Lookup("stripe")
	if err := p.Scheme.Sign(secret, m); err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, l.base+path, bytes.NewReader(body))
	req.Header = m.Header
	resp, err := l.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stats sums the rounds of one route. CPU per request is the steadier
// figure on a shared machine: other processes slow the clock-time rate
// but barely change what each request costs this process.
type stats struct {
	rates    []float64
	cpu      time.Duration
	requests int64
	errors   int64
}

func (s *stats) add(r result) {
	s.rates = append(s.rates, float64(r.requests)/r.elapsed.Seconds())
	s.cpu += r.cpu
	s.requests += r.requests
	s.errors += r.errors
}

// cpuPerRequest is this process's CPU time (client, Caddy and upstream
// together) per request.
func (s *stats) cpuPerRequest() time.Duration {
	return s.cpu / time.Duration(max(s.requests, 1))
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (s *stats) mean() float64 {
	sum := 0.0
	for _, r := range s.rates {
		sum += r
	}
	return sum / float64(len(s.rates))
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
