package provider

import (
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/internal/vectors"
)

// TestSignMatchesVectors cross-checks Sign with the providers' own
// signers: for every valid official vector of an HMAC or form scheme,
// signing the vector's delivery must reproduce one of its signatures.
func TestSignMatchesVectors(t *testing.T) {
	vs, err := vectors.Load()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, v := range vs {
		p, ok := Lookup(v.ProviderName())
		if !ok || !v.ExpectedValid || !v.Official || v.IsHandshake() {
			continue
		}
		var header string
		m := Message{Method: orDefault(v.Method, "POST"), URL: v.URL, Body: []byte(v.Body), Header: v.Header()}
		switch s := p.Scheme.(type) {
		case *HMAC:
			header = vectorLayout(t, s, &m)
		case *byKeyPrefix:
			header = vectorLayout(t, s.Scheme.(*HMAC), &m)
		case *Form:
			header = s.Header
		default:
			continue
		}
		if header == "" {
			continue
		}
		want := m.Header.Get(header)
		m.Header.Del(header)
		t.Run(v.Name(i), func(t *testing.T) {
			// Twilio signs its URL with or without the port.
			var signed []string
			for _, u := range portVariants(m.URL) {
				m.URL = u
				if err := p.Scheme.Sign(v.Secret, &m); err != nil {
					t.Fatal(err)
				}
				got := m.Header.Get(header)
				if strings.Contains(want, lastSignature(got)) {
					return
				}
				signed = append(signed, got)
			}
			t.Fatalf("signed %q, the provider's signer gave %q", signed, want)
		})
		checked++
	}
	if checked < 10 {
		t.Fatalf("cross-checked %d vectors, want at least 10", checked)
	}
}

// vectorLayout fills m's id and time from the vector's headers, as the
// provider's signer was given them, and names the signature header;
// empty when Sign cannot write the vector's time as it was written.
func vectorLayout(t *testing.T, s *HMAC, m *Message) string {
	c, err := s.compile()
	if err != nil {
		t.Fatal(err)
	}
	value, family := c.find(m.Header)
	if len(c.idHdrs) > 0 {
		m.ID = m.Header.Get(pick(c.idHdrs, family))
	}
	p := parsedHeader{family: family}
	_ = c.parse(value, &p)
	if c.HasTimestamp() {
		ts, err := c.timestamp(&Request{Header: m.Header, Body: m.Body}, &p)
		if err != nil {
			t.Fatal(err)
		}
		m.Timestamp = ts
		// Sign writes a time in one form; a vector whose sender wrote it
		// otherwise (Orb's zone-less milliseconds) is for TestVectors.
		if c.TimestampJSON == "" && c.TimestampFormat.format(ts) != p.timestamp {
			return ""
		}
	}
	// Sign writes the first family; move the vector there.
	for _, h := range [][]string{c.headers, c.tsHdrs, c.idHdrs} {
		if len(h) > family && family > 0 {
			m.Header.Set(h[0], m.Header.Get(h[family]))
			m.Header.Del(h[family])
		}
	}
	return c.headers[0]
}

// lastSignature is the signature part of a header value.
func lastSignature(v string) string {
	if i := strings.LastIndexAny(v, "=,"); i >= 0 && i < len(v)-1 && !strings.HasSuffix(v, "=") {
		return v[i+1:]
	}
	return v
}

// TestDiscordVectorSigner signs the Discord vector with the private seed
// its public key came from (0x01…0x20) and expects its signature.
func TestDiscordVectorSigner(t *testing.T) {
	p, _ := Lookup("discord")
	seed := ""
	for i := 1; i <= 32; i++ {
		seed += string("0123456789abcdef"[i>>4]) + string("0123456789abcdef"[i&15])
	}
	body := `{"id":"787053080478613555","token":"ThisIsATokenFromDiscordThatIsVeryLong","type":1,"version":1}`
	m := Message{Body: []byte(body), Timestamp: time.Unix(1700000000, 0)}
	if err := p.Scheme.Sign(seed, &m); err != nil {
		t.Fatal(err)
	}
	const want = "72eaa0f939f776dd53f2ede0f5d114121ba0ce34ef8f9c1520699879b1bacd07ab9a7eb89e549344416e8a7adcfd40c2730d13ecfc03d2a651a4b0d48170e401"
	if got := m.Header.Get("X-Signature-Ed25519"); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}
