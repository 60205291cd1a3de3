package caddymodule_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// queueSite is a site whose Stripe route has the queue block given.
func queueSite(block string) string {
	return "localhost {\n\twebhook_gateway stripe {\n\t\tsecret s\n\t\tqueue {\n" + block + "\n\t\t}\n\t}\n}\n"
}

// TestQueueCaddyfileErrors: every bad token of a queue block is refused
// with a message naming it and its line (the queue block opens on line
// 4, its first option is on line 5).
func TestQueueCaddyfileErrors(t *testing.T) {
	const to = "to http://app:8080/hooks\n"
	cases := []struct {
		name, block string
		want        []string
	}{
		{"no_to", "timeout 5s", []string{"queue: to is required", "Caddyfile:4"}},
		{"to_not_http", "to ftp://app/hooks", []string{`to "ftp://app/hooks"`, "Caddyfile:4"}},
		{"to_with_credentials", "to http://u:p@app/hooks", []string{"credentials in the URL", "Caddyfile:4"}},
		{"to_two_args", "to http://a http://b", []string{"wrong argument count", "Caddyfile:5"}},
		{"unknown_option", to + "retries 3", []string{`unknown queue option "retries"`, "Caddyfile:6"}},
		{"queue_with_argument", "", nil},
		{"second_queue", "", nil},
		{"bad_timeout", to + "timeout soon", []string{`bad duration "soon"`, "Caddyfile:6"}},
		{"bad_retry_attempts", to + "retry many 5s 6h", []string{`bad retry attempts "many"`, "Caddyfile:6"}},
		{"zero_retry_attempts", to + "retry 0", []string{`bad retry attempts "0"`, "Caddyfile:6"}},
		{"bad_retry_delay", to + "retry 3 5s later", []string{`bad retry delay "later"`, "Caddyfile:6"}},
		{"retry_too_many_args", to + "retry 3 5s 6h 7h", []string{"retry wants <attempts>", "Caddyfile:6"}},
		{"retry_largest_below_first", to + "retry 3 1h 5s", []string{"retry largest delay must be positive", "Caddyfile:4"}},
		{"retry_and_schedule", to + "retry 3\nschedule 5s 1m", []string{"retry and schedule cannot be combined", "Caddyfile:7"}},
		{"schedule_and_retry", to + "schedule 5s 1m\nretry 3", []string{"retry and schedule cannot be combined", "Caddyfile:7"}},
		{"bad_schedule", to + "schedule 5s -1m", []string{`bad schedule delay "-1m"`, "Caddyfile:6"}},
		{"empty_schedule", to + "schedule", []string{"wrong argument count", "Caddyfile:6"}},
		{"bad_concurrency", to + "concurrency 0", []string{`bad concurrency "0"`, "Caddyfile:6"}},
		{"bad_rate", to + "rate fast", []string{`bad rate "fast"`, "Caddyfile:6"}},
		{"rate_with_key", to + "rate 5/s key {client_ip}", []string{"a queue's rate takes no key", "Caddyfile:6"}},
		{"bad_rate_burst", to + "rate 5/s burst lots", []string{`bad burst "lots"`, "Caddyfile:6"}},
		{"order_two_args", to + "order a b", []string{"wrong argument count", "Caddyfile:6"}},
		{"bad_retention", to + "retention forever", []string{`bad duration "forever"`, "Caddyfile:6"}},
		{"bad_dead_retention", to + "dead_retention 0s", []string{`bad duration "0s"`, "Caddyfile:6"}},
		{"bad_max_queued", to + "max_queued -5", []string{`bad max_queued "-5"`, "Caddyfile:6"}},
		{"bad_max_queued_bytes", to + "max_queued_bytes lots", []string{`bad size "lots" for max_queued_bytes`, "Caddyfile:6"}},
		{"bad_partitions", to + "partitions none", []string{`bad partitions "none"`, "Caddyfile:6"}},
		{"too_many_partitions", to + "partitions 5000", []string{"partitions must be positive", "Caddyfile:4"}},
		{"tls_ca_no_file", to + "tls_ca", []string{"wrong argument count", "Caddyfile:6"}},
		{"tls_insecure_with_arg", to + "tls_insecure_skip_verify yes", []string{"wrong argument count", "Caddyfile:6"}},
		{"header_up_one_arg", to + "header_up X-Only", []string{"wrong argument count", "Caddyfile:6"}},
		{"header_up_bad_name", to + "header_up \"X Bad\" v", []string{`header_up "X Bad": not a header name`, "Caddyfile:4"}},
		{"dead_on_2xx", to + "dead_on 400 204", []string{`bad dead_on status "204"`, "Caddyfile:6"}},
		{"dead_on_word", to + "dead_on gone", []string{`bad dead_on status "gone"`, "Caddyfile:6"}},
		{"answer_not_2xx", to + "answer 302", []string{`bad answer "302"`, "Caddyfile:6"}},
		{"bad_durability", to + "durability fsync", []string{`bad durability "fsync"`, "Caddyfile:6"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := queueSite(c.block)
			want := c.want
			switch c.name {
			case "queue_with_argument":
				src = strings.Replace(queueSite(to), "queue {", "queue orders {", 1)
				want = []string{"queue takes no arguments", "Caddyfile:4"}
			case "second_queue":
				src = strings.Replace(queueSite(to), "\t\tqueue {", "\t\tqueue {\n"+to+"\n\t\t}\n\t\tqueue {", 1)
				want = []string{"a second queue block", "Caddyfile:8"}
			}
			_, err := gatewaytest.Adapt(src)
			if err == nil {
				t.Fatalf("adapted without error:\n%s", src)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestQueueCaddyfileValues: what each option becomes in the JSON.
func TestQueueCaddyfileValues(t *testing.T) {
	cases := []struct {
		name, block, json string
	}{
		{"retry_attempts_only", "retry 3", `"queue":{"attempts":3,"to"`},
		{"retry_first_delay", "retry 3 10s", `"queue":{"attempts":3,"first_delay":10000000000,"to"`},
		{"dead_retention_days", "dead_retention 14d", `"dead_retention":1209600000000000`},
		{"size_with_space", "max_queued_bytes 512 MB", `"max_queued_bytes":512000000`},
		{"rate_default_burst", "rate 50/s", `"rate":{"count":50,"period":1000000000}`},
		{"rate_per_minute_burst", "rate 100/m burst 20", `"rate":{"burst":20,"count":100,"period":60000000000}`},
		{"header_up_repeated", "header_up A 1\nheader_up B \"two words\"", `"header_up":[{"name":"A","value":"1"},{"name":"B","value":"two words"}]`},
		{"answer", "answer 202", `"answer":202`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := adaptFormatted(queueSite("to http://app/hooks\n" + c.block))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(got), c.json) {
				t.Errorf("adapted JSON lacks %s:\n%s", c.json, got)
			}
		})
	}
}

// TestQueueRefusedWhereTheAnswerMatters: a provider that acts on the
// answer's body cannot be queued, at adapt time with the queue's line
// and at load time from JSON, and the error says why.
func TestQueueRefusedWhereTheAnswerMatters(t *testing.T) {
	cases := []struct {
		provider, secret, reason string
	}{
		{"discord", "e7fb2a2ad1e6f6fb0a1be5bae7e1b2c6c1ab8fc8f3cd4a8e2ba5b0ba7fd05d2b", "Discord shows the answer to an interaction"},
		{"twilio", "s", "Twilio follows the TwiML"},
		{"slack_commands", "s", "Slack shows the answer to a slash command"},
		{"slack_interactivity", "s", "Slack shows the answer to a slash command"},
	}
	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			src := "localhost {\n\twebhook_gateway " + c.provider + " {\n\t\tsecret " + c.secret + "\n\t\tqueue {\n\t\t\tto http://app/hooks\n\t\t}\n\t}\n}\n"
			_, err := gatewaytest.Adapt(src)
			if err == nil || !strings.Contains(err.Error(), "cannot be queued: "+c.reason) || !strings.Contains(err.Error(), "Caddyfile:4") {
				t.Errorf("adapt error %v, want the reason %q at Caddyfile:4", err, c.reason)
			}
			handler := `{"handler":"webhook_gateway","provider":"` + c.provider + `","secrets":["` + c.secret + `"],"queue":{"to":"http://app/hooks"}}`
			err = validateJSON(t, handler, handler)
			if err == nil || !strings.Contains(err.Error(), "cannot be queued: "+c.reason) {
				t.Errorf("load error %v, want the reason %q", err, c.reason)
			}
		})
	}
	// Slack's Events API is acknowledged with any 2xx: it can be queued.
	if _, err := gatewaytest.Adapt("localhost {\n\twebhook_gateway slack {\n\t\tsecret s\n\t\tqueue {\n\t\t\tto http://app/hooks\n\t\t}\n\t}\n}\n"); err != nil {
		t.Errorf("slack events refused: %v", err)
	}
}

// TestQueueSharedSource: two handlers with one source share one queue;
// the config loads only when their queue settings agree.
func TestQueueSharedSource(t *testing.T) {
	route := func(path, queue string) string {
		return "\troute " + path + " {\n\t\twebhook_gateway stripe {\n\t\t\tsecret s\n\t\t\tsource payments\n\t\t\tqueue {\n" + queue + "\n\t\t\t}\n\t\t}\n\t}\n"
	}
	cases := []struct {
		name, a, b string
		want       string // "" loads
	}{
		{"same_settings", "to http://app/hooks\nretry 3", "to http://app/hooks\nretry 3", ""},
		{"same_after_defaults", "to http://app/hooks\nretry 12", "to http://app/hooks", ""},
		{"other_to", "to http://app/hooks", "to http://other/hooks", `queue "payments": two handlers share this source with different queue settings (to http://app/hooks and http://other/hooks)`},
		{"other_retry", "to http://app/hooks\nretry 3", "to http://app/hooks\nretry 4", `queue "payments": two handlers share this source`},
		{"replicated_in_memory", "to http://app/hooks\ndurability replicated", "to http://app/hooks\ndurability replicated", `queue "payments": durability replicated needs redis`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := adaptFormatted("localhost {\n" + route("/a", c.a) + route("/b", c.b) + "}\n")
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			err = validateConfig(t, cfg)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// adaptFormatted adapts a Caddyfile pasted from pieces, formatted first
// so that the adapter's style warning stays out of the way.
func adaptFormatted(src string) ([]byte, error) {
	return gatewaytest.Adapt(string(caddyfile.Format([]byte(src))))
}

// validateJSON provisions a config of the handlers given, each in a
// route of its own, as loading it would, without serving it.
func validateJSON(t *testing.T, handlers ...string) error {
	t.Helper()
	var routes []string
	for _, h := range handlers {
		routes = append(routes, `{"handle":[`+h+`]}`)
	}
	cfg := `{"admin":{"disabled":true},"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[` + strings.Join(routes, ",") + `]}}}}}`
	return validateConfig(t, []byte(cfg))
}

func validateConfig(t *testing.T, cfg []byte) error {
	t.Helper()
	var parsed caddy.Config
	if err := json.Unmarshal(cfg, &parsed); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&parsed)
}
