package provider

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"
)

// BenchmarkVerify measures whole verifications of a 1 KiB delivery for a
// few layouts; BenchmarkBareHMAC is the floor they are held against
// (DESIGN: within 1.25x). Compare with:
//
//	go test -run '^$' -bench 'Verify|BareHMAC' -count 10 ./caddymodule/provider | benchstat -
func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"github", "stripe", "standard_webhooks", "slack", "shopify"} {
		b.Run(name, func(b *testing.B) {
			p := mustLookup(name)
			secret := "whsec_ZnV6ei1zZWNyZXQ="
			now := time.Unix(1700000000, 0)
			m := testMessage(p, now)
			m.Body = bytes.Repeat([]byte("a"), 1024)
			if err := p.Scheme.Sign(secret, &m); err != nil {
				b.Fatal(err)
			}
			v, err := p.NewVerifier(VerifierConfig{Secrets: []string{secret}})
			if err != nil {
				b.Fatal(err)
			}
			r := &Request{Method: m.Method, URL: m.URL, Header: http.Header(m.Header), Body: m.Body, Now: now}
			b.SetBytes(int64(len(m.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBareHMAC is what a hand-written verifier does at best: one
// pooled-free HMAC-SHA256 over the body and a constant-time compare of
// the decoded hex signature.
func BenchmarkBareHMAC(b *testing.B) {
	key := []byte("whsec_ZnV6ei1zZWNyZXQ=")
	body := bytes.Repeat([]byte("a"), 1024)
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	sig := hex.EncodeToString(mac.Sum(nil))
	var want, sum [sha256.Size]byte
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		mac.Reset()
		mac.Write(body)
		hex.Decode(want[:], []byte(sig))
		if !hmac.Equal(mac.Sum(sum[:0]), want[:]) {
			b.Fatal("mismatch")
		}
	}
}
