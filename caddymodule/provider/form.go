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
// value (Twilio, Mandrill). A body that is neither a form nor covered by
// a body hash is signed by nothing, so it is refused.
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

	// SettingsHeader names a header that, when present, says which key
	// and hash signed the delivery in place of Algorithm: Twilio's
	// X-Twilio-Webhooks-Signature-Settings, "key=<SharedKey
	// SID>,algorithm=HMAC_SHA256". The signed content and the signature
	// header stay the same. Every configured secret is tried, so a
	// route lists the SharedKey's secret beside the auth token.
	SettingsHeader string `json:"settings_header,omitempty"`
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
	if s.SettingsHeader != "" {
		d.Headers = append(d.Headers, s.SettingsHeader)
	}
	// Nothing signed varies per delivery, and a form's fields can be
	// reordered or re-encoded, which changes a hash of its bytes.
	d.Replay = ReplayNone
	// A bodySHA256 signs a body whole; a form, only its fields.
	d.Body = BodyParts
	d.Credentials = Credentials{SignatureHeaders: []string{s.Header}}
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
	newHash, err := s.hash(c, m.Header)
	if err != nil {
		return err
	}
	params, covered, err := s.params(m.URL, m.Header, m.Body)
	if err != nil {
		return err
	}
	if covered == BodyParts && m.Header.Get("Content-Type") == "" {
		// The sender posts a form; said otherwise, the body would not be
		// read as the fields that were signed.
		m.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	mac := hmac.New(newHash, []byte(secret))
	writeFormContent(mac, m.URL, params)
	m.Header.Set(c.headers[0], c.encode(mac.Sum(nil)))
	return nil
}

// hash is the hash that signed a delivery: the one its settings header
// names, else the scheme's.
func (s *Form) hash(c *compiled, h http.Header) (func() hash.Hash, error) {
	if s.SettingsHeader == "" {
		return c.newHash, nil
	}
	settings, ok := h[http.CanonicalHeaderKey(s.SettingsHeader)]
	if !ok {
		return c.newHash, nil
	}
	if len(settings) != 1 {
		return nil, refuse(ReasonMalformedSignature, "header %s is repeated", s.SettingsHeader)
	}
	alg, err := parseSignatureSettings(settings[0])
	if err != nil {
		return nil, refuse(ReasonMalformedSignature, "header %s: %v", s.SettingsHeader, err)
	}
	return alg.new()
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
	newHash, err := v.s.hash(v.c, r.Header)
	if err != nil {
		return Verified{}, err
	}
	var want [64]byte
	n, ok := v.c.decode(want[:], sig)
	if !ok || n != newHash().Size() {
		return Verified{}, refuse(ReasonMalformedSignature, "header %s holds no well-formed signature", name)
	}
	params, body, err := v.s.params(r.URL, r.Header, r.Body)
	if err != nil {
		return Verified{}, err
	}
	for _, u := range v.urls(r.URL) {
		if i, ok := keyThatSigns(v.keys, newHash, want[:n], func(w io.Writer) { writeFormContent(w, u, params) }); ok {
			return Verified{Body: body, Secret: i}, nil
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

// params returns the signed parameters and how much of the body they
// cover: the form fields, or none when a body hash in the URL stands for
// the body or the body is empty. Any other body would be signed by
// nothing.
func (s *Form) params(rawURL string, h http.Header, body []byte) (url.Values, Coverage, error) {
	if s.BodyHashParam != "" {
		if u, err := url.Parse(rawURL); err == nil && u.Query().Has(s.BodyHashParam) {
			return nil, BodyWhole, checkBodyHash(u.Query().Get(s.BodyHashParam), body, s.BodyHashParam)
		}
	}
	if len(body) == 0 {
		// Nothing to sign, and any byte added would change the
		// parameters or be refused here.
		return nil, BodyWhole, nil
	}
	ct := h.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		if s.BodyHashParam != "" {
			return nil, BodyNone, refuse(ReasonUnsignedBody, "a %.64q body needs the query parameter %s, which signs it", ct, s.BodyHashParam)
		}
		return nil, BodyNone, refuse(ReasonUnsignedBody, "a %.64q body is not signed: only form fields are", ct)
	}
	vals, err := parseForm(body)
	// The fields are signed, not their order or encoding.
	return vals, BodyParts, err
}

// parseSignatureSettings reads Twilio's signature settings header,
// "key=<SharedKey SID>,algorithm=HMAC_SHA256", and returns the hash it
// names. Twilio's SDKs read the header so (twilio-node,
// examples/WebhookSignatureValidation.md: "Only the hash changes. The
// signed string is still the full URL followed by the sorted POST
// parameters"; https://www.twilio.com/docs/usage/webhooks/webhook-shared-keys).
// It is strict: each of key and algorithm exactly once and nothing else,
// since a header the gateway half understands could pick a weaker hash.
func parseSignatureSettings(v string) (Algorithm, error) {
	var key, alg string
	pairs := strings.Split(v, ",")
	if len(pairs) != 2 {
		return "", fmt.Errorf("want key=…,algorithm=…")
	}
	for _, pair := range pairs {
		name, value, ok := strings.Cut(strings.Trim(pair, " \t"), "=")
		switch {
		case !ok || value == "":
			return "", fmt.Errorf("a setting has no value")
		case name == "key" && key == "":
			key = value
		case name == "algorithm" && alg == "":
			alg = value
		default:
			return "", fmt.Errorf("unexpected setting %.32q", name)
		}
	}
	if len(key) > 64 || strings.IndexFunc(key, notSIDRune) >= 0 {
		return "", fmt.Errorf("key is not a SharedKey SID")
	}
	switch alg {
	case "HMAC_SHA1":
		return SHA1, nil
	case "HMAC_SHA256":
		return SHA256, nil
	}
	return "", fmt.Errorf("unknown algorithm %.32q (known: HMAC_SHA1, HMAC_SHA256)", alg)
}

func notSIDRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-')
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
func writeFormContent(w io.Writer, u string, params url.Values) {
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
