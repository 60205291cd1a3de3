package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/caddyfile")

// TestAdaptGolden pins `caddy adapt` output for the Caddyfiles in
// testdata/caddyfile and for Caddyfile.example.
func TestAdaptGolden(t *testing.T) {
	inputs, _ := filepath.Glob("../testdata/caddyfile/*.caddyfile")
	inputs = append(inputs, "../Caddyfile.example")
	if len(inputs) < 4 {
		t.Fatalf("found only %d Caddyfiles", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".caddyfile")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gatewaytest.Adapt(string(src))
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("../testdata/caddyfile", name+".json")
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("adapted JSON differs from %s (run with -update after checking):\n%s", golden, pretty.Bytes())
			}
		})
	}
}

// TestCaddyfileErrorsNameTheToken checks that config mistakes are
// refused with a message that names the bad token and its line.
func TestCaddyfileErrorsNameTheToken(t *testing.T) {
	// A block starting with "global:" goes in the global options.
	cases := []struct {
		name, block string
		want        []string
	}{
		{"redis_unknown_option", "global:redis {\n url redis://x\n sentinel x\n }", []string{`unknown redis option "sentinel"`}},
		{"redis_no_server", "global:redis {\n cluster\n }", []string{"redis needs a URL or addresses"}},
		{"unknown_provider", "webhook_gateway stripee {\n secret s\n}", []string{`unknown provider "stripee"`, "Caddyfile:2"}},
		{"no_provider", "webhook_gateway {\n secret s\n}", []string{"needs a provider name"}},
		{"missing_secret", "webhook_gateway stripe {\n tolerance 5m\n}", []string{"provider stripe: no secret configured"}},
		{"bad_duration", "webhook_gateway stripe {\n secret s\n tolerance fivem\n}", []string{`bad tolerance "fivem"`, "Caddyfile:4"}},
		{"negative_duration", "webhook_gateway stripe {\n secret s\n tolerance -5m\n}", []string{`bad tolerance "-5m"`}},
		{"bad_size", "webhook_gateway stripe {\n secret s\n max_body lots\n}", []string{`bad size "lots" for max_body`, "Caddyfile:4"}},
		{"bad_size_two_tokens", "webhook_gateway stripe {\n secret s\n max_body 1 MeB\n}", []string{`bad size "1 MeB" for max_body`, "Caddyfile:4"}},
		{"size_too_many_tokens", "webhook_gateway stripe {\n secret s\n max_body 1 Mi B\n}", []string{"max_body wants one size", "got 3 arguments", "Caddyfile:4"}},
		{"refusal_status_2xx", "webhook_gateway stripe {\n secret s\n refusal_status 200\n}", []string{"refusal_status 200 is not a 4xx status", "Caddyfile:4"}},
		{"refusal_status_5xx", "webhook_gateway stripe {\n secret s\n refusal_status 503\n}", []string{"refusal_status 503 is not a 4xx status", "Caddyfile:4"}},
		{"unknown_option", "webhook_gateway stripe {\n secret s\n secrte t\n}", []string{`unknown webhook_gateway option "secrte"`, "Caddyfile:4"}},
		{"public_key_as_hmac_secret", "webhook_gateway standard_webhooks {\n secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n secret QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n}", []string{"secret #2 ", "whpk_", "Caddyfile:2"}},
		{"unknown_scheme", "webhook_gateway acme {\n secret s\n scheme rot13 {\n }\n}", []string{`unknown scheme "rot13"`}},
		{"bad_algorithm", "webhook_gateway acme {\n secret s\n scheme hmac {\n header X-Sig\n algorithm md5\n }\n}", []string{`unknown algorithm "md5"`}},
		{"bad_template", "webhook_gateway acme {\n secret s\n scheme hmac {\n header X-Sig\n content \"{bdy}\"\n }\n}", []string{"unknown field {bdy}"}},
		{"scheme_without_header", "webhook_gateway acme {\n secret s\n scheme hmac {\n algorithm sha1\n }\n}", []string{"header is required"}},
		{"token_scheme_unknown_option", "webhook_gateway acme {\n secret s\n scheme token {\n header X-Token\n sign sha1\n }\n}", []string{`unknown token scheme option "sign"`, "Caddyfile:6"}},
		{"token_scheme_without_header", "webhook_gateway acme {\n secret s\n scheme token {\n prefix Bearer\n }\n}", []string{"header or query is required"}},
		{"two_scheme_blocks", "webhook_gateway acme {\n secret s\n scheme token {\n header X-Token\n }\n scheme hmac {\n header X-Sig\n }\n}", []string{"a second scheme block", "Caddyfile:7"}},
		{"bad_event_source", "webhook_gateway stripe {\n secret s\n event_id cookie id\n}", []string{`bad source "cookie"`}},
		{"global_unknown", "global:redis_url x", []string{`unknown webhook_gateway global option "redis_url"`}},
		{"bad_rate", "webhook_gateway stripe {\n secret s\n rate_limit fifty/s\n}", []string{`bad rate "fifty/s"`, "Caddyfile:4"}},
		{"bad_rate_unit", "webhook_gateway stripe {\n secret s\n rate_limit 50/d\n}", []string{`bad rate unit "d"`}},
		{"bad_burst", "webhook_gateway stripe {\n secret s\n rate_limit 50/s burst -1\n}", []string{`bad burst "-1"`}},
		{"rate_dangling_option", "webhook_gateway stripe {\n secret s\n flood_limit 50/s burst\n}", []string{"wrong argument count"}},
		{"rate_unknown_option", "webhook_gateway stripe {\n secret s\n rate_limit 50/s per ip\n}", []string{`unknown rate limit option "per"`}},
		{"bad_retention", "webhook_gateway stripe {\n secret s\n idempotency forever\n}", []string{`bad idempotency retention "forever"`}},
		{"bad_idempotency_option", "webhook_gateway stripe {\n secret s\n idempotency 1h {\n ttl 2h\n }\n}", []string{`unknown idempotency option "ttl"`}},
		{"bad_on_store_error", "webhook_gateway stripe {\n secret s\n on_store_error ignore\n}", []string{`bad on_store_error "ignore"`}},
		{"bad_store_status", "webhook_gateway stripe {\n secret s\n idempotency 1h {\n store_status 2xx 503\n }\n}", []string{`store_status "503"`, "always release", "Caddyfile:5"}},
		{"empty_store_status", "webhook_gateway stripe {\n secret s\n idempotency 1h {\n store_status\n }\n}", []string{"wrong argument count", "Caddyfile:5"}},
		{"bad_lease", "webhook_gateway stripe {\n secret s\n idempotency 1h {\n lease soon\n }\n}", []string{`bad duration "soon"`}},
		{"keep_credentials_takes_no_argument", "webhook_gateway gitlab {\n secret s\n keep_credentials yes\n}", []string{"wrong argument count", "Caddyfile:4"}},
		{"default_key_unsigned_github", "webhook_gateway github {\n secret s\n idempotency 1h\n}", []string{"github signs no event id", "key {webhook.body_sha256}", "Caddyfile:4"}},
		{"default_key_unsigned_shopify", "webhook_gateway shopify {\n secret s\n idempotency 1h {\n lease 30s\n }\n}", []string{"shopify signs no event id", "Caddyfile:4"}},
		{"default_key_unsigned_telegram", "webhook_gateway telegram {\n secret s\n idempotency 1h\n}", []string{"telegram signs no event id", "Caddyfile:4"}},
		{"default_key_unsigned_twilio_no_body_hash_advice", "webhook_gateway twilio {\n secret s\n idempotency 1h\n}", []string{"twilio signs no event id", "accepting that risk"}},
		{"body_hash_key_twilio", "webhook_gateway twilio {\n secret s\n idempotency 1h {\n key {webhook.body_sha256}\n }\n}", []string{"twilio does not sign every byte of the body", "Caddyfile:4"}},
		{"body_hash_key_mailgun", "webhook_gateway mailgun {\n secret s\n idempotency 1h {\n key \"{webhook.body_sha256}\"\n }\n}", []string{"mailgun does not sign every byte of the body"}},
		{"key_fetch_unknown_option", "global:key_fetch {\n allow_all\n }", []string{`unknown key_fetch option "allow_all"`, "Caddyfile:4"}},
		{"key_fetch_allow_scheme", "global:key_fetch {\n allow keys.example.com https://keys.example.com\n }", []string{`allow "https://keys.example.com"`, "Caddyfile:4"}},
		{"key_fetch_allow_path", "global:key_fetch {\n allow keys.example.com/jwks\n }", []string{`allow "keys.example.com/jwks"`, "want a host", "Caddyfile:4"}},
		{"key_fetch_allow_bad_port", "global:key_fetch {\n allow 127.0.0.1:99999\n }", []string{`bad port "99999"`, "Caddyfile:4"}},
		{"key_fetch_allow_empty", "global:key_fetch {\n allow\n }", []string{"wrong argument count", "Caddyfile:4"}},
		{"key_fetch_timeout_long", "global:key_fetch {\n timeout 30s\n }", []string{"key_fetch timeout 30s is outside 2s..5s", "Caddyfile:4"}},
		{"key_fetch_timeout_short", "global:key_fetch {\n timeout 100ms\n }", []string{"outside 2s..5s", "Caddyfile:4"}},
		{"key_fetch_bad_timeout", "global:key_fetch {\n timeout soon\n }", []string{`bad duration "soon"`, "Caddyfile:4"}},
		{"key_fetch_max_bytes_large", "global:key_fetch {\n max_bytes 2MiB\n }", []string{"key_fetch max_bytes 2097152 is above", "Caddyfile:4"}},
		{"key_fetch_bad_max_bytes", "global:key_fetch {\n max_bytes lots\n }", []string{`bad size "lots"`, "Caddyfile:4"}},
		{"key_fetch_cache_entries_zero", "global:key_fetch {\n cache_entries 0\n }", []string{"cache_entries must be at least 1", "Caddyfile:4"}},
		{"key_fetch_tls_ca_empty", "global:key_fetch {\n tls_ca\n }", []string{"wrong argument count", "Caddyfile:4"}},
		{"key_fetch_twice", "global:key_fetch {\n }\n key_fetch {\n }", []string{"key_fetch is set twice", "Caddyfile:5"}},
		{"key_option_not_read", "webhook_gateway stripe {\n secret s\n audience https://example.com/hook\n}", []string{"provider stripe does not read audience", "Caddyfile:4"}},
		{"topics_not_read", "webhook_gateway github {\n secret s\n topics arn:aws:sns:us-east-1:1:t\n}", []string{"provider github does not read topics", "Caddyfile:4"}},
		{"key_option_not_read_after_read_ones", "webhook_gateway fetched_key_test {\n keys_url https://k.example/key.pem\n client_id c\n}", []string{"provider fetched_key_test does not read client_id", "Caddyfile:4"}},
		{"topics_empty", "webhook_gateway fetched_key_test {\n topics\n}", []string{"wrong argument count", "Caddyfile:3"}},
		{"keys_url_twice", "webhook_gateway fetched_key_test {\n keys_url https://a.example/k.pem\n keys_url https://b.example/k.pem\n}", []string{"keys_url is set twice", "Caddyfile:4"}},
		{"sns_keys_url", "webhook_gateway sns {\n topics arn:aws:sns:us-east-1:1:t\n keys_url https://k.example/k.pem\n}", []string{"provider sns does not read keys_url", "Caddyfile:4"}},
		{"service_account_empty", "webhook_gateway stripe {\n secret s\n service_account\n}", []string{"wrong argument count", "Caddyfile:4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "localhost {\n" + c.block + "\n}\n"
			if global, ok := strings.CutPrefix(c.block, "global:"); ok {
				src = "{\n\twebhook_gateway {\n" + global + "\n\t}\n}\n"
			}
			_, err := gatewaytest.Adapt(src)
			if err == nil {
				t.Fatal("adapted without error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestCaddyfileSizes: a size may be written as one token or, as people
// write it, with a space before the unit.
func TestCaddyfileSizes(t *testing.T) {
	cases := []struct {
		name, option, json string
	}{
		{"one_token", "max_body 1MiB", `"max_body":1048576`},
		{"with_space", "max_body 1 MiB", `"max_body":1048576`},
		{"decimal_unit", "max_body 2 MB", `"max_body":2000000`},
		{"log_body_with_space", "log_body 512 KiB", `"log_body":524288`},
		{"store_response_with_space", "idempotency 1h {\n\t\t\tstore_response 64 KiB\n\t\t}", `"store_response":65536`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := gatewaytest.Adapt("localhost {\n\twebhook_gateway stripe {\n\t\tsecret s\n\t\t" + c.option + "\n\t}\n}\n")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(got), c.json) {
				t.Errorf("adapted JSON lacks %s:\n%s", c.json, got)
			}
		})
	}
}

// TestProvisionErrors covers mistakes only visible when the config is
// loaded: placeholders that resolve to nothing, and JSON that bypasses
// the Caddyfile's checks. Every option resolved at start-up names
// itself and the variable that is not set.
func TestProvisionErrors(t *testing.T) {
	t.Setenv("WG_TEST_EMPTY", "")
	const stripe = `{"handler":"webhook_gateway","provider":"stripe","secrets":["x"]`
	cases := []struct {
		name, handler string
		app           string // the webhook_gateway app's JSON, if any
		want          string
	}{
		{"env_secret_unset", `{"handler":"webhook_gateway","provider":"stripe","secrets":["{env.WG_TEST_UNSET_VAR}"]}`, "", "provider stripe: secret #1: environment variable WG_TEST_UNSET_VAR is not set"},
		{"env_secret_blank", `{"handler":"webhook_gateway","provider":"stripe","secrets":["x","{env.WG_TEST_EMPTY}"]}`, "", "secret #2 ({env.WG_TEST_EMPTY}) resolved to an empty value"},
		{"file_secret_missing", `{"handler":"webhook_gateway","provider":"stripe","secrets":["{file./nonexistent/secret}"]}`, "", "secret #1: reading {file./nonexistent/secret}"},
		{"env_verify_token_unset", `{"handler":"webhook_gateway","provider":"meta","secrets":["x"],"verify_token":"{env.WG_TEST_UNSET_VAR}"}`, "", "provider meta: verify_token: environment variable WG_TEST_UNSET_VAR is not set"},
		{"env_webhook_id_unset", `{"handler":"webhook_gateway","provider":"paypal","secrets":["x"],"webhook_id":"{env.WG_TEST_UNSET_VAR}"}`, "", "provider paypal: webhook_id: environment variable WG_TEST_UNSET_VAR is not set"},
		{"env_public_url_unset", stripe + `,"public_url":"https://{env.WG_TEST_UNSET_VAR}/x"}`, "", "public_url: environment variable WG_TEST_UNSET_VAR is not set"},
		{"redis_url_unset", stripe + "}", `{"redis":{"url":"{env.WG_TEST_UNSET_VAR}"}}`, "redis: url: environment variable WG_TEST_UNSET_VAR is not set"},
		{"redis_address_unset", stripe + "}", `{"redis":{"addresses":["{env.WG_TEST_UNSET_VAR}:6379"]}}`, "redis: addresses #1: environment variable WG_TEST_UNSET_VAR is not set"},
		{"redis_username_unset", stripe + "}", `{"redis":{"url":"redis://127.0.0.1:1","username":"{env.WG_TEST_UNSET_VAR}"}}`, "redis: username: environment variable WG_TEST_UNSET_VAR is not set"},
		{"redis_password_unset", stripe + "}", `{"redis":{"url":"redis://127.0.0.1:1","password":"{env.WG_TEST_UNSET_VAR}"}}`, "redis: password: environment variable WG_TEST_UNSET_VAR is not set"},
		{"redis_password_file_missing", stripe + "}", `{"redis":{"url":"redis://127.0.0.1:1","password":"{file./nonexistent/pw}"}}`, "redis: password: reading {file./nonexistent/pw}"},
		{"redis_sentinel_master_unset", stripe + "}", `{"redis":{"addresses":["a:1"],"sentinel_master":"{env.WG_TEST_UNSET_VAR}"}}`, "redis: sentinel_master: environment variable WG_TEST_UNSET_VAR is not set"},
		{"redis_tls_server_name_unset", stripe + "}", `{"redis":{"url":"rediss://127.0.0.1:1","tls":{"server_name":"{env.WG_TEST_UNSET_VAR}"}}}`, "redis: tls: environment variable WG_TEST_UNSET_VAR is not set"},
		{"redis_tls_ca_unset", stripe + "}", `{"redis":{"url":"rediss://127.0.0.1:1","tls":{"ca":"{env.WG_TEST_UNSET_VAR}"}}}`, "redis: tls_ca: environment variable WG_TEST_UNSET_VAR is not set"},
		{"unknown_provider_json", `{"handler":"webhook_gateway","provider":"strip","secrets":["x"]}`, "", `unknown provider "strip"`},
		{"builtin_with_scheme", `{"handler":"webhook_gateway","provider":"github","secrets":["x"],"hmac":{"header":["X"]}}`, "", `provider "github" is built in`},
		{"builtin_with_token_scheme", `{"handler":"webhook_gateway","provider":"github","secrets":["x"],"token":{"header":"X-Token"}}`, "", `provider "github" is built in`},
		{"hmac_and_token_schemes", `{"handler":"webhook_gateway","provider":"acme","secrets":["x"],"hmac":{"header":["X-Sig"]},"token":{"header":"X-Token"}}`, "", "provider acme: one scheme block only (hmac or token)"},
		{"token_scheme_without_header_json", `{"handler":"webhook_gateway","provider":"acme","secrets":["x"],"token":{"prefix":"Bearer "}}`, "", "provider acme: token scheme: header or query is required"},
		{"bad_whsec_secret", `{"handler":"webhook_gateway","provider":"svix","secrets":["whsec_***"]}`, "", "secret #1: secret is not valid base64"},
		{"default_key_unsigned_json", `{"handler":"webhook_gateway","provider":"gitlab","secrets":["x"],"idempotency":{}}`, "", "gitlab signs no event id"},
		{"bad_refusal_status", `{"handler":"webhook_gateway","provider":"github","secrets":["x"],"refusal_status":200}`, "", "refusal_status 200 is not a 4xx status"},
		{"key_option_not_read", stripe + `,"service_account":"a@b.iam.gserviceaccount.com"}`, "", "provider stripe does not read service_account"},
		{"sns_without_topics", `{"handler":"webhook_gateway","provider":"sns"}`, "", "provider sns: sns scheme: topics is required"},
		{"env_topic_unset", `{"handler":"webhook_gateway","provider":"fetched_key_test","keys_url":"https://k.example/key.pem","topics":["arn:a","{env.WG_TEST_UNSET_VAR}"]}`, "", "topics #2: environment variable WG_TEST_UNSET_VAR is not set"},
		{"env_keys_url_unset", `{"handler":"webhook_gateway","provider":"fetched_key_test","keys_url":"{env.WG_TEST_UNSET_VAR}"}`, "", "keys_url: environment variable WG_TEST_UNSET_VAR is not set"},
		{"env_secret_of_secretless_unset", `{"handler":"webhook_gateway","provider":"fetched_key_test","keys_url":"https://k.example/key.pem","secrets":["{env.WG_TEST_UNSET_VAR}"]}`, "", "secret #1: environment variable WG_TEST_UNSET_VAR is not set"},
		{"key_fetch_timeout", stripe + "}", `{"key_fetch":{"timeout":60000000000}}`, "key_fetch: timeout 1m0s is outside 2s..5s"},
		{"key_fetch_tls_ca_missing", stripe + "}", `{"key_fetch":{"tls_ca":"/nonexistent/ca.pem"}}`, "key_fetch: tls_ca: open /nonexistent/ca.pem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			apps := `"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` + c.handler + `]}]}}}`
			if c.app != "" {
				apps = `"webhook_gateway":` + c.app + `,` + apps
			}
			cfg := `{"admin":{"disabled":true},"apps":{` + apps + `}}`
			var parsed caddy.Config
			if err := json.Unmarshal([]byte(cfg), &parsed); err != nil {
				t.Fatal(err)
			}
			err := caddy.Validate(&parsed)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "***") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestDefaultSourceCollision: two handlers written for one provider
// would share its default source (claims, rate buckets), so adapting
// refuses them, naming both lines; explicit sources, and one block
// served on several addresses, are fine.
func TestDefaultSourceCollision(t *testing.T) {
	bot := func(path, opts string) string {
		return "\troute " + path + " {\n\t\twebhook_gateway telegram {\n\t\t\tsecret s\n" + opts + "\t\t}\n\t\trespond 200\n\t}\n"
	}
	cases := []struct {
		name string
		src  string
		want []string // nil: adapts
	}{
		{"two_default_sources", "localhost {\n" + bot("/a", "") + bot("/b", "") + "}\n",
			[]string{"webhook_gateway telegram at Caddyfile:9", "the one at Caddyfile:3", `source "telegram"`, "explicit `source <name>`"}},
		{"two_sites", "a.localhost {\n" + bot("/a", "") + "}\nb.localhost {\n" + bot("/b", "") + "}\n",
			[]string{"at Caddyfile:11", "the one at Caddyfile:3"}},
		{"explicit_equals_default", "localhost {\n" + bot("/a", "") + bot("/b", "\t\t\tsource telegram\n") + "}\n",
			[]string{"at Caddyfile:9", "the one at Caddyfile:3"}},
		{"one_explicit", "localhost {\n" + bot("/a", "") + bot("/b", "\t\t\tsource bot_b\n") + "}\n", nil},
		{"both_explicit", "localhost {\n" + bot("/a", "\t\t\tsource bot_a\n") + bot("/b", "\t\t\tsource bot_b\n") + "}\n", nil},
		{"explicit_shared_on_purpose", "localhost {\n" + bot("/a", "\t\t\tsource bots\n") + bot("/b", "\t\t\tsource bots\n") + "}\n", nil},
		{"other_providers", "localhost {\n" + bot("/a", "") + "\troute /gh {\n\t\twebhook_gateway github {\n\t\t\tsecret s\n\t\t}\n\t}\n}\n", nil},
		{"one_block_two_addresses", "localhost:8443, localhost:9443, :8080 {\n" + bot("/a", "") + "}\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := gatewaytest.Adapt(c.src)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if n := strings.Count(string(cfg), `"handler":"webhook_gateway"`); n == 0 {
					t.Fatalf("no handler in the adapted config:\n%s", cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("adapted without error:\n%s", cfg)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
