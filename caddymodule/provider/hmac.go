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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
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
	// Base64URL is the URL-safe alphabet without padding (Sanity).
	Base64URL Encoding = "base64url"
)

func (e Encoding) valid() bool { return e == "" || e == Hex || e == Base64 || e == Base64URL }

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
	// required when set, unless PrefixOptional.
	Prefix string `json:"prefix,omitempty"`

	// PrefixOptional accepts the signature with or without Prefix, for
	// senders whose own verifiers strip it when present (Mollie).
	PrefixOptional bool `json:"prefix_optional,omitempty"`

	// SignatureKey turns the header into a list of key/value pairs
	// (Stripe's "t=…,v1=…,v1=…") in which every value under this key is a
	// candidate signature. Empty: the header holds one signature.
	SignatureKey string `json:"signature_key,omitempty"`

	// TimestampKey is the key of the timestamp in such a list (Stripe "t").
	TimestampKey string `json:"timestamp_key,omitempty"`

	// TimestampFirst turns the header into a list without keys, split by
	// PairSeparator, whose first element is the timestamp and every
	// other one a candidate signature (Recurly's "<ts>,<sig>[,<sig>]").
	TimestampFirst bool `json:"timestamp_first,omitempty"`

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

	// SecretEncoding is raw, whsec, base64, hex or sha1. Default: raw.
	SecretEncoding SecretEncoding `json:"secret_encoding,omitempty"`

	// KeyPrefixHash makes the signature a plain hash of the key followed
	// by the content instead of an HMAC (HubSpot's v1 and v2).
	KeyPrefixHash bool `json:"key_prefix_hash,omitempty"`

	// EveryHeader reads every header of Header, not the first present
	// one, and pools their signatures (Box's primary and secondary).
	EveryHeader bool `json:"every_header,omitempty"`

	// Numbered makes Header the stem of numbered headers, Header-1,
	// Header-2, …, one per active key (DocuSign). Implies EveryHeader.
	Numbered bool `json:"numbered,omitempty"`

	// SetSeparator splits a header into complete signature lists, each
	// with its own timestamp, any of which may match (Persona sends two
	// "t=…,v1=…" sets separated by a space while a secret rotates).
	SetSeparator string `json:"set_separator,omitempty"`

	// TimestampJSON is a gjson path to the send time inside the body,
	// which the body signature covers (Linear's webhookTimestamp).
	TimestampJSON string `json:"timestamp_json,omitempty"`
}

// HasTimestamp reports whether the scheme signs a send time.
func (s *HMAC) HasTimestamp() bool {
	return s.TimestampKey != "" || s.TimestampFirst || len(s.TimestampHeader) > 0 || s.TimestampJSON != ""
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
	every    bool
	// covered holds, per header family, the canonical names of the
	// request headers that the content signs: built once, so that
	// Verified.Headers costs a request nothing.
	covered   [][]string
	body      Coverage
	signsTime bool
}

// maxNumbered bounds the numbered headers read (DocuSign allows a
// handful of active keys).
const maxNumbered = 8

// maxSets bounds the signature sets read from one header.
const maxSets = 4

func (s *HMAC) compile() (*compiled, error) {
	if len(s.Header) == 0 {
		return nil, fmt.Errorf("hmac scheme: header is required")
	}
	newHash, err := s.Algorithm.new()
	if err != nil {
		return nil, fmt.Errorf("hmac scheme: %w", err)
	}
	if !s.Encoding.valid() {
		return nil, fmt.Errorf("hmac scheme: unknown encoding %q (known: hex, base64, base64url)", s.Encoding)
	}
	if !s.TimestampFormat.valid() {
		return nil, fmt.Errorf("hmac scheme: unknown timestamp_format %q (known: unix, unix_ms, rfc3339)", s.TimestampFormat)
	}
	if !s.SecretEncoding.valid() {
		return nil, fmt.Errorf("hmac scheme: unknown secret_encoding %q (known: raw, whsec, base64, hex, sha1)", s.SecretEncoding)
	}
	if s.TimestampKey != "" && s.SignatureKey == "" {
		return nil, fmt.Errorf("hmac scheme: timestamp_key needs signature_key")
	}
	if s.PrefixOptional && s.Prefix == "" {
		return nil, fmt.Errorf("hmac scheme: prefix_optional needs prefix")
	}
	// A keyless list has one place for the time: a second source would
	// leave it unclear which one the signature covers.
	if s.TimestampFirst && (s.SignatureKey != "" || len(s.TimestampHeader) > 0 || s.TimestampJSON != "") {
		return nil, fmt.Errorf("hmac scheme: timestamp_first cannot be combined with signature_key, timestamp_header or timestamp_json")
	}
	for _, family := range [][]string{s.TimestampHeader, s.IDHeader} {
		if len(family) > 1 && len(family) != len(s.Header) {
			return nil, fmt.Errorf("hmac scheme: timestamp_header and id_header need one name, or one per signature header")
		}
	}
	if s.SetSeparator != "" && (s.EveryHeader || s.Numbered) {
		return nil, fmt.Errorf("hmac scheme: set_separator cannot be combined with every_header or numbered")
	}
	headers := canonical(s.Header)
	if s.Numbered {
		if len(headers) != 1 {
			return nil, fmt.Errorf("hmac scheme: numbered needs exactly one header stem")
		}
		headers = numbered(headers[0])
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
	out := &compiled{
		HMAC:     s,
		newHash:  newHash,
		content:  c,
		headers:  headers,
		tsHdrs:   canonical(s.TimestampHeader),
		idHdrs:   canonical(s.IDHeader),
		pairSep:  orDefault(s.PairSeparator, ","),
		keySep:   orDefault(s.KeySeparator, "="),
		sigBytes: newHash().Size(),
		every:    s.EveryHeader || s.Numbered,
	}
	// A CRC-32 of the body is no authentication: anyone can append
	// four bytes that restore it.
	if c.uses(segBody) {
		out.body = BodyWhole
	}
	out.signsTime = c.uses(segTimestamp) || (s.TimestampJSON != "" && out.body == BodyWhole)
	out.covered = make([][]string, len(headers))
	for family := range headers {
		out.covered[family] = out.signedHeaders(family)
	}
	return out, nil
}

// signedHeaders lists the request headers that a family's content signs:
// its timestamp and id headers where the content uses them, and every
// {header.Name}.
func (c *compiled) signedHeaders(family int) []string {
	var names []string
	add := func(name string) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, seg := range c.content {
		switch {
		case seg.kind == segTimestamp && len(c.tsHdrs) > 0:
			add(pick(c.tsHdrs, family))
		case seg.kind == segID:
			add(pick(c.idHdrs, family))
		case seg.kind == segHeader:
			add(seg.text)
		}
	}
	return names
}

func numbered(stem string) []string {
	names := make([]string, maxNumbered)
	for i := range names {
		names[i] = stem + "-" + strconv.Itoa(i+1)
	}
	return names
}

// newMAC keys a MAC, or the key-prefixed hash some providers use instead.
func (c *compiled) newMAC(key []byte) hash.Hash {
	if c.KeyPrefixHash {
		h := &prefixHash{Hash: c.newHash(), key: key}
		h.Reset()
		return h
	}
	return hmac.New(c.newHash, key)
}

// prefixHash is H(key || content): weaker than an HMAC, but it is what
// HubSpot's v1 and v2 signatures are.
type prefixHash struct {
	hash.Hash
	key []byte
}

func (h *prefixHash) Reset() {
	h.Hash.Reset()
	h.Hash.Write(h.key)
}

// NewVerifier implements Scheme.
func (s *HMAC) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	c, err := s.compile()
	if err != nil {
		return nil, err
	}
	if err := c.needs(cfg); err != nil {
		return nil, err
	}
	macs, err := c.macPools(s.SecretEncoding, cfg.Secrets)
	if err != nil {
		return nil, err
	}
	return &hmacVerifier{c: c, macs: macs, cfg: cfg}, nil
}

// Describe implements Scheme.
func (s *HMAC) Describe() Description {
	kind := "hmac-" + string(orDefault(string(s.Algorithm), "sha256")) + "/" + orDefault(string(s.Encoding), "hex")
	if s.KeyPrefixHash {
		kind = string(orDefault(string(s.Algorithm), "sha256")) + "(key+content)/" + orDefault(string(s.Encoding), "hex")
	}
	hdrs := append([]string(nil), s.Header...)
	if s.Numbered {
		hdrs[0] += "-N"
	}
	hdrs = append(hdrs, s.TimestampHeader...)
	d := Description{Kind: kind, Headers: hdrs, Replay: ReplayNone}
	if c, err := s.compile(); err == nil {
		d.Replay = replayOf(c.signsTime, c.content.uses(segID), c.body)
		d.Body = c.body
		d.Credentials.SignatureHeaders = c.headers
	}
	return d
}

// Sign implements Scheme, using the first header family.
func (s *HMAC) Sign(secret string, m *Message) error {
	c, key, err := keyed(s.compile, s.SecretEncoding, secret)
	if err != nil {
		return err
	}
	return c.sign(m, func(vals *contentValues) ([]byte, error) {
		mac := c.newMAC(key)
		c.content.writeTo(mac, vals, nil)
		return mac.Sum(nil), nil
	})
}

// keyed compiles a scheme and decodes the one secret it signs with.
func keyed(compile func() (*compiled, error), enc SecretEncoding, secret string) (*compiled, []byte, error) {
	c, err := compile()
	if err != nil {
		return nil, nil, err
	}
	key, err := enc.decode(secret)
	return c, key, err
}

// sign writes the headers of m around the signature that sum computes
// over the content; the HMAC and public-key schemes share it.
func (c *compiled) sign(m *Message, sum func(*contentValues) ([]byte, error)) error {
	if m.Header == nil {
		m.Header = http.Header{}
	}
	ts := c.TimestampFormat.format(m.Timestamp)
	if c.TimestampJSON != "" {
		ts = gjson.GetBytes(m.Body, c.TimestampJSON).String()
	}
	if len(c.tsHdrs) > 0 {
		m.Header.Set(c.tsHdrs[0], ts)
	}
	if len(c.idHdrs) > 0 {
		m.Header.Set(c.idHdrs[0], m.ID)
	}
	raw, err := sum(&contentValues{
		body: m.Body, timestamp: ts, id: m.ID, method: m.Method, url: m.URL, header: m.Header, webhookID: m.WebhookID,
	})
	if err != nil {
		return err
	}
	m.Header.Set(c.headers[0], c.headerValue(ts, c.encode(raw)))
	return nil
}

// needs checks that a route gives what the content refers to.
func (c *compiled) needs(cfg VerifierConfig) error {
	if c.content.uses(segWebhookID) && cfg.WebhookID == "" {
		return fmt.Errorf("signed content uses {webhook_id} but no webhook id is configured")
	}
	return nil
}

func (c *compiled) encode(sum []byte) string {
	switch c.Encoding {
	case Base64:
		return base64.StdEncoding.EncodeToString(sum)
	case Base64URL:
		return base64.RawURLEncoding.EncodeToString(sum)
	}
	return hex.EncodeToString(sum)
}

// headerValue writes a signature header the way the provider does.
func (c *compiled) headerValue(ts, sig string) string {
	if c.TimestampFirst {
		return c.Prefix + ts + c.pairSep + sig
	}
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

// pooledMAC carries, beside the MAC, the buffers that the hot path would
// otherwise allocate: a hash's Sum and Write, being interface calls,
// move any stack buffer handed to them onto the heap.
type pooledMAC struct {
	hash.Hash
	sum     [sha512.Size]byte
	scratch [scratchSize]byte
}

// macPools decodes the secrets and pools a MAC for each.
func (c *compiled) macPools(enc SecretEncoding, secrets []string) ([]*macPool, error) {
	keys, err := decodeKeys(enc, secrets)
	if err != nil {
		return nil, err
	}
	pools := make([]*macPool, len(keys))
	for i, key := range keys {
		pools[i] = &macPool{}
		pools[i].pool.New = func() any { return &pooledMAC{Hash: c.newMAC(key)} }
	}
	return pools, nil
}

func (p *macPool) get() *pooledMAC {
	m := p.pool.Get().(*pooledMAC)
	m.Reset()
	return m
}

func (p *macPool) put(m *pooledMAC) { p.pool.Put(m) }

type hmacVerifier struct {
	c    *compiled
	macs []*macPool
	cfg  VerifierConfig
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
	return v.c.verify(r, &v.cfg, checker{hmac: v})
}

// checker is the primitive that a verification ends with. A struct of
// concrete pointers rather than a func value keeps the parsed header and
// the content values on the stack: escape analysis cannot see through a
// func value, and the HMAC path must not allocate.
type checker struct {
	hmac *hmacVerifier
	pub  *publicKeyVerifier
}

func (k checker) check(vals *contentValues, p *parsedHeader) (int, error) {
	if k.hmac != nil {
		return k.hmac.match(vals, p)
	}
	return k.pub.check(vals, p)
}

// verify finds the signature header and checks its sets in turn, the
// first that holds winning.
func (c *compiled) verify(r *Request, cfg *VerifierConfig, check checker) (Verified, error) {
	value, family := c.find(r.Header)
	if value == "" {
		return Verified{}, refuse(ReasonMissingSignature, "header %s is missing", c.headers[0])
	}
	var first error
	for range maxSets {
		set := value
		value = ""
		if c.SetSeparator != "" {
			set, value, _ = strings.Cut(set, c.SetSeparator)
		}
		out, err := c.verifySet(r, cfg, family, set, check)
		if err == nil {
			return out, nil
		}
		if first == nil {
			first = err
		}
		if value == "" {
			break
		}
	}
	return Verified{}, first
}

func (c *compiled) verifySet(r *Request, cfg *VerifierConfig, family int, set string, check checker) (Verified, error) {
	p := parsedHeader{family: family}
	if err := c.parse(set, &p); err != nil {
		return Verified{}, err
	}
	if c.every {
		c.parseRest(r.Header, &p)
	}
	var out Verified
	if c.HasTimestamp() {
		ts, err := c.timestamp(r, &p)
		if err != nil {
			return Verified{}, err
		}
		if err := checkFreshness(ts, r.Now, cfg.Tolerance); err != nil {
			return Verified{}, err
		}
		if c.signsTime {
			out.Timestamp = ts
		}
	}
	vals := contentValues{
		body: r.Body, timestamp: p.timestamp, method: r.Method, url: r.URL, header: r.Header, webhookID: cfg.WebhookID,
	}
	if len(c.idHdrs) > 0 {
		vals.id = headerValue(r.Header, pick(c.idHdrs, p.family))
	}
	secret, err := check.check(&vals, &p)
	if err != nil {
		return Verified{}, err
	}
	out.Body, out.Headers, out.Secret = c.body, c.covered[p.family], secret
	if c.content.uses(segID) {
		out.ID = vals.id
	}
	return out, nil
}

// pick is a family's name in a list that has one name per family, or
// one shared by all.
func pick(names []string, family int) string {
	return names[min(family, len(names)-1)]
}

// match computes the MAC under each secret and compares it, in constant
// time, with every well-formed candidate; it returns the position of the
// secret that matched.
func (v *hmacVerifier) match(vals *contentValues, p *parsedHeader) (int, error) {
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
		return 0, refuse(ReasonMalformedSignature, "header %s holds no well-formed %s signature", v.c.headers[p.family], orDefault(string(v.c.Encoding), "hex"))
	}
	for secret, pool := range v.macs {
		mac := pool.get()
		v.c.content.writeTo(mac, vals, mac.scratch[:])
		expected := mac.Sum(mac.sum[:0])
		found := false
		for i := 0; i < p.n; i++ {
			found = found || (sizes[i] > 0 && hmac.Equal(expected, decoded[i][:sizes[i]]))
		}
		pool.put(mac)
		if found {
			return secret, nil
		}
	}
	return 0, refuse(ReasonSignatureMismatch, "no signature in header %s matches a configured secret", v.c.headers[p.family])
}

// find returns the value of the first present signature header.
func (c *compiled) find(h http.Header) (string, int) {
	for i, name := range c.headers {
		if value := headerValue(h, name); value != "" {
			return value, i
		}
	}
	return "", 0
}

// parse takes one signature set apart into p.
func (c *compiled) parse(value string, p *parsedHeader) error {
	name := c.headers[p.family]
	if c.Prefix != "" {
		rest, ok := strings.CutPrefix(value, c.Prefix)
		if !ok && !c.PrefixOptional {
			return refuse(ReasonMalformedSignature, "header %s does not start with %q", name, c.Prefix)
		}
		value = rest
	}
	before := p.n
	switch {
	case c.TimestampFirst:
		c.parseTimestampFirst(value, p)
	case c.SignatureKey == "":
		p.candidates[p.n] = strings.TrimSpace(value)
		p.n++
		return nil
	default:
		c.parseList(value, p)
	}
	if p.n == before {
		if c.TimestampFirst {
			return refuse(ReasonMalformedSignature, "header %s has no signature after its timestamp", name)
		}
		return refuse(ReasonMalformedSignature, "header %s has no %q signature", name, c.SignatureKey)
	}
	return nil
}

// parseRest adds the signatures of the headers after the first present
// one, for schemes that send one header per key; a malformed one is
// skipped as an unknown list entry would be.
func (c *compiled) parseRest(h http.Header, p *parsedHeader) {
	for _, name := range c.headers[p.family+1:] {
		if value := headerValue(h, name); value != "" && p.n < maxCandidates {
			_ = c.parse(value, p)
		}
	}
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

// parseTimestampFirst reads a list without keys: the timestamp, then
// the signatures.
func (c *compiled) parseTimestampFirst(value string, p *parsedHeader) {
	first, rest, _ := strings.Cut(value, c.pairSep)
	p.timestamp = strings.TrimSpace(first)
	for rest != "" && p.n < maxCandidates {
		var sig string
		sig, rest, _ = strings.Cut(rest, c.pairSep)
		if sig = strings.TrimSpace(sig); sig != "" {
			p.candidates[p.n] = sig
			p.n++
		}
	}
}

// timestamp reads the send time from the list, its header or the body.
func (c *compiled) timestamp(r *Request, p *parsedHeader) (time.Time, error) {
	name := c.TimestampKey
	switch {
	case c.TimestampFirst:
		name = c.headers[p.family]
	case len(c.tsHdrs) > 0:
		name = pick(c.tsHdrs, p.family)
		p.timestamp = headerValue(r.Header, name)
	case c.TimestampJSON != "":
		name = c.TimestampJSON
		p.timestamp = gjson.GetBytes(r.Body, name).String()
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
	switch c.Encoding {
	case Base64:
		return decodeBase64Into(dst, sig, base64.RawStdEncoding)
	case Base64URL:
		return decodeBase64Into(dst, sig, base64.RawURLEncoding)
	}
	return decodeHexInto(dst, sig)
}

func decodeHexInto(dst []byte, s string) (int, bool) {
	if len(s)%2 != 0 || len(s)/2 > len(dst) {
		return 0, false
	}
	for i := 0; i < len(s); i += 2 {
		hi, lo := hexValue[s[i]], hexValue[s[i+1]]
		if hi|lo > 0x0f {
			return 0, false
		}
		dst[i/2] = hi<<4 | lo
	}
	return len(s) / 2, true
}

// hexValue maps a hex digit, in either case, to its value and anything
// else to 0xff: a table lookup is what keeps decoding off the profile.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	for i, c := range "ABCDEF" {
		t[c] = byte(10 + i)
	}
	return t
}()

func decodeBase64Into(dst []byte, s string, enc *base64.Encoding) (int, bool) {
	// Padding is checked here and decoding left to the raw encoding:
	// DecodedLen of a padded string counts the padding as data, which
	// would turn away a SHA-512 signature that fills dst exactly.
	data := strings.TrimRight(s, "=")
	if pad := len(s) - len(data); pad > 0 && pad != (4-len(data)%4)%4 {
		return 0, false
	}
	if enc.DecodedLen(len(data)) > len(dst) {
		return 0, false
	}
	// Copying into an array spares the hot path the allocation of
	// []byte(s); only the long signatures of public-key schemes pay it.
	var src [2 * sha512.Size]byte
	in := src[:copy(src[:], data)]
	if len(data) > len(src) {
		in = []byte(data)
	}
	n, err := enc.Decode(dst, in)
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
