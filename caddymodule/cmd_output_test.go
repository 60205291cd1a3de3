package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// hostile is what a provider (or an attacker with a valid signature)
// can put in an event id or type: an escape sequence that clears the
// screen, a newline that forges a table row, a C1 CSI, a bidi override.
const hostile = "evt\x1b[2J\x1b]0;pwned\x07\nFORGED\tROW\u009b31m\u202egnp.exe"

// assertTerminalSafe fails when out holds a byte a terminal acts on.
func assertTerminalSafe(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", "\u202e", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("output holds %q:\n%s", bad, out)
		}
	}
	if strings.Contains(out, "\nFORGED") {
		t.Errorf("a newline from the request started a line of its own:\n%s", out)
	}
}

func TestTerm(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"plain", "evt_123", "evt_123"},
		{"unicode_letters", "commande.créée", "commande.créée"},
		{"empty", "", "-"},
		{"escape", "a\x1b[31mb", `"a\x1b[31mb"`},
		{"newline", "a\nb", `"a\nb"`},
		{"tab", "a\tb", `"a\tb"`},
		{"c1_csi", "a\u009bb", `"a\u009bb"`},
		{"bidi_override", "a\u202eb", `"a\u202eb"`},
		{"invalid_utf8", "a\xffb", `"a\xffb"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := term(c.in); got != c.want {
				t.Errorf("term(%q) = %s, want %s", c.in, got, c.want)
			}
		})
	}
}

func TestSafeJSON(t *testing.T) {
	in := map[string]string{"id": hostile, "plain": "évé"}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out := safeJSON(b)
	assertTerminalSafe(t, string(out))
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("safeJSON broke the JSON: %v\n%s", err, out)
	}
	if back["id"] != hostile || back["plain"] != "évé" {
		t.Errorf("round trip changed the values: %q", back)
	}
}

func hostileEvent() *queue.Event {
	at := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	return &queue.Event{
		ID: "01jd" + hostile, Queue: "stripe", Provider: "stripe", EventID: hostile, EventType: hostile,
		Method: http.MethodPost, Status: queue.StatusRetrying, Attempts: 2, Budget: 12, ReceivedAt: at,
		NextAt: at.Add(time.Minute),
		Header: http.Header{
			"Stripe-Signature": {"t=1,v1=deadbeef"},
			"X-Custom":         {hostile},
			"Content-Type":     {"application/json"},
		},
		Body: []byte("{\"a\":\"\x1b[2J\"}"),
		Log: []queue.Attempt{
			{N: 1, At: at, Duration: 12 * time.Millisecond, Status: 500, Outcome: queue.Retry},
			{N: 2, At: at.Add(5 * time.Second), Error: "dial: " + hostile, Outcome: queue.Retry},
		},
	}
}

func TestWriteEventListEscapes(t *testing.T) {
	ev := hostileEvent()
	var out bytes.Buffer
	if err := writeEventList(&out, []eventSummary{summarize(ev)}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	assertTerminalSafe(t, s)
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want a header and one row:\n%s", len(lines), s)
	}
	for _, want := range []string{"ID", "STATUS", "retrying", `\x1b[2J`, "2026-12-01T18:01:00Z", "retry: dial:"} {
		if !strings.Contains(s, want) {
			t.Errorf("list lacks %q:\n%s", want, s)
		}
	}
}

func TestWriteEventRedactsAndEscapes(t *testing.T) {
	cases := []struct {
		name     string
		withBody bool
		want     []string
		notWant  []string
	}{
		{name: "without_body", want: []string{"Stripe-Signature: " + redacted, "12 bytes", "Attempts:", "12ms"},
			notWant: []string{"deadbeef", "Body:\n"}},
		{name: "with_body", withBody: true, want: []string{"Body:\n", `"{\"a\":\"\x1b[2J\"}"`}, notWant: []string{"deadbeef"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := hostileEvent()
			shown := shownEvent{Event: *ev, BodySize: len(ev.Body)}
			shown.Header = redactHeader(ev.Header, nil)
			if !c.withBody {
				shown.Body = nil
			}
			var out bytes.Buffer
			if err := writeEvent(&out, &shown); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			assertTerminalSafe(t, s)
			for _, w := range c.want {
				if !strings.Contains(s, w) {
					t.Errorf("lacks %q:\n%s", w, s)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(s, w) {
					t.Errorf("holds %q:\n%s", w, s)
				}
			}
		})
	}
}

func TestWriteQueuesAligned(t *testing.T) {
	var out bytes.Buffer
	queues := []queueView{
		{Stats: queue.Stats{Queue: "stripe", Queued: 12345, Ready: 3, Dead: 2, Paused: true, Oldest: time.Now().Add(-90 * time.Second)}},
		{Stats: queue.Stats{Queue: "gh" + hostile}, Error: "redis: " + hostile},
	}
	if err := writeQueues(&out, queues); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	assertTerminalSafe(t, s)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), s)
	}
	// Aligned: the QUEUED column starts at the same offset on every line.
	col := strings.Index(lines[0], "QUEUED")
	if !strings.HasPrefix(lines[1][col:], "12345") {
		t.Errorf("QUEUED column not aligned:\n%s", s)
	}
	for _, want := range []string{"yes", "1m30s", "error: "} {
		if !strings.Contains(s, want) {
			t.Errorf("lacks %q:\n%s", want, s)
		}
	}
}

func TestWriteReplay(t *testing.T) {
	var out bytes.Buffer
	res := &replayResult{
		Replayed: []actedEvent{{ID: "a1", Queue: "q", DeliveryID: "a1"}, {ID: "b2", Queue: "q", DeliveryID: "c3"}},
		Skipped:  []skippedEvent{{ID: hostile, Queue: "q", Error: "event is not in a state that allows this"}},
		More:     true,
	}
	if err := writeReplay(&out, res); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	assertTerminalSafe(t, s)
	for _, want := range []string{"replayed\n", "replayed as a new delivery", "c3", "skipped \"evt", "more events match"} {
		if !strings.Contains(s, want) {
			t.Errorf("lacks %q:\n%s", want, s)
		}
	}
}

func TestRedactHeader(t *testing.T) {
	in := http.Header{
		"Stripe-Signature":         {"t=1,v1=abc"},
		"X-Hub-Signature-256":      {"sha256=abc"},
		"X-Gitlab-Token":           {"tok"},
		"Authorization":            {"Basic dXNlcjpwYXNz"},
		"Cookie":                   {"session=1"},
		"X-Acme-Signature":         {"custom scheme"},
		"X-Api-Key":                {"k"},
		"X-Client-Secret":          {"s"},
		"Idempotency-Key":          {"01jd"},
		"Content-Type":             {"application/json"},
		"Webhook-Gateway-Event-Id": {"evt_1"},
		"X-Shopify-Hmac-Sha256":    {"hmac"},
	}
	out := redactHeader(in, nil)
	cases := []struct {
		name   string
		secret bool
	}{
		{"Stripe-Signature", true}, {"X-Hub-Signature-256", true}, {"X-Gitlab-Token", true},
		{"Authorization", true}, {"Cookie", true}, {"X-Acme-Signature", true}, {"X-Api-Key", true},
		{"X-Client-Secret", true}, {"X-Shopify-Hmac-Sha256", true},
		{"Idempotency-Key", false}, {"Content-Type", false}, {"Webhook-Gateway-Event-Id", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := out.Get(c.name)
			if c.secret && got != redacted {
				t.Errorf("%s = %q, want it redacted", c.name, got)
			}
			if !c.secret && got != in.Get(c.name) {
				t.Errorf("%s = %q, want %q kept", c.name, got, in.Get(c.name))
			}
		})
	}
	if in.Get("Stripe-Signature") != "t=1,v1=abc" {
		t.Error("redactHeader changed the event's own header")
	}
}

func TestShownBodyRedactsBodySignatures(t *testing.T) {
	ev := &queue.Event{
		Provider: "mailgun",
		Header:   http.Header{"Content-Type": {"application/json"}},
		Body:     []byte(`{"signature":{"timestamp":"1","token":"tok","signature":"deadbeef"},"event-data":{"id":"e"}}`),
	}
	body, err := shownBody(ev)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("deadbeef")) || !bytes.Contains(body, []byte(redacted)) || !bytes.Contains(body, []byte(`"event-data"`)) {
		t.Errorf("body = %s, want the signature redacted and the rest kept", body)
	}
}

func flagSet(t *testing.T, define func(*pflag.FlagSet), args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	define(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// errorAsWanted fails the test unless err contains want (no error when
// want is empty); it reports whether the test should go on.
func errorAsWanted(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want one containing %q", err, want)
	}
	return false
}

func TestListQueryFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{name: "none", want: ""},
		{name: "all", args: []string{"--queue", "stripe/orders", "--status", "dead", "--since", "1h", "--limit", "5"},
			want: "limit=5&queue=stripe%2Forders&since=1h&status=dead"},
		{name: "bad_status", args: []string{"--status", "lost"}, wantErr: "--status lost"},
		{name: "hostile_status_escaped", args: []string{"--status", "x\x1b[2J"}, wantErr: `"x\x1b[2J"`},
		{name: "negative_limit", args: []string{"--limit", "-1"}, wantErr: "--limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := listQuery(flagSet(t, filterFlags, c.args...))
			if !errorAsWanted(t, err, c.wantErr) {
				return
			}
			if got := q.Encode(); got != c.want {
				t.Errorf("query %q, want %q", got, c.want)
			}
		})
	}
}

func TestReplaySelectionFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		ids     []string
		want    replaySelection
		wantErr string
	}{
		{name: "filter", args: []string{"--queue", "q", "--status", "dead", "--since", "24h"},
			want: replaySelection{Queue: "q", Status: "dead", Since: "24h"}},
		{name: "ids", args: []string{"--queue", "q"}, ids: []string{"a", "b"},
			want: replaySelection{Queue: "q", IDs: []string{"a", "b"}}},
		{name: "ids_and_filter", args: []string{"--status", "dead"}, ids: []string{"a"}, wantErr: "not both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sel, err := replaySelectionFrom(flagSet(t, filterFlags, c.args...), c.ids)
			if !errorAsWanted(t, err, c.wantErr) {
				return
			}
			got, _ := json.Marshal(sel)
			want, _ := json.Marshal(c.want)
			if string(got) != string(want) {
				t.Errorf("selection %s, want %s", got, want)
			}
		})
	}
}

func TestAdminFailureMessage(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"api_error", "caddy responded with error: HTTP 404: {\"error\":\"no event \\\"x\\\" in any queue\"}\n", `no event "x" in any queue (HTTP 404)`},
		{"not_json", "caddy responded with error: HTTP 502: bad gateway", "bad gateway (HTTP 502)"},
		{"unreachable", "performing request: dial tcp 127.0.0.1:1: connect: connection refused", "calling the admin API at localhost:1: performing request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := adminFailure("localhost:1", errorString(c.in)).Error()
			if !strings.Contains(got, c.want) || strings.Contains(got, "\n") {
				t.Errorf("got %q, want one line containing %q", got, c.want)
			}
		})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
