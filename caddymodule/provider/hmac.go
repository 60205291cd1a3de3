package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Algorithm names the hash under an HMAC.
type Algorithm string

// The supported hashes; SHA-1 only because providers still send it.
const (
	SHA1   Algorithm = "sha1"
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
)

func (a Algorithm) new() (func() hash.Hash, error) {
	switch a {
	case SHA1:
		return sha1.New, nil
	case "", SHA256:
		return sha256.New, nil
	case SHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("unknown algorithm %q (known: sha1, sha256, sha512)", a)
}

// Encoding says how a signature is written in its header.
type Encoding string

// The signature encodings.
const (
	Hex    Encoding = "hex"
	Base64 Encoding = "base64"
)

func (e Encoding) valid() bool { return e == "" || e == Hex || e == Base64 }

// maxCandidates bounds the signatures read from one header, so a hostile
// header cannot make the gateway compare without end.
const maxCandidates = 16

// HMAC is the scheme of nearly every provider: an HMAC over content built
// from the body and a few request fields, sent in a header. Every field is
// data, so a provider is a row of these values and a user can describe an
// unlisted provider in the config.
type HMAC struct {
	// Header names the signature header. Several names describe header
	// families tried in order (Svix sends svix-*, white-labelled
	// deployments webhook-*); the timestamp and id headers below are
	// read from the same family. Required.
	Header []string `json:"header,omitempty"`

	// Algorithm is sha1, sha256 or sha512. Default: sha256.
	Algorithm Algorithm `json:"algorithm,omitempty"`

	// Encoding is how the signature is written: hex or base64.
	// Default: hex. Hex is accepted in either case.
	Encoding Encoding `json:"encoding,omitempty"`

	// Prefix precedes the signature, as in GitHub's "sha256=". It is
	// required when set.
	Prefix string `json:"prefix,omitempty"`

	// SignatureKey turns the header into a list of key/value pairs
	// (Stripe's "t=…,v1=…,v1=…") in which every value under this key is a
	// candidate signature. Empty: the header holds one signature.
	SignatureKey string `json:"signature_key,omitempty"`

	// TimestampKey is the key of the timestamp in such a list (Stripe "t").
	TimestampKey string `json:"timestamp_key,omitempty"`

	// PairSeparator splits the list into pairs. Default: ",".
	PairSeparator string `json:"pair_separator,omitempty"`

	// KeySeparator splits a pair into key and value. Default: "=".
	KeySeparator string `json:"key_separator,omitempty"`

	// TimestampHeader names the header with the signed send time, one
	// per header family.
	TimestampHeader []string `json:"timestamp_header,omitempty"`

	// TimestampFormat is unix, unix_ms or rfc3339. Default: unix.
	TimestampFormat TimestampFormat `json:"timestamp_format,omitempty"`

	// IDHeader names the header whose value {id} stands for, one per
	// header family.
	IDHeader []string `json:"id_header,omitempty"`

	// Content is the signed content: a template over {body},
	// {timestamp}, {id}, {method}, {url} and {header.Name}.
	// Default: "{body}".
	Content string `json:"content,omitempty"`

	// SecretEncoding is raw, whsec, base64 or hex. Default: raw.
	SecretEncoding SecretEncoding `json:"secret_encoding,omitempty"`
}

// HasTimestamp reports whether the scheme signs a send time.
func (s *HMAC) HasTimestamp() bool {
	return s.TimestampKey != "" || len(s.TimestampHeader) > 0
}

// Validate checks the description; its errors name the bad field.
func (s *HMAC) Validate() error {
	_, err := s.compile()
	return err
}

// compiled is an HMAC description checked and prepared for the hot path.
type compiled struct {
	*HMAC
	newHash  func() hash.Hash
	content  content
	headers  []string // canonical signature header names
	tsHdrs   []string
	idHdrs   []string
	pairSep  string
	keySep   string
	sigBytes int
}

func (s *HMAC) compile() (*compiled, error) {
	if len(s.Header) == 0 {
		return nil, fmt.Errorf("hmac scheme: header is required")
	}
	newHash, err := s.Algorithm.new()
	if err != nil {
		return nil, fmt.Errorf("hmac scheme: %w", err)
	}
	if !s.Encoding.valid() {
		return nil, fmt.Errorf("hmac scheme: unknown encoding %q (known: hex, base64)", s.Encoding)
	}
	if !s.TimestampFormat.valid() {
		return nil, fmt.Errorf("hmac scheme: unknown timestamp_format %q (known: unix, unix_ms, rfc3339)", s.TimestampFormat)
	}
	if !s.SecretEncoding.valid() {
		return nil, fmt.Errorf("hmac scheme: unknown secret_encoding %q (known: raw, whsec, base64, hex)", s.SecretEncoding)
	}
	if s.TimestampKey != "" && s.SignatureKey == "" {
		return nil, fmt.Errorf("hmac scheme: timestamp_key needs signature_key")
	}
	for _, family := range [][]string{s.TimestampHeader, s.IDHeader} {
		if len(family) > 0 && len(family) != len(s.Header) {
			return nil, fmt.Errorf("hmac scheme: timestamp_header and id_header need one name per signature header")
		}
	}
	tmpl := s.Content
	if tmpl == "" {
		tmpl = "{body}"
	}
	c, err := compileContent(tmpl)
	if err != nil {
		return nil, fmt.Errorf("hmac scheme: %w", err)
	}
	if c.uses(segTimestamp) && !s.HasTimestamp() {
		return nil, fmt.Errorf("hmac scheme: content uses {timestamp} but no timestamp_header or timestamp_key is set")
	}
	if c.uses(segID) && len(s.IDHeader) == 0 {
		return nil, fmt.Errorf("hmac scheme: content uses {id} but no id_header is set")
	}
	return &compiled{
		HMAC:     s,
		newHash:  newHash,
		content:  c,
		headers:  canonical(s.Header),
		tsHdrs:   canonical(s.TimestampHeader),
		idHdrs:   canonical(s.IDHeader),
		pairSep:  orDefault(s.PairSeparator, ","),
		keySep:   orDefault(s.KeySeparator, "="),
		sigBytes: newHash().Size(),
	}, nil
}

// NewVerifier implements Scheme.
func (s *HMAC) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	c, err := s.compile()
	if err != nil {
		return nil, err
	}
	keys, err := decodeKeys(s.SecretEncoding, cfg.Secrets)
	if err != nil {
		return nil, err
	}
	v := &hmacVerifier{c: c, tolerance: cfg.Tolerance}
	for _, k := range keys {
		v.macs = append(v.macs, newMACPool(c.newHash, k))
	}
	return v, nil
}

// Describe implements Scheme.
func (s *HMAC) Describe() Description {
	kind := "hmac-" + string(orDefault(string(s.Algorithm), "sha256")) + "/" + orDefault(string(s.Encoding), "hex")
	hdrs := append([]string(nil), s.Header...)
	hdrs = append(hdrs, s.TimestampHeader...)
	return Description{Kind: kind, Headers: hdrs}
}

// Sign implements Scheme, using the first header family.
func (s *HMAC) Sign(secret string, m *Message) error {
	c, err := s.compile()
	if err != nil {
		return err
	}
	key, err := s.SecretEncoding.decode(secret)
	if err != nil {
		return err
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	ts := c.TimestampFormat.format(m.Timestamp)
	if len(c.tsHdrs) > 0 {
		m.Header.Set(c.tsHdrs[0], ts)
	}
	if len(c.idHdrs) > 0 {
		m.Header.Set(c.idHdrs[0], m.ID)
	}
	mac := hmac.New(c.newHash, key)
	c.content.writeTo(mac, &contentValues{
		body: m.Body, timestamp: ts, id: m.ID, method: m.Method, url: m.URL, header: m.Header,
	})
	sig := c.encode(mac.Sum(nil))
	m.Header.Set(c.headers[0], c.headerValue(ts, sig))
	return nil
}

func (c *compiled) encode(sum []byte) string {
	if c.Encoding == Base64 {
		return base64.StdEncoding.EncodeToString(sum)
	}
	return hex.EncodeToString(sum)
}

// headerValue writes a signature header the way the provider does.
func (c *compiled) headerValue(ts, sig string) string {
	if c.SignatureKey == "" {
		return c.Prefix + sig
	}
	v := c.Prefix + c.SignatureKey + c.keySep + sig
	if c.TimestampKey != "" {
		v = c.Prefix + c.TimestampKey + c.keySep + ts + c.pairSep + c.SignatureKey + c.keySep + sig
	}
	return v
}

// macPool recycles keyed MACs: building one costs two hash states and
// allocations that a busy route should not pay per request.
type macPool struct{ pool sync.Pool }

func newMACPool(newHash func() hash.Hash, key []byte) *macPool {
	p := &macPool{}
	p.pool.New = func() any { return hmac.New(newHash, key) }
	return p
}

type hmacVerifier struct {
	c         *compiled
	macs      []*macPool
	tolerance time.Duration
}

// parsedHeader is a signature header taken apart without allocating:
// the candidates are substrings of the header value.
type parsedHeader struct {
	family     int
	timestamp  string
	candidates [maxCandidates]string
	n          int
}

func (v *hmacVerifier) Verify(r *Request) (Verified, error) {
	var p parsedHeader
	if err := v.c.parse(r.Header, &p); err != nil {
		return Verified{}, err
	}
	var out Verified
	if v.c.HasTimestamp() {
		ts, err := v.c.timestamp(r.Header, &p)
		if err != nil {
			return Verified{}, err
		}
		if err := checkFreshness(ts, r.Now, v.tolerance); err != nil {
			return Verified{}, err
		}
		out.Timestamp = ts
	}
	vals := contentValues{body: r.Body, timestamp: p.timestamp, method: r.Method, url: r.URL, header: r.Header}
	if len(v.c.idHdrs) > 0 {
		vals.id = headerValue(r.Header, v.c.idHdrs[p.family])
	}
	if err := v.match(&vals, &p); err != nil {
		return Verified{}, err
	}
	return out, nil
}

// match computes the MAC under each secret and compares it, in constant
// time, with every well-formed candidate.
func (v *hmacVerifier) match(vals *contentValues, p *parsedHeader) error {
	var decoded [maxCandidates][sha512.Size]byte
	var sizes [maxCandidates]int
	wellFormed := 0
	for i := 0; i < p.n; i++ {
		n, ok := v.c.decode(decoded[i][:], p.candidates[i])
		if ok && n == v.c.sigBytes {
			sizes[i] = n
			wellFormed++
		}
	}
	if wellFormed == 0 {
		return refuse(ReasonMalformedSignature, "header %s holds no well-formed %s signature", v.c.headers[p.family], orDefault(string(v.c.Encoding), "hex"))
	}
	var sum [sha512.Size]byte
	for _, pool := range v.macs {
		mac := pool.pool.Get().(hash.Hash)
		mac.Reset()
		v.c.content.writeTo(mac, vals)
		expected := mac.Sum(sum[:0])
		pool.pool.Put(mac)
		for i := 0; i < p.n; i++ {
			if sizes[i] > 0 && hmac.Equal(expected, decoded[i][:sizes[i]]) {
				return nil
			}
		}
	}
	return refuse(ReasonSignatureMismatch, "no signature in header %s matches a configured secret", v.c.headers[p.family])
}

// parse finds the first present header family and splits its value.
func (c *compiled) parse(h http.Header, p *parsedHeader) error {
	value := ""
	for i, name := range c.headers {
		if value = headerValue(h, name); value != "" {
			p.family = i
			break
		}
	}
	if value == "" {
		return refuse(ReasonMissingSignature, "header %s is missing", c.headers[0])
	}
	if c.Prefix != "" {
		rest, ok := strings.CutPrefix(value, c.Prefix)
		if !ok {
			return refuse(ReasonMalformedSignature, "header %s does not start with %q", c.headers[p.family], c.Prefix)
		}
		value = rest
	}
	if c.SignatureKey == "" {
		p.candidates[0] = strings.TrimSpace(value)
		p.n = 1
		return nil
	}
	c.parseList(value, p)
	if p.n == 0 {
		return refuse(ReasonMalformedSignature, "header %s has no %q signature", c.headers[p.family], c.SignatureKey)
	}
	return nil
}

func (c *compiled) parseList(value string, p *parsedHeader) {
	for value != "" && p.n < maxCandidates {
		var pair string
		pair, value, _ = strings.Cut(value, c.pairSep)
		key, val, ok := strings.Cut(strings.TrimSpace(pair), c.keySep)
		if !ok {
			continue
		}
		switch key {
		case c.SignatureKey:
			p.candidates[p.n] = val
			p.n++
		case c.TimestampKey:
			p.timestamp = val
		}
	}
}

// timestamp reads the send time from the list or from its header.
func (c *compiled) timestamp(h http.Header, p *parsedHeader) (time.Time, error) {
	name := c.TimestampKey
	if len(c.tsHdrs) > 0 {
		name = c.tsHdrs[p.family]
		p.timestamp = headerValue(h, name)
	}
	if p.timestamp == "" {
		return time.Time{}, refuse(ReasonMissingTimestamp, "timestamp %s is missing", name)
	}
	ts, err := c.TimestampFormat.parse(p.timestamp)
	if err != nil {
		return time.Time{}, refuse(ReasonMalformedTimestamp, "timestamp %s is %v", name, err)
	}
	return ts, nil
}

// decode writes a candidate's bytes into dst without allocating.
func (c *compiled) decode(dst []byte, sig string) (int, bool) {
	if c.Encoding == Base64 {
		return decodeBase64Into(dst, sig)
	}
	return decodeHexInto(dst, sig)
}

func decodeHexInto(dst []byte, s string) (int, bool) {
	if len(s)%2 != 0 || len(s)/2 > len(dst) {
		return 0, false
	}
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := fromHexChar(s[i])
		lo, ok2 := fromHexChar(s[i+1])
		if !ok1 || !ok2 {
			return 0, false
		}
		dst[i/2] = hi<<4 | lo
	}
	return len(s) / 2, true
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func decodeBase64Into(dst []byte, s string) (int, bool) {
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") {
		enc = base64.RawStdEncoding
	}
	if enc.DecodedLen(len(s)) > len(dst) {
		return 0, false
	}
	var src [2 * sha512.Size]byte
	if len(s) > len(src) {
		return 0, false
	}
	n, err := enc.Decode(dst, src[:copy(src[:], s)])
	return n, err == nil
}

func canonical(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Interface guards
var (
	_ Scheme   = (*HMAC)(nil)
	_ Verifier = (*hmacVerifier)(nil)
)
