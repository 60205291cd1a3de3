package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// adminCLI runs the built binary's subcommands against one gateway
// process's admin API.
type adminCLI struct {
	bin, addr string
}

// run returns what the command printed and its exit status.
func (c adminCLI) run(t *testing.T, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.Command(c.bin, append(args, "--address", c.addr)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), exit
}

// ok runs a command that must succeed and returns its output.
func (c adminCLI) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, exit := c.run(t, args...)
	if exit != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), exit, out, errOut)
	}
	return out
}

// status is the event's status as `events show --json` gives it.
func (c adminCLI) status(t *testing.T, id string) string {
	t.Helper()
	var ev struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.ok(t, "events", "show", id, "--json")), &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Status
}

// awaitStatus polls until the event is in status.
func (c adminCLI) awaitStatus(t *testing.T, id, status string) {
	t.Helper()
	waitFor(t, 30*time.Second, "event "+id+" "+status, func() bool { return c.status(t, id) == status })
}

// sendQueuedEvent sends a signed Stripe delivery to path and returns
// the delivery id the gateway answered with.
func sendQueuedEvent(t *testing.T, inst *gatewaytest.Instance, path, body string) string {
	t.Helper()
	stripe := routes[0]
	req, err := http.NewRequest(http.MethodPost, inst.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = stripe.signed(t, stripe.secret, time.Now(), body)
	resp, err := inst.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	id := resp.Header.Get("Webhook-Gateway-Delivery-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("intake answered %d (%s) with delivery id %q, want 200 and an id", resp.StatusCode, got, id)
	}
	return id
}

// awaitArrivals polls until n attempts of the delivery id reached the
// app.
func awaitArrivals(t *testing.T, up *gatewaytest.Upstream, id string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d attempts of %s", n, id), func() bool { return len(receivedFor(up, id)) >= n })
}

// TestAdminCommandsEndToEnd runs a gateway process whose app answers 500
// and drives its queues with the built binary's subcommands, as an
// operator would: list and show (redacted, escaped), pause and resume,
// retry and replay of dead events.
func TestAdminCommandsEndToEnd(t *testing.T) {
	stores := []struct {
		name    string
		globals func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return "" }},
		{"redis", func(t *testing.T) string { return redisGlobals("redis " + testredis.Start(t).URL()) }},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { testAdminCommands(t, s.globals(t)) })
	}
}

func testAdminCommands(t *testing.T, globals string) {
	var failing atomic.Bool
	failing.Store(true)
	app := gatewaytest.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	queueRoute := func(name, retry string) string {
		return fmt.Sprintf("route /%s {\n\twebhook_gateway stripe {\n\t\tsecret %q\n\t\tsource %s\n\t\tqueue {\n\t\t\tto %s/hooks/%s\n\t\t\t%s\n\t\t}\n\t}\n}\n",
			name, routes[0].secret, name, app.URL, name, retry)
	}
	// slow retries in an hour (its event stays retrying); fast dies at
	// the first failure.
	inst := gatewaytest.StartProcessAdmin(t, globals, queueRoute("slow", "retry 5 1h 1h")+queueRoute("fast", "retry 1 1s 1s"))
	cli := adminCLI{bin: gatewaytest.Binary(t), addr: inst.Admin}

	// Intake percent-encodes C0 controls in ids and types; a C1 CSI
	// and a bidi override pass as UTF-8 and must be escaped on output.
	const hostileType = "inv\u009b31m\u202eoice\u001b[2J\u001b]0;pwned\u0007\nFORGED ROW"
	retrying := sendQueuedEvent(t, inst, "/slow", `{"id":"evt_slow","type":"invoice.paid","data":{"secret_looking":"body-marker"}}`)
	hostile, err := json.Marshal(map[string]any{"id": "evt_fast\u001b[31m", "type": hostileType, "data": map[string]string{"n": "body-marker"}})
	if err != nil {
		t.Fatal(err)
	}
	dead := sendQueuedEvent(t, inst, "/fast", string(hostile))
	dead2 := sendQueuedEvent(t, inst, "/fast", `{"id":"evt_fast2","type":"charge.failed","data":{}}`)
	cli.awaitStatus(t, retrying, "retrying")
	cli.awaitStatus(t, dead, "dead")
	cli.awaitStatus(t, dead2, "dead")

	t.Run("list", func(t *testing.T) {
		out := cli.ok(t, "events", "list")
		for _, want := range []string{retrying, dead, dead2, "retrying", "dead", `"inv\u009b31m\u202eoice`, "500"} {
			if !strings.Contains(out, want) {
				t.Errorf("list lacks %q:\n%s", want, out)
			}
		}
		assertNoTerminalControl(t, out)
		if lines := strings.Count(out, "\n"); lines != 4 {
			t.Errorf("%d lines, want a header and 3 rows:\n%s", lines, out)
		}
		out = cli.ok(t, "events", "list", "--queue", "fast", "--status", "dead", "--since", "1h")
		if strings.Contains(out, retrying) || !strings.Contains(out, dead) {
			t.Errorf("filtered list:\n%s", out)
		}
		out = cli.ok(t, "events", "list", "--json")
		assertNoTerminalControl(t, out)
		var list struct {
			Events []struct{ ID, EventType string }
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Events) != 3 {
			t.Fatalf("--json: %v\n%s", err, out)
		}
	})

	t.Run("show_redacts_and_hides_the_body", func(t *testing.T) {
		out := cli.ok(t, "events", "show", dead)
		assertNoTerminalControl(t, out)
		for _, want := range []string{"Stripe-Signature: [REDACTED]", "Status:", "dead", "Attempts:", "500"} {
			if !strings.Contains(out, want) {
				t.Errorf("show lacks %q:\n%s", want, out)
			}
		}
		for _, leak := range []string{"v1=", "body-marker"} {
			if strings.Contains(out, leak) {
				t.Errorf("show holds %q:\n%s", leak, out)
			}
		}
		out = cli.ok(t, "events", "show", dead, "--body", "--json")
		if !strings.Contains(out, `"body"`) || strings.Contains(out, "v1=") {
			t.Errorf("--body --json: want the body, never the signature:\n%s", out)
		}
		out = cli.ok(t, "events", "show", dead, "--body")
		if !strings.Contains(out, "body-marker") || strings.Contains(out, "v1=") {
			t.Errorf("--body: want the body, never the signature:\n%s", out)
		}
	})

	t.Run("errors_exit_non_zero_in_one_line", func(t *testing.T) {
		cases := []struct {
			args []string
			want string
		}{
			{[]string{"events", "show", "01nope\u001b[2J"}, `no event`},
			{[]string{"events", "show", dead, "--queue", "nope"}, `no queue "nope"`},
			{[]string{"queue", "pause", "nope"}, `no queue "nope"`},
			{[]string{"events", "list", "--since", "yesterday"}, "since"},
		}
		for _, c := range cases {
			out, errOut, exit := cli.run(t, c.args...)
			if exit == 0 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("%q: exit %d, stderr %q, stdout %q: want non-zero and one line containing %q", c.args, exit, errOut, out, c.want)
			}
			assertNoTerminalControl(t, errOut)
		}
	})

	t.Run("gauges", func(t *testing.T) {
		resp, err := http.Get("http://" + inst.Admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`caddy_webhook_gateway_queue_depth{queue="slow"} 1`,
			`caddy_webhook_gateway_queue_delayed{queue="slow"} 1`,
			`caddy_webhook_gateway_queue_dead{queue="fast"} 2`,
			`caddy_webhook_gateway_queue_depth{queue="fast"} 0`,
			`caddy_webhook_gateway_queue_paused{queue="fast"} 0`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("pause_retry_resume", func(t *testing.T) {
		failing.Store(false)
		before := len(receivedFor(app, dead))
		if out := cli.ok(t, "queue", "pause", "fast"); !strings.Contains(out, "yes") {
			t.Errorf("pause:\n%s", out)
		}
		if out := cli.ok(t, "events", "retry", dead); !strings.Contains(out, dead) {
			t.Errorf("retry:\n%s", out)
		}
		// Paused, intake goes on: a new event is accepted.
		fresh := sendQueuedEvent(t, inst, "/fast", `{"id":"evt_fresh","type":"charge.succeeded","data":{}}`)
		// Both are due, yet neither may reach the app. Resumed, a due
		// event goes out well within this wait.
		time.Sleep(2 * time.Second)
		if n := len(receivedFor(app, dead)) - before + len(receivedFor(app, fresh)); n != 0 {
			t.Fatalf("%d attempts reached the app while the queue was paused", n)
		}
		if got := cli.status(t, fresh); got != "queued" {
			t.Errorf("an event accepted while paused is %s, want queued", got)
		}
		if out := cli.ok(t, "queue", "stats", "fast"); !strings.Contains(out, "yes") {
			t.Errorf("stats of a paused queue:\n%s", out)
		}
		cli.ok(t, "queue", "resume", "fast")
		awaitArrivals(t, app, dead, before+1)
		awaitArrivals(t, app, fresh, 1)
		cli.awaitStatus(t, dead, "delivered")
		cli.awaitStatus(t, fresh, "delivered")
	})

	t.Run("replay", func(t *testing.T) {
		// By filter: the dead one left reaches the app under its own id.
		out := cli.ok(t, "events", "replay", "--queue", "fast", "--status", "dead")
		if !strings.Contains(out, dead2) {
			t.Errorf("replay by filter:\n%s", out)
		}
		awaitArrivals(t, app, dead2, 2)
		cli.awaitStatus(t, dead2, "delivered")

		// By id, of a delivered event: a new delivery id, Replay-Of the old.
		var res struct {
			Replayed []struct {
				ID         string `json:"id"`
				DeliveryID string `json:"delivery_id"`
			} `json:"replayed"`
		}
		if err := json.Unmarshal([]byte(cli.ok(t, "events", "replay", dead, "--json")), &res); err != nil || len(res.Replayed) != 1 {
			t.Fatalf("replay by id: %v %+v", err, res)
		}
		newID := res.Replayed[0].DeliveryID
		if newID == dead || newID == "" {
			t.Fatalf("a delivered event replayed under id %q", newID)
		}
		awaitArrivals(t, app, newID, 1)
		for _, r := range app.Received() {
			if r.Header.Get("Webhook-Gateway-Delivery-Id") == newID && r.Header.Get("Webhook-Gateway-Replay-Of") != dead {
				t.Errorf("replay reached the app with Replay-Of %q, want %s", r.Header.Get("Webhook-Gateway-Replay-Of"), dead)
			}
		}
	})

	t.Run("stats", func(t *testing.T) {
		out := cli.ok(t, "queue", "stats")
		for _, want := range []string{"QUEUE", "fast", "slow"} {
			if !strings.Contains(out, want) {
				t.Errorf("stats lacks %q:\n%s", want, out)
			}
		}
	})
}

// assertNoTerminalControl fails when out holds a byte a terminal acts
// on, or a line a request's newline forged.
func assertNoTerminalControl(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("output holds %q:\n%s", bad, out)
		}
	}
	if strings.Contains(out, "\nFORGED") {
		t.Errorf("a newline from a request started a line:\n%s", out)
	}
}

// TestAdminCommandsWithoutQueues: a gateway without a queue block says
// so through the admin API, and the commands exit non-zero with that
// line; an unreachable admin API is one line too.
func TestAdminCommandsWithoutQueues(t *testing.T) {
	up := gatewaytest.NewUpstream(t)
	inst := gatewaytest.StartProcessAdmin(t, "", routes[0].site(up.Addr()))
	cases := []struct {
		name string
		addr string
		args []string
		want string
	}{
		{"stats", inst.Admin, []string{"queue", "stats"}, "no queue is configured"},
		{"list", inst.Admin, []string{"events", "list"}, "no queue is configured"},
		{"show", inst.Admin, []string{"events", "show", "01x"}, "no queue is configured"},
		{"unreachable", "localhost:1", []string{"queue", "stats"}, "calling the admin API at localhost:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cli := adminCLI{bin: gatewaytest.Binary(t), addr: c.addr}
			out, errOut, exit := cli.run(t, c.args...)
			if exit == 0 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want non-zero, nothing on stdout and one line containing %q", exit, out, errOut, c.want)
			}
		})
	}
}

// TestAdminRedactsACustomSchemeSignature: a route's own scheme may name
// its signature header anything; `events show` redacts it all the same,
// since the route knows the header even where no catalog or name
// pattern does.
func TestAdminRedactsACustomSchemeSignature(t *testing.T) {
	app := gatewaytest.NewUpstream(t)
	scheme := &provider.HMAC{Header: []string{"X-Acme-Mac"}}
	site := fmt.Sprintf("route /acme {\n\twebhook_gateway acme {\n\t\tsecret %q\n\t\tscheme hmac {\n\t\t\theader X-Acme-Mac\n\t\t}\n\t\tqueue {\n\t\t\tto %s\n\t\t}\n\t}\n}\n",
		"acme mac secret", app.URL)
	inst := gatewaytest.StartProcessAdmin(t, "", site)
	cli := adminCLI{bin: gatewaytest.Binary(t), addr: inst.Admin}

	body := `{"kind":"thing.happened"}`
	m := &provider.Message{Method: http.MethodPost, Timestamp: time.Now(), Body: []byte(body), Header: http.Header{}}
	if err := scheme.Sign("acme mac secret", m); err != nil {
		t.Fatal(err)
	}
	mac := m.Header.Get("X-Acme-Mac")
	req, err := http.NewRequest(http.MethodPost, inst.URL+"/acme", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = m.Header
	resp, err := inst.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("Webhook-Gateway-Delivery-Id")
	if resp.StatusCode != http.StatusOK || id == "" || mac == "" {
		t.Fatalf("intake answered %d with delivery id %q (signature %q), want 200 and an id", resp.StatusCode, id, mac)
	}
	for _, args := range [][]string{{"events", "show", id}, {"events", "show", id, "--json"}, {"events", "show", id, "--body"}} {
		out := cli.ok(t, args...)
		if strings.Contains(out, mac) || !strings.Contains(out, "X-Acme-Mac") {
			t.Errorf("%s shows the signature, or not the header:\n%s", strings.Join(args, " "), out)
		}
	}
}
