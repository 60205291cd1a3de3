package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// PlivoV3 is Plivo's V3 signature: base64 HMAC-SHA256, under the auth
// token, of the callback URL without its query, then "?" and the query
// sorted by name as name=value pairs joined by "&", then "." and the
// POSTed form parameters sorted by name as name then value, then "." and
// a nonce sent beside the signature. The signature header may list
// several signatures, comma-separated.
//
// This is what plivo-python (plivo/utils/signature_v3.py,
// validate_v3_signature) and plivo-go (ValidateSignatureV3) compute;
// they differ only for a URL with a query and a POST without
// parameters, where plivo-go ends the query with "." and plivo-python
// does not: both are tried. The nonce is random and nothing is signed
// that changes with time, so nothing stops a replay.
type PlivoV3 struct {
	// Header names the signature header.
	Header string
	// NonceHeader names the header holding the nonce.
	NonceHeader string
}

// Describe implements Scheme.
func (s *PlivoV3) Describe() Description {
	return Description{
		Kind:        "hmac-sha256/base64/url+form+nonce",
		Headers:     []string{s.Header, s.NonceHeader},
		Replay:      ReplayNone,
		Body:        BodyParts,
		Credentials: Credentials{SignatureHeaders: []string{http.CanonicalHeaderKey(s.Header)}},
	}
}

// NewVerifier implements Scheme.
func (s *PlivoV3) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	keys, err := decodeKeys(SecretRaw, cfg.Secrets)
	if err != nil {
		return nil, err
	}
	return &plivoVerifier{s: s, keys: keys, header: http.CanonicalHeaderKey(s.Header), nonce: http.CanonicalHeaderKey(s.NonceHeader)}, nil
}

// Sign implements Scheme, with m.ID as the nonce.
func (s *PlivoV3) Sign(secret string, m *Message) error {
	if secret == "" {
		return fmt.Errorf("secret is empty")
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if m.Header.Get("Content-Type") == "" && len(m.Body) > 0 {
		m.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	contents, _, err := s.contents(m.URL, m.Header, m.Body)
	if err != nil {
		return err
	}
	nonce := orDefault(m.ID, "nonce")
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, contents[0]+"."+nonce)
	m.Header.Set(s.Header, base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	m.Header.Set(s.NonceHeader, nonce)
	return nil
}

type plivoVerifier struct {
	s             *PlivoV3
	keys          [][]byte
	header, nonce string
}

func (v *plivoVerifier) Verify(r *Request) (Verified, error) {
	list := headerValue(r.Header, v.header)
	if list == "" {
		return Verified{}, refuse(ReasonMissingSignature, "header %s is missing", v.header)
	}
	nonce := headerValue(r.Header, v.nonce)
	if nonce == "" {
		return Verified{}, refuse(ReasonMissingHeader, "header %s is missing", v.nonce)
	}
	var sigs [][]byte
	for _, sig := range strings.SplitN(list, ",", maxCandidates) {
		var buf [sha256.Size]byte
		if n, ok := decodeBase64Into(buf[:], strings.TrimSpace(sig), base64.RawStdEncoding); ok && n == sha256.Size {
			sigs = append(sigs, buf[:])
		}
	}
	if len(sigs) == 0 {
		return Verified{}, refuse(ReasonMalformedSignature, "header %s holds no well-formed signature", v.header)
	}
	contents, body, err := v.s.contents(r.URL, r.Header, r.Body)
	if err != nil {
		return Verified{}, err
	}
	for _, content := range contents {
		for _, want := range sigs {
			if i, ok := keyThatSigns(v.keys, sha256.New, want, func(w io.Writer) { io.WriteString(w, content+"."+nonce) }); ok {
				return Verified{Body: body, Secret: i}, nil
			}
		}
	}
	return Verified{}, refuse(ReasonSignatureMismatch, "no signature in header %s matches a configured secret", v.header)
}

// contents are the strings a delivery may have been signed over, the
// nonce aside, and how much of the body they cover. A query or form
// that repeats a name is refused: the SDKs read such names differently.
func (s *PlivoV3) contents(rawURL string, h http.Header, body []byte) ([]string, Coverage, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, BodyNone, refuse(ReasonSignatureMismatch, "the public URL does not parse")
	}
	params, covered, err := (&Form{}).params(rawURL, h, body)
	if err != nil {
		return nil, BodyNone, err
	}
	query := u.Query()
	for _, vals := range []url.Values{query, params} {
		if name, found := formDuplicateKey(vals); found {
			return nil, BodyNone, refuse(ReasonMalformedSignature, "parameter %.64q is repeated", name)
		}
	}
	base := u.Scheme + "://" + u.Host + u.EscapedPath()
	if len(query) == 0 && len(params) == 0 {
		return []string{base}, covered, nil
	}
	signedQuery := base + "?" + sortedPairs(query, "=", "&")
	if len(params) == 0 {
		return []string{signedQuery, signedQuery + "."}, covered, nil
	}
	if len(query) > 0 {
		signedQuery += "."
	}
	return []string{signedQuery + sortedPairs(params, "", "")}, covered, nil
}

// sortedPairs writes the first value of each name, by sorted name,
// joined as the SDKs do.
func sortedPairs(vals url.Values, kvSep, pairSep string) string {
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteString(pairSep)
		}
		b.WriteString(name + kvSep + vals.Get(name))
	}
	return b.String()
}

// Interface guards
var (
	_ Scheme   = (*PlivoV3)(nil)
	_ Verifier = (*plivoVerifier)(nil)
)
