package provider

import (
	"net/http"
	"testing"
	"time"
)

// TestHMACVerifyAllocs holds the hot path to its promise: verifying an
// HMAC delivery allocates nothing (Linear's body timestamp excepted:
// gjson copies what it reads from bytes).
func TestHMACVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, name := range []string{"stripe", "github", "standard_webhooks", "slack", "persona", "box", "docusign", "linear"} {
		p := mustLookup(name)
		secret := "whsec_ZnV6ei1zZWNyZXQ="
		m := testMessage(p, time.Unix(1700000000, 0))
		if err := p.Scheme.Sign(secret, &m); err != nil {
			t.Fatal(err)
		}
		v, err := p.NewVerifier(VerifierConfig{Secrets: []string{secret}})
		if err != nil {
			t.Fatal(err)
		}
		r := &Request{Method: m.Method, URL: m.URL, Header: http.Header(m.Header), Body: m.Body, Now: time.Unix(1700000000, 0)}
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := testing.AllocsPerRun(100, func() { v.Verify(r) }); n > 0 && name != "linear" {
			t.Errorf("%s: %v allocations per verification", name, n)
		}
	}
}
