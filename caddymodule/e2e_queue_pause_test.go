package caddymodule_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testredis"
)

// adminCall sends method to path on the admin endpoint at addr and
// returns the status and body.
func adminCall(t testing.TB, addr, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// queueStats reads a queue's figures from the admin API.
func queueStats(t *testing.T, inst *gatewaytest.Instance, name string) (queued int64, paused bool) {
	t.Helper()
	status, body := adminCall(t, inst.Admin, http.MethodGet, "/webhook_gateway/queues/"+name)
	var st struct {
		Queued int64 `json:"queued"`
		Paused bool  `json:"paused"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("GET /webhook_gateway/queues/%s: %d %s", name, status, body)
	}
	return st.Queued, st.Paused
}

// TestQueuePauseResume: `webhook-gateway queue pause` on one of two
// gateway processes sharing Redis stops delivery everywhere while intake
// goes on; the admin API's resume delivers the backlog, every attempt
// after the resume.
func TestQueuePauseResume(t *testing.T) {
	events := durableSize(60, 1000)
	app := gatewaytest.NewApp(t, gatewaytest.AppConfig{})
	cfg := gatewaytest.Config{Globals: redisGlobals("redis " + testredis.Start(t).URL()), Site: durableRoute(app, ""), Admin: true}
	a := gatewaytest.StartProcessWith(t, cfg)
	cfg.Admin = false
	b := gatewaytest.StartProcessWith(t, cfg)

	out, err := exec.Command(gatewaytest.Binary(t), "queue", "pause", "stripe", "--address", a.Admin).CombinedOutput()
	if err != nil {
		t.Fatalf("webhook-gateway queue pause: %v\n%s", err, out)
	}
	if _, paused := queueStats(t, a, "stripe"); !paused {
		t.Fatal("queue stats after pause: not paused")
	}
	ids := sendAccepted(t, durableSender(a, b), durableEvents("pause", events, "invoice.paid"))
	if queued, _ := queueStats(t, a, "stripe"); queued != int64(events) {
		t.Errorf("paused queue holds %d events, want the %d accepted", queued, events)
	}
	// Long enough for every worker of both processes to have polled
	// several times.
	time.Sleep(3 * time.Second)
	if got := app.Attempts(); len(got) != 0 {
		t.Fatalf("the app got %d attempts while the queue was paused, the first %s", len(got), got[0].EventID)
	}

	resumed := time.Now()
	if status, body := adminCall(t, a.Admin, http.MethodPost, "/webhook_gateway/queues/stripe/resume"); status != http.StatusOK {
		t.Fatalf("resume: %d %s", status, body)
	}
	if missing := app.WaitDelivered(ids, time.Minute); len(missing) > 0 {
		t.Fatalf("%d of %d events not delivered after the resume", len(missing), events)
	}
	for _, at := range app.Attempts() {
		if at.Start.Before(resumed) {
			t.Errorf("event %s reached the app at %s, before the resume at %s", at.EventID, at.Start.Format(time.StampMilli), resumed.Format(time.StampMilli))
		}
	}
	// The last settlements may trail the app's last answers a little.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		queued, paused := queueStats(t, a, "stripe")
		if queued == 0 && !paused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the drain: %d queued, paused %v; want 0, false", queued, paused)
		}
	}
}
