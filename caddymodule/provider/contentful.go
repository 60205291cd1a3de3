package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The headers of Contentful's request signing, as its SDK spells them:
// the signed-headers list names headers in this lower-case form.
const (
	contentfulSignature     = "x-contentful-signature"
	contentfulSignedHeaders = "x-contentful-signed-headers"
	contentfulTimestamp     = "x-contentful-timestamp"
)

// contentfulEpoch is 2020-01-01 in milliseconds: the SDK refuses any
// timestamp not after it.
const contentfulEpoch = 1577836800000

// maxContentfulTimestamp is 2^53: beyond it the SDK's JavaScript numbers
// round the timestamp, so the signed digits would not be the sent ones.
const maxContentfulTimestamp = 1 << 53

// maxSignedHeaders bounds the names read from the signed-headers list, so
// a hostile list cannot make the gateway look headers up without end.
const maxSignedHeaders = 100

// Contentful is the request signing of Contentful's webhooks, app events
// and app actions: a hex HMAC-SHA256, keyed with the secret's bytes, over
// a canonical request that covers the method, the path and query, the
// headers that x-contentful-signed-headers lists, and the body. The
// canonical form is that of verifyRequest and signRequest in
// contentful/node-apps-toolkit (src/requests/), quirks included, since a
// byte of difference fails every delivery:
//
//   - the path is "pathname?search" with search percent-encoded by
//     Node's querystring.escape and the whole then by encodeURI, which
//     encodes every '%' again (a query "a=1" is signed as "a%253D1");
//   - of the listed names, those equal to the lower-cased name of a
//     header present in the request are signed, as "name:value" with
//     the value trimmed, sorted by name and joined by ";";
//   - x-contentful-timestamp and x-contentful-signed-headers are always
//     signed, the first as the timestamp's decimal digits, the second
//     as the sorted list of the names actually signed (so the list
//     itself is covered, and a listed name that is absent drops out of
//     it rather than being signed as empty).
//
// The SDK only splits the path at the first '?' and signs nothing after a
// second one; such a URL is refused here, since what the gateway forwards
// there would be unauthenticated.
type Contentful struct{}

// Describe implements Scheme.
func (s *Contentful) Describe() Description {
	return Description{
		Kind:    "hmac-sha256/hex/canonical-request",
		Headers: []string{"X-Contentful-Signature", "X-Contentful-Signed-Headers", "X-Contentful-Timestamp"},
		// The idempotency key is signed only when the sender lists it.
		Replay:      ReplayTimestamp,
		Body:        BodyWhole,
		Credentials: Credentials{SignatureHeaders: []string{http.CanonicalHeaderKey(contentfulSignature)}},
	}
}

// NewVerifier implements Scheme.
func (s *Contentful) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("no secret configured")
	}
	keys := make([][]byte, len(cfg.Secrets))
	for i, secret := range cfg.Secrets {
		if err := checkContentfulSecret(secret); err != nil {
			return nil, fmt.Errorf("secret #%d: %w", i+1, err)
		}
		keys[i] = []byte(secret)
	}
	return &contentfulVerifier{keys: keys, cfg: cfg}, nil
}

// checkContentfulSecret holds a secret to Contentful's own rule: the SDK
// refuses any other, so a secret that breaks it is a configuration
// mistake best caught at provision time. The error never shows it.
func checkContentfulSecret(secret string) error {
	if secret == "" {
		return fmt.Errorf("secret is empty")
	}
	if len(secret) != 64 {
		return fmt.Errorf("a Contentful signing secret is 64 characters, not %d", len(secret))
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !isAlnum(c) && !strings.ContainsRune("+/=_-", rune(c)) {
			return fmt.Errorf("a Contentful signing secret holds only [0-9a-zA-Z+/=_-]")
		}
	}
	return nil
}

// Sign implements Scheme. Like the SDK's signRequest it signs every
// header already in m.Header (give `webhook-gateway sign` the headers
// Contentful would send with --header), then adds its three.
func (s *Contentful) Sign(secret string, m *Message) error {
	if err := checkContentfulSecret(secret); err != nil {
		return err
	}
	ms := m.Timestamp.UnixMilli()
	if ms <= contentfulEpoch || ms > maxContentfulTimestamp {
		return fmt.Errorf("contentful signs only timestamps after 2020-01-01")
	}
	path, err := contentfulPath(m.URL)
	if err != nil {
		return err
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	m.Header.Del(contentfulSignature)
	names := []string{contentfulSignedHeaders, contentfulTimestamp}
	for name := range m.Header {
		if lower := strings.ToLower(name); lower != contentfulSignedHeaders && lower != contentfulTimestamp {
			names = append(names, lower)
		}
	}
	ts := strconv.FormatInt(ms, 10)
	signed := contentfulHeaders(m.Header, names, ts)
	m.Header.Set(contentfulTimestamp, ts)
	m.Header.Set(contentfulSignedHeaders, signed.list)
	mac := hmac.New(sha256.New, []byte(secret))
	writeContentful(mac, m.Method, path, signed.pairs, m.Body)
	m.Header.Set(contentfulSignature, hex.EncodeToString(mac.Sum(nil)))
	return nil
}

type contentfulVerifier struct {
	keys [][]byte
	cfg  VerifierConfig
}

func (v *contentfulVerifier) Verify(r *Request) (Verified, error) {
	sig := jsTrim(headerValue(r.Header, http.CanonicalHeaderKey(contentfulSignature)))
	if sig == "" {
		return Verified{}, refuse(ReasonMissingSignature, "header X-Contentful-Signature is missing")
	}
	var want [sha256.Size]byte
	if n, ok := decodeHexInto(want[:], sig); !ok || n != sha256.Size {
		return Verified{}, refuse(ReasonMalformedSignature, "header X-Contentful-Signature holds no well-formed hex signature")
	}
	list, listed := r.Header[http.CanonicalHeaderKey(contentfulSignedHeaders)]
	if !listed {
		return Verified{}, refuse(ReasonMissingHeader, "header X-Contentful-Signed-Headers is missing")
	}
	names := strings.SplitN(jsTrim(strings.Join(list, ", ")), ",", maxSignedHeaders+1)
	switch {
	case len(names) < 2:
		// The SDK wants at least the timestamp and the list itself.
		return Verified{}, refuse(ReasonMalformedSignature, "header X-Contentful-Signed-Headers names fewer than two headers")
	case len(names) > maxSignedHeaders:
		return Verified{}, refuse(ReasonMalformedSignature, "header X-Contentful-Signed-Headers names more than %d headers", maxSignedHeaders)
	}
	ts, err := contentfulTime(r.Header)
	if err != nil {
		return Verified{}, err
	}
	if err := checkFreshness(time.UnixMilli(ts), r.Now, v.cfg.Tolerance); err != nil {
		return Verified{}, err
	}
	path, err := contentfulPath(r.URL)
	if err != nil {
		return Verified{}, err
	}
	signed := contentfulHeaders(r.Header, names, strconv.FormatInt(ts, 10))
	if i, ok := keyThatSigns(v.keys, sha256.New, want[:], func(w io.Writer) {
		writeContentful(w, r.Method, path, signed.pairs, r.Body)
	}); ok {
		return Verified{Timestamp: time.UnixMilli(ts), Body: BodyWhole, Headers: signed.headers(), Secret: i}, nil
	}
	if signed.absent != "" {
		// The SDK drops an absent listed header from the signed list,
		// which then fails; saying which one helps the operator find
		// the proxy that stripped it.
		return Verified{}, refuse(ReasonMissingHeader, "header %.64q, listed in X-Contentful-Signed-Headers, is missing", signed.absent)
	}
	return Verified{}, refuse(ReasonSignatureMismatch, "header X-Contentful-Signature does not match a configured secret")
}

// contentfulTime reads the timestamp as the SDK admits it: milliseconds
// after 2020. The SDK's parseInt would also take trailing junk; a
// genuine delivery never has any, so a strict parse loses nothing.
func contentfulTime(h http.Header) (int64, error) {
	raw := jsTrim(headerValue(h, http.CanonicalHeaderKey(contentfulTimestamp)))
	if raw == "" {
		return 0, refuse(ReasonMissingTimestamp, "timestamp X-Contentful-Timestamp is missing")
	}
	ts, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, refuse(ReasonMalformedTimestamp, "timestamp X-Contentful-Timestamp is not a unix time in milliseconds")
	}
	if ts <= contentfulEpoch || ts > maxContentfulTimestamp {
		return 0, refuse(ReasonMalformedTimestamp, "timestamp X-Contentful-Timestamp is out of Contentful's range")
	}
	return ts, nil
}

// contentfulSigned is the headers part of a canonical request.
type contentfulSigned struct {
	pairs  []string // "name:value", sorted by name
	list   string   // the signed names, sorted, joined by ","
	absent string   // a listed name that the request lacks, if any
}

// contentfulHeaders picks the listed headers the way the SDK's
// verifyRequest does: a name counts when it equals a present header's
// lower-cased name, exactly (no trimming, no case folding of the list);
// the timestamp and the list itself are always in, with the values that
// the SDK recomputes for them.
func contentfulHeaders(h http.Header, names []string, ts string) contentfulSigned {
	var out contentfulSigned
	picked := []string{contentfulSignedHeaders, contentfulTimestamp}
	for _, name := range names {
		if slices.Contains(picked, name) {
			continue
		}
		if _, ok := contentfulValue(h, name); ok {
			picked = append(picked, name)
		} else if out.absent == "" && name != "" && strings.ToLower(name) == name {
			out.absent = name
		}
	}
	// Byte order is the SDK's order: names are ASCII, and JavaScript
	// compares strings by UTF-16 code unit.
	slices.Sort(picked)
	out.list = strings.Join(picked, ",")
	out.pairs = make([]string, len(picked))
	for i, name := range picked {
		var value string
		switch name {
		case contentfulSignedHeaders:
			value = out.list
		case contentfulTimestamp:
			value = ts
		default:
			value, _ = contentfulValue(h, name)
		}
		out.pairs[i] = name + ":" + value
	}
	return out
}

// headers are the canonical names of the signed headers. The list is the
// sender's, so unlike the other schemes' it is built per request.
func (s contentfulSigned) headers() []string {
	names := make([]string, len(s.pairs))
	for i, pair := range s.pairs {
		name, _, _ := strings.Cut(pair, ":")
		names[i] = http.CanonicalHeaderKey(name)
	}
	return names
}

// contentfulValue is a listed header's value as the SDK signs it: the
// list names headers in lower case, so a name with a capital matches
// none; repeated fields are joined by ", " as Node joins them.
func contentfulValue(h http.Header, name string) (string, bool) {
	if name == "" || strings.ToLower(name) != name {
		return "", false
	}
	vs, ok := h[http.CanonicalHeaderKey(name)]
	if !ok {
		return "", false
	}
	return jsTrim(strings.Join(vs, ", ")), true
}

// writeContentful writes the canonical request: method, path, headers
// and body, joined by newlines.
func writeContentful(w io.Writer, method, path string, pairs []string, body []byte) {
	io.WriteString(w, method)
	io.WriteString(w, "\n")
	io.WriteString(w, path)
	io.WriteString(w, "\n")
	io.WriteString(w, strings.Join(pairs, ";"))
	io.WriteString(w, "\n")
	w.Write(body)
}

// isScheme reports whether s is a URL scheme (RFC 3986, 3.1), so that
// only a real scheme and host are dropped from a URL: "?:///in" is a
// query, not a URL whose path is "/in".
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// contentfulPath is the signed path of a URL: its path and query, in the
// SDK's normal form. An absolute URL's scheme and host are not signed.
func contentfulPath(rawURL string) (string, error) {
	target := rawURL
	if i := strings.Index(target, "://"); i > 0 && isScheme(target[:i]) {
		rest := target[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			rest, j = "/", 0
		}
		target = rest[j:]
	}
	if target == "" || target[0] == '?' {
		// An HTTP request for an empty path asks for "/".
		target = "/" + target
	}
	pathname, search, _ := strings.Cut(target, "?")
	if strings.Contains(search, "?") {
		return "", refuse(ReasonSignatureMismatch, "the URL's query holds a second '?', after which Contentful's signature covers nothing")
	}
	var b strings.Builder
	b.Grow(len(pathname) + 3*len(search) + 1)
	for i := 0; i < len(pathname); i++ {
		if c := pathname[i]; uriKeep[c] {
			b.WriteByte(c)
		} else {
			writePercent(&b, "%", c)
		}
	}
	if search != "" {
		b.WriteByte('?')
		for i := 0; i < len(search); i++ {
			// querystring.escape leaves only these and writes "%XX";
			// encodeURI then keeps them and turns each '%' into "%25".
			if c := search[i]; qsKeep[c] {
				b.WriteByte(c)
			} else {
				writePercent(&b, "%25", c)
			}
		}
	}
	return b.String(), nil
}

func writePercent(b *strings.Builder, percent string, c byte) {
	const upperHex = "0123456789ABCDEF"
	b.WriteString(percent)
	b.WriteByte(upperHex[c>>4])
	b.WriteByte(upperHex[c&0x0f])
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// qsKeep and uriKeep are the bytes that Node's querystring.escape and
// JavaScript's encodeURI leave as they are; every other byte (of the
// UTF-8 form, for non-ASCII text) they percent-encode in upper case.
var qsKeep, uriKeep = func() (qs, uri [256]bool) {
	for c := 0; c < 256; c++ {
		qs[c] = isAlnum(byte(c)) || strings.IndexByte("-_.!~*'()", byte(c)) >= 0
		uri[c] = qs[c] || strings.IndexByte(";,/?:@&=+$#", byte(c)) >= 0
	}
	return qs, uri
}()

// jsTrim trims what JavaScript's String.prototype.trim does, which the
// SDK applies to every header value: ASCII and Unicode spaces, line
// terminators and the byte order mark.
func jsTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		switch r {
		case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
			return true
		}
		return r >= 0x2000 && r <= 0x200a
	})
}

// Interface guards
var (
	_ Scheme   = (*Contentful)(nil)
	_ Verifier = (*contentfulVerifier)(nil)
)
