package caddymodule_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestKeyFetchCaddyfileErrors: mistakes in key_fetch and in the routes'
// key-fetch options are refused naming the token and its line.
func TestKeyFetchCaddyfileErrors(t *testing.T) {
	global := func(body string) string {
		return "{\n\twebhook_gateway {\n\t\tkey_fetch {\n" + body + "\n\t\t}\n\t}\n}\n"
	}
	route := func(body string) string { return "localhost {\n\twebhook_gateway " + body + "\n}\n" }
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown option", global("\t\t\tallow_all"), []string{`unknown key_fetch option "allow_all"`, "Caddyfile:4"}},
		{"allow with a scheme", global("\t\t\tallow keys.example.com https://keys.example.com"), []string{`allow "https://keys.example.com"`, "Caddyfile:4"}},
		{"allow with a path", global("\t\t\tallow keys.example.com/jwks"), []string{`allow "keys.example.com/jwks"`, "want a host", "Caddyfile:4"}},
		{"allow with a bad port", global("\t\t\tallow 127.0.0.1:99999"), []string{`bad port "99999"`, "Caddyfile:4"}},
		{"allow without a value", global("\t\t\tallow"), []string{"wrong argument count", "Caddyfile:4"}},
		{"timeout too long", global("\t\t\ttimeout 30s"), []string{"key_fetch timeout 30s is outside 2s..5s", "Caddyfile:4"}},
		{"timeout too short", global("\t\t\ttimeout 100ms"), []string{"outside 2s..5s", "Caddyfile:4"}},
		{"bad timeout", global("\t\t\ttimeout soon"), []string{`bad duration "soon"`, "Caddyfile:4"}},
		{"max_bytes too large", global("\t\t\tmax_bytes 2MiB"), []string{"key_fetch max_bytes 2097152 is above", "Caddyfile:4"}},
		{"bad max_bytes", global("\t\t\tmax_bytes lots"), []string{`bad size "lots"`, "Caddyfile:4"}},
		{"cache_entries zero", global("\t\t\tcache_entries 0"), []string{"cache_entries must be at least 1", "Caddyfile:4"}},
		{"tls_ca without a file", global("\t\t\ttls_ca"), []string{"wrong argument count", "Caddyfile:4"}},
		{"key_fetch twice", "{\n\twebhook_gateway {\n\t\tkey_fetch {\n\t\t}\n\t\tkey_fetch {\n\t\t}\n\t}\n}\n", []string{"key_fetch is set twice", "Caddyfile:5"}},
		{"option the provider does not read", route("stripe {\n\t\tsecret s\n\t\taudience https://example.com/hook\n\t}"), []string{"provider stripe does not read audience", "Caddyfile:4"}},
		{"topics on a provider without topics", route("github {\n\t\tsecret s\n\t\ttopics arn:aws:sns:us-east-1:1:t\n\t}"), []string{"provider github does not read topics", "Caddyfile:4"}},
		{"unread option after read ones", route("fetched_key_test {\n\t\tkeys_url https://k.example/key.pem\n\t\tclient_id c\n\t}"), []string{"provider fetched_key_test does not read client_id", "Caddyfile:4"}},
		{"topics without a value", route("fetched_key_test {\n\t\ttopics\n\t}"), []string{"wrong argument count", "Caddyfile:3"}},
		{"keys_url twice", route("fetched_key_test {\n\t\tkeys_url https://a.example/k.pem\n\t\tkeys_url https://b.example/k.pem\n\t}"), []string{"keys_url is set twice", "Caddyfile:4"}},
		{"service_account without a value", route("stripe {\n\t\tsecret s\n\t\tservice_account\n\t}"), []string{"wrong argument count", "Caddyfile:4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := gatewaytest.Adapt(c.src)
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

// TestKeyFetchCaddyfileValues: the options land in the JSON config;
// topics append; a secretless provider needs no secret.
func TestKeyFetchCaddyfileValues(t *testing.T) {
	src := `{
	webhook_gateway {
		key_fetch {
			allow keys.example.com 127.0.0.1:8443
			allow [::1]:9443
			timeout 4s
			max_bytes 32KiB
			cache_entries 64
			tls_ca /etc/keys-ca.pem
		}
	}
}
localhost {
	webhook_gateway fetched_key_test {
		keys_url https://keys.example.com/key.pem
		topics arn:one arn:two
		topics {env.WG_TOPIC}
	}
}
`
	got, err := gatewaytest.Adapt(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"key_fetch":{"allow":["keys.example.com","127.0.0.1:8443","[::1]:9443"],"timeout":4000000000,"max_bytes":32768,"cache_entries":64,"tls_ca":"/etc/keys-ca.pem"}`,
		`"topics":["arn:one","arn:two","{env.WG_TOPIC}"]`,
		`"keys_url":"https://keys.example.com/key.pem"`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("adapted JSON lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), `"secrets"`) {
		t.Errorf("a secret appeared from nowhere:\n%s", got)
	}
}

// TestKeyFetchProvisionErrors: JSON that bypasses the Caddyfile's checks
// is refused when loaded, and the key-fetch options' placeholders are
// resolved then.
func TestKeyFetchProvisionErrors(t *testing.T) {
	cases := []struct {
		name, handler, app, want string
	}{
		{"option not read", `{"handler":"webhook_gateway","provider":"stripe","secrets":["x"],"service_account":"a@b.iam.gserviceaccount.com"}`, "", "provider stripe does not read service_account"},
		{"topic placeholder unset", `{"handler":"webhook_gateway","provider":"fetched_key_test","keys_url":"https://k.example/key.pem","topics":["arn:a","{env.WG_TEST_UNSET_VAR}"]}`, "", "topics #2: environment variable WG_TEST_UNSET_VAR is not set"},
		{"keys_url placeholder unset", `{"handler":"webhook_gateway","provider":"fetched_key_test","keys_url":"{env.WG_TEST_UNSET_VAR}"}`, "", "keys_url: environment variable WG_TEST_UNSET_VAR is not set"},
		{"secretless provider's secret placeholder unset", `{"handler":"webhook_gateway","provider":"fetched_key_test","keys_url":"https://k.example/key.pem","secrets":["{env.WG_TEST_UNSET_VAR}"]}`, "", "secret #1: environment variable WG_TEST_UNSET_VAR is not set"},
		{"key_fetch timeout", `{"handler":"webhook_gateway","provider":"stripe","secrets":["x"]}`, `{"key_fetch":{"timeout":60000000000}}`, "key_fetch: timeout 1m0s is outside 2s..5s"},
		{"key_fetch tls_ca missing", `{"handler":"webhook_gateway","provider":"stripe","secrets":["x"]}`, `{"key_fetch":{"tls_ca":"/nonexistent/ca.pem"}}`, "key_fetch: tls_ca: open /nonexistent/ca.pem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			apps := `"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` + c.handler + `]}]}}}`
			if c.app != "" {
				apps = `"webhook_gateway":` + c.app + `,` + apps
			}
			var parsed caddy.Config
			if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{`+apps+`}}`), &parsed); err != nil {
				t.Fatal(err)
			}
			err := caddy.Validate(&parsed)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}
