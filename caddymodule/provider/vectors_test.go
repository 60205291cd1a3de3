package provider

import (
	"errors"
	"testing"

	"github.com/webrev/webhook-gateway/internal/vectors"
)

// TestVectors runs every vector whose provider is registered through the
// provider's verifier with the vector's clock.
func TestVectors(t *testing.T) {
	vs, err := vectors.Load()
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for i, v := range vs {
		p, ok := Lookup(v.ProviderName())
		if !ok {
			continue
		}
		ran++
		t.Run(v.Name(i), func(t *testing.T) {
			secrets := []string{v.Secret}
			if v.SecondarySecret != "" {
				secrets = append(secrets, v.SecondarySecret)
			}
			ver, err := p.NewVerifier(VerifierConfig{Secrets: secrets})
			if err != nil {
				t.Fatalf("building verifier: %v", err)
			}
			_, err = ver.Verify(&Request{
				Method: orDefault(v.Method, "POST"), URL: v.URL, Header: v.Header(),
				Body: []byte(v.Body), Now: v.Clock(),
			})
			if v.ExpectedValid && err != nil {
				t.Fatalf("want valid, got %v (notes: %s)", err, v.Notes)
			}
			if !v.ExpectedValid {
				var perr *Error
				if !errors.As(err, &perr) {
					t.Fatalf("want a refusal, got %v (notes: %s)", err, v.Notes)
				}
			}
		})
	}
	if ran < 13 {
		t.Fatalf("ran %d vectors, want at least 13", ran)
	}
}
