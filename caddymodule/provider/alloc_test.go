package provider

import (
	"net/http"
	"runtime"
	"strings"
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

// TestClientStateBoundsMemory: a batch far past maxNotifications is
// refused before its notifications are read into memory, and the
// repeated-key check reads the rest without boxing every value, so that
// an unauthenticated 1 MiB body costs about its own size, not tens or
// hundreds of times it.
func TestClientStateBoundsMemory(t *testing.T) {
	v, err := mustLookup("microsoft_graph").NewVerifier(VerifierConfig{Secrets: []string{"state"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		body string
	}{
		{"empty objects", `{"value":[` + strings.Repeat(`{},`, 349_000) + `{}]}`},
		{"numbers", `{"value":[` + strings.Repeat(`1,`, 520_000) + `1]}`},
		{"numbers beside one notification", `{"value":[{"clientState":"guess"}],"x":[` + strings.Repeat(`1,`, 520_000) + `1]}`},
		{"strings beside one notification", `{"value":[{"clientState":"guess"}],"x":[` + strings.Repeat(`"s",`, 260_000) + `"s"]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Request{Method: "POST", Header: http.Header{}, Body: []byte(c.body)}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := v.Verify(r)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("verified")
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 2*uint64(len(c.body)) {
				t.Fatalf("refusing a %d-byte body allocated %d bytes", len(c.body), got)
			}
		})
	}
}
