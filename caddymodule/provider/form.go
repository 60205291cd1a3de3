package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxFormParams bounds the parameters read from a signed form.
const maxFormParams = 1000

// Form is the scheme of providers that sign the public URL followed by
// the POSTed form parameters, sorted by name, each written as name then
// value (Twilio, Mandrill). Bodies that are not forms add nothing.
type Form struct {
	// Header names the signature header. Required.
	Header string `json:"header"`

	// Algorithm is sha1, sha256 or sha512. Default: sha1.
	Algorithm Algorithm `json:"algorithm,omitempty"`

	// Encoding is hex or base64. Default: base64.
	Encoding Encoding `json:"encoding,omitempty"`

	// PortVariants also tries the URL without its port and with the
	// scheme's default port, since Twilio signs either form.
	PortVariants bool `json:"port_variants,omitempty"`

	// BodyHashParam names a query parameter holding the hex SHA-256 of a
	// body that is not a form (Twilio's bodySHA256): the parameter must
	// match the body, and the URL alone is signed.
	BodyHashParam string `json:"body_hash_param,omitempty"`
}

func (s *Form) layout() *HMAC {
	return &HMAC{
		Header:    []string{s.Header},
		Algorithm: Algorithm(orDefault(string(s.Algorithm), string(SHA1))),
		Encoding:  Encoding(orDefault(string(s.Encoding), string(Base64))),
	}
}

// Describe implements Scheme.
func (s *Form) Describe() Description {
	d := s.layout().Describe()
	d.Kind += "/form"
	return d
}

// NewVerifier implements Scheme.
func (s *Form) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	c, err := s.layout().compile()
	if err != nil {
		return nil, fmt.Errorf("form scheme: %w", err)
	}
	keys, err := decodeKeys(SecretRaw, cfg.Secrets)
	if err != nil {
		return nil, err
	}
	return &formVerifier{s: s, c: c, keys: keys}, nil
}

// Sign implements Scheme.
func (s *Form) Sign(secret string, m *Message) error {
	c, err := s.layout().compile()
	if err != nil {
		return fmt.Errorf("form scheme: %w", err)
	}
	if secret == "" {
		return fmt.Errorf("secret is empty")
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	params, err := s.params(m.URL, m.Header, m.Body)
	if err != nil {
		return err
	}
	mac := hmac.New(c.newHash, []byte(secret))
	writeFormContent(mac, m.URL, params)
	m.Header.Set(c.headers[0], c.encode(mac.Sum(nil)))
	return nil
}

type formVerifier struct {
	s    *Form
	c    *compiled
	keys [][]byte
}

func (v *formVerifier) Verify(r *Request) (Verified, error) {
	name := v.c.headers[0]
	sig := strings.TrimSpace(headerValue(r.Header, name))
	if sig == "" {
		return Verified{}, refuse(ReasonMissingSignature, "header %s is missing", name)
	}
	var want [64]byte
	n, ok := v.c.decode(want[:], sig)
	if !ok || n != v.c.sigBytes {
		return Verified{}, refuse(ReasonMalformedSignature, "header %s holds no well-formed signature", name)
	}
	params, err := v.s.params(r.URL, r.Header, r.Body)
	if err != nil {
		return Verified{}, err
	}
	for _, u := range v.urls(r.URL) {
		for _, key := range v.keys {
			mac := hmac.New(v.c.newHash, key)
			writeFormContent(mac, u, params)
			if hmac.Equal(mac.Sum(nil), want[:n]) {
				return Verified{}, nil
			}
		}
	}
	return Verified{}, refuse(ReasonSignatureMismatch, "header %s does not match a configured secret", name)
}

func (v *formVerifier) urls(raw string) []string {
	if !v.s.PortVariants {
		return []string{raw}
	}
	return portVariants(raw)
}

// params returns the signed parameters: the form fields, or none when a
// body hash in the URL stands for the body.
func (s *Form) params(rawURL string, h http.Header, body []byte) (url.Values, error) {
	if s.BodyHashParam != "" {
		if u, err := url.Parse(rawURL); err == nil && u.Query().Has(s.BodyHashParam) {
			return nil, checkBodyHash(u.Query().Get(s.BodyHashParam), body, s.BodyHashParam)
		}
	}
	ct := h.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return nil, nil
	}
	return parseForm(body)
}

func checkBodyHash(param string, body []byte, name string) error {
	sum := sha256.Sum256(body)
	got, err := hex.DecodeString(param)
	if err != nil || subtle.ConstantTimeCompare(got, sum[:]) != 1 {
		return refuse(ReasonSignatureMismatch, "query parameter %s does not match the body", name)
	}
	return nil
}

// parseForm reads a urlencoded body, refusing one that does not parse or
// has more parameters than any provider sends.
func parseForm(body []byte) (url.Values, error) {
	if n := strings.Count(string(body), "&"); n >= maxFormParams {
		return nil, refuse(ReasonMalformedSignature, "form has more than %d parameters", maxFormParams)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, refuse(ReasonMalformedSignature, "body is not a valid form")
	}
	return vals, nil
}

// writeFormContent writes the URL and then, by sorted name, each name
// with each of its distinct values in sorted order, as Twilio's
// validator does.
func writeFormContent(w hash.Hash, u string, params url.Values) {
	io.WriteString(w, u)
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		values := slices.Clone(params[name])
		slices.Sort(values)
		for _, value := range slices.Compact(values) {
			io.WriteString(w, name)
			io.WriteString(w, value)
		}
	}
}

// portVariants is the URL as given, without its port, and with the
// scheme's default port.
func portVariants(raw string) []string {
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return out
	}
	if u.Port() != "" {
		u.Host = u.Hostname()
		return append(out, u.String())
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	u.Host += ":" + port
	return append(out, u.String())
}

// Interface guards
var (
	_ Scheme   = (*Form)(nil)
	_ Verifier = (*formVerifier)(nil)
)
