package provider

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// TestCustomHMACEncodings: a generic `scheme hmac` verifies every hash in
// every written form a provider may use, padded base64 of SHA-512
// (whose padding once counted as two bytes too many) included.
func TestCustomHMACEncodings(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	forms := []struct {
		name     string
		encoding Encoding
		write    func([]byte) string
	}{
		{"hex", Hex, hex.EncodeToString},
		{"hex upper", Hex, func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }},
		{"base64 padded", Base64, base64.StdEncoding.EncodeToString},
		{"base64 unpadded", Base64, base64.RawStdEncoding.EncodeToString},
	}
	for _, alg := range []Algorithm{SHA1, SHA256, SHA512} {
		for _, f := range forms {
			t.Run(string(alg)+"/"+f.name, func(t *testing.T) {
				s := &HMAC{Header: []string{"X-Sig"}, Algorithm: alg, Encoding: f.encoding}
				newHash, _ := alg.new()
				mac := hmac.New(newHash, []byte("s3cret"))
				mac.Write(body)
				sig := f.write(mac.Sum(nil))
				v, err := s.NewVerifier(VerifierConfig{Secrets: []string{"s3cret"}})
				if err != nil {
					t.Fatal(err)
				}
				r := &Request{Method: "POST", Header: http.Header{"X-Sig": {sig}}, Body: body, Now: testNow}
				if _, err := v.Verify(r); err != nil {
					t.Fatalf("genuine %s refused: %v", sig, err)
				}
				if f.encoding != Base64 {
					return
				}
				// Wrong padding is not a signature.
				for _, bad := range []string{strings.TrimRight(sig, "=") + "===", sig + "===="} {
					r.Header.Set("X-Sig", bad)
					if _, err := v.Verify(r); err == nil {
						t.Fatalf("badly padded %q verified", bad)
					}
				}
			})
		}
	}
}
