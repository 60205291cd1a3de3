// Package vectors loads the signature test vectors in testdata/vectors.json,
// which come from the providers' own SDKs and docs (official) or were
// derived from their documented algorithms.
package vectors

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Vector is one signed (or forged) delivery and the verdict expected.
type Vector struct {
	Provider        string            `json:"provider"`
	Secret          string            `json:"secret"`
	SecondarySecret string            `json:"secondary_secret,omitempty"`
	PublicCertPEM   string            `json:"public_cert_pem,omitempty"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	URL             string            `json:"url,omitempty"`
	Method          string            `json:"method,omitempty"`
	ExpectedValid   bool              `json:"expected_valid"`
	Now             *int64            `json:"now"`
	SourceRepo      string            `json:"source_repo"`
	SourcePath      string            `json:"source_path"`
	Notes           string            `json:"notes"`
	Official        bool              `json:"official"`
}

// aliases maps the vector file's provider labels to registry names where
// they differ by more than dashes.
var aliases = map[string]string{
	"adyen-notification":  "adyen",
	"adyen-banking":       "adyen_platform",
	"adyen-platform":      "adyen_platform",
	"coinbase-commerce":   "coinbase",
	"lemonsqueezy":        "lemon_squeezy",
	"qonto":               "qonto_onboarding",
	"qonto-onboarding":    "qonto_onboarding",
	"zoom-url-validation": "zoom",
	"frame.io":            "frameio",
	"terraform-cloud":     "terraform",
	"trend-micro":         "trendmicro_conformity",
	"microsoft-teams":     "microsoft_teams",
}

// handshakes are the labels of vectors that test an endpoint challenge's
// answer rather than a signature.
var handshakes = map[string]bool{"zoom-url-validation": true}

// IsHandshake reports whether the vector tests a challenge's answer.
func (v *Vector) IsHandshake() bool { return handshakes[v.Provider] }

// ProviderName is the registry name the vector's provider goes by.
func (v *Vector) ProviderName() string {
	if name, ok := aliases[v.Provider]; ok {
		return name
	}
	return strings.ReplaceAll(v.Provider, "-", "_")
}

// Header returns the vector's headers as an http.Header.
func (v *Vector) Header() http.Header {
	h := http.Header{}
	for k, val := range v.Headers {
		h.Set(k, val)
	}
	return h
}

// Clock is the time to verify at: the vector's pinned time, or the real
// clock when it has none.
func (v *Vector) Clock() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return time.Unix(*v.Now, 0)
}

// Name is a stable, readable subtest name.
func (v *Vector) Name(i int) string {
	verdict := "invalid"
	if v.ExpectedValid {
		verdict = "valid"
	}
	return fmt.Sprintf("%02d_%s_%s", i, v.Provider, verdict)
}

// Load reads testdata/vectors.json from the repository root.
func Load() ([]Vector, error) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "vectors.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading vectors: %w", err)
	}
	var vs []Vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		return nil, fmt.Errorf("decoding vectors: %w", err)
	}
	return vs, nil
}
