package gatewaytest

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// attempt posts one delivery's attempt to the app as a queue worker
// would. Safe in goroutines.
func attempt(c *http.Client, app *App, id string, n int, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, app.URL+"/hooks", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Webhook-Gateway-Delivery-Id", id)
	req.Header.Set("Webhook-Gateway-Attempt", strconv.Itoa(n))
	req.Header.Set("Webhook-Gateway-Event-Id", "evt_"+id)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestAppFailsDeterministically(t *testing.T) {
	tests := []struct {
		name        string
		cfg         AppConfig
		minFailures int // of 300 attempts 1..3 of 100 deliveries
		maxFailures int
	}{
		{"never", AppConfig{}, 0, 0},
		{"a third", AppConfig{FailOneIn: 3}, 70, 130},
		{"a third up to attempt 1", AppConfig{FailOneIn: 3, FailUpTo: 1}, 20, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := NewApp(t, tt.cfg)
			failures := 0
			for i := range 100 {
				id := "d" + strconv.Itoa(i)
				for n := 1; n <= 3; n++ {
					status, err := attempt(http.DefaultClient, app, id, n, "body "+id)
					if err != nil {
						t.Fatal(err)
					}
					want := http.StatusOK
					if app.Fails(id, n) {
						want = http.StatusInternalServerError
						failures++
					}
					if status != want {
						t.Fatalf("%s attempt %d: status %d, want %d", id, n, status, want)
					}
					if tt.cfg.FailUpTo > 0 && n > tt.cfg.FailUpTo && app.Fails(id, n) {
						t.Fatalf("%s attempt %d fails above FailUpTo", id, n)
					}
				}
			}
			if failures < tt.minFailures || failures > tt.maxFailures {
				t.Errorf("%d failures of 300, want %d..%d", failures, tt.minFailures, tt.maxFailures)
			}
			got := app.Attempts()
			if len(got) != 300 {
				t.Fatalf("%d attempts recorded, want 300", len(got))
			}
			first := got[0]
			if first.DeliveryID != "d0" || first.N != 1 || first.EventID != "evt_d0" || first.Path != "/hooks" ||
				first.BodyHash != sha256.Sum256([]byte("body d0")) || first.End.Before(first.Start) {
				t.Errorf("first attempt recorded as %+v", first)
			}
			delivered := app.Delivered()
			if len(delivered) != 100-countAllFailed(app, 100) {
				t.Errorf("%d events delivered", len(delivered))
			}
		})
	}
}

// countAllFailed counts the deliveries whose three attempts all fail.
func countAllFailed(app *App, n int) int {
	c := 0
	for i := range n {
		id := "d" + strconv.Itoa(i)
		if app.Fails(id, 1) && app.Fails(id, 2) && app.Fails(id, 3) {
			c++
		}
	}
	return c
}

func TestAppDownUp(t *testing.T) {
	app := NewApp(t, AppConfig{})
	c := &http.Client{Timeout: 5 * time.Second}
	if status, err := attempt(c, app, "a", 1, "x"); err != nil || status != http.StatusOK {
		t.Fatalf("before Down: %d, %v", status, err)
	}
	app.Down()
	if status, err := attempt(c, app, "a", 2, "x"); err == nil {
		t.Fatalf("while down: status %d, want a connection error", status)
	}
	app.Up(t)
	if status, err := attempt(c, app, "a", 3, "x"); err != nil || status != http.StatusOK {
		t.Fatalf("after Up: %d, %v", status, err)
	}
	if got := app.Attempts(); len(got) != 2 || got[0].N != 1 || got[1].N != 3 {
		t.Errorf("attempts recorded: %+v; want 1 and 3", got)
	}
	if missing := app.WaitDelivered([]string{"evt_a", "evt_b"}, 200*time.Millisecond); len(missing) != 1 || missing[0] != "evt_b" {
		t.Errorf("WaitDelivered missing %v, want [evt_b]", missing)
	}
}

func TestAppMaxInFlight(t *testing.T) {
	app := NewApp(t, AppConfig{Delay: 200 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if status, err := attempt(http.DefaultClient, app, strconv.Itoa(i), 1, ""); err != nil || status != http.StatusOK {
				t.Errorf("%d: %d, %v", i, status, err)
			}
		})
	}
	wg.Wait()
	if got := app.MaxInFlight(); got < 2 || got > 5 {
		t.Errorf("MaxInFlight = %d, want 2..5 of 5 concurrent 200ms requests", got)
	}
}

// TestAppDownCutsHeldAnswers: an attempt held by Delay when the app goes
// down gets no answer, and the app records it as unanswered, so that it
// never counts as delivered.
func TestAppDownCutsHeldAnswers(t *testing.T) {
	app := NewApp(t, AppConfig{Delay: 300 * time.Millisecond})
	got := make(chan error, 1)
	go func() {
		status, err := attempt(&http.Client{Timeout: 5 * time.Second}, app, "held", 1, "x")
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		got <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); app.MaxInFlight() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the attempt never reached the app")
		}
	}
	app.Down()
	if err := <-got; err == nil || strings.HasPrefix(err.Error(), "status") {
		t.Errorf("held attempt across Down: %v, want a connection error", err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(app.Attempts()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held attempt was never recorded")
		}
	}
	if at := app.Attempts()[0]; at.Status != 0 || at.OK() {
		t.Errorf("held attempt recorded with status %d, want 0 (unanswered)", at.Status)
	}
}
