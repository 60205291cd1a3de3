package caddymodule_test

import (
	"strings"
	"testing"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

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
