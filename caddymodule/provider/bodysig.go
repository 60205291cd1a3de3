package provider

import (
	"crypto/hmac"
	"crypto/sha512"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// maxBodyItems bounds the separately signed items of one body.
const maxBodyItems = 1000

// BodyHMAC is the scheme of providers that put the signature in the body
// next to the fields it covers: a JSON object (Mailgun), every item of a
// JSON batch (Adyen's classic notifications), or a form (Braintree).
// Only the listed fields are authenticated, not the rest of the body, so
// a body that repeats a key is refused: parsers disagree about which of
// the two values counts (see dupkey.go).
type BodyHMAC struct {
	// Form reads the body as urlencoded form fields rather than JSON;
	// the paths below are then field names.
	Form bool `json:"form,omitempty"`

	// Items is a gjson path to an array whose items are each signed and
	// must each verify (Adyen's notificationItems). Empty: the body is
	// the one signed item.
	Items string `json:"items,omitempty"`

	// Signature lists paths to signatures; any may match (Mailgun's
	// signature.signature and, for subaccounts, parent-signature).
	// Required.
	Signature []string `json:"signature"`

	// SignatureList splits a signature field into entries, and
	// SignatureAfter keeps what follows it in each entry: Braintree
	// sends "public_key|signature" pairs joined by "&".
	SignatureList  string `json:"signature_list,omitempty"`
	SignatureAfter string `json:"signature_after,omitempty"`

	// Fields are the paths whose values, joined by Separator, are
	// signed; a missing one counts as empty. Required.
	Fields    []string `json:"fields"`
	Separator string   `json:"separator,omitempty"`

	// ID lists signed fields (each one of Fields) whose values, joined
	// by ":", are the event id: Mailgun's token, Adyen's pspReference
	// with its eventCode and success. Only a body of one item has one:
	// no single id names a batch.
	ID []string `json:"id,omitempty"`

	// Nonce is a signed field (one of Fields) whose value is single-use
	// within the tolerance (Mailgun's token).
	Nonce string `json:"nonce,omitempty"`

	// Timestamp is the path to the signed send time, if any.
	Timestamp       string          `json:"timestamp,omitempty"`
	TimestampFormat TimestampFormat `json:"timestamp_format,omitempty"`

	// Algorithm, Encoding and SecretEncoding are as for the HMAC scheme.
	Algorithm      Algorithm      `json:"algorithm,omitempty"`
	Encoding       Encoding       `json:"encoding,omitempty"`
	SecretEncoding SecretEncoding `json:"secret_encoding,omitempty"`
}

// Describe implements Scheme.
func (s *BodyHMAC) Describe() Description {
	where := "json"
	if s.Form {
		where = "form"
	}
	kind := "hmac-" + orDefault(string(s.Algorithm), "sha256") + "/" + orDefault(string(s.Encoding), "hex") + "/in-" + where
	hdrs := make([]string, len(s.Signature))
	fields := make([]string, len(s.Signature))
	for i, path := range s.Signature {
		hdrs[i] = where + ":" + path
		fields[i] = path
		if s.Items != "" {
			fields[i] = s.Items + ".#." + path
		}
	}
	return Description{
		Kind: kind, Headers: hdrs, Replay: s.replay(), Body: BodyParts,
		Credentials: Credentials{BodyFields: fields},
	}
}

// replay is what stops a replay: a body covers only some fields, so an
// attacker can vary the rest and a body hash stops nothing. A signed id
// is there for a body of one item, as Adyen sends them.
func (s *BodyHMAC) replay() string {
	switch {
	case s.Timestamp != "" && len(s.ID) > 0:
		return ReplayTimestampAndID
	case s.Timestamp != "":
		return ReplayTimestamp
	case len(s.ID) > 0:
		return ReplayID
	}
	return ReplayNone
}

func (s *BodyHMAC) compile() (*compiled, error) {
	if len(s.Signature) == 0 || len(s.Fields) == 0 {
		return nil, fmt.Errorf("body hmac scheme: signature and fields are required")
	}
	if s.Form && s.Items != "" {
		return nil, fmt.Errorf("body hmac scheme: items needs a JSON body")
	}
	for _, path := range append(slices.Clip(s.ID), s.Nonce) {
		if path != "" && !slices.Contains(s.Fields, path) {
			return nil, fmt.Errorf("body hmac scheme: id or nonce %s is not a signed field", path)
		}
	}
	// The header layout machinery gives hashing and encodings; the
	// header name only labels errors.
	c, err := (&HMAC{
		Header: []string{"body"}, Algorithm: s.Algorithm, Encoding: s.Encoding,
		TimestampFormat: s.TimestampFormat, SecretEncoding: s.SecretEncoding,
	}).compile()
	if err != nil {
		return nil, fmt.Errorf("body hmac scheme: %w", err)
	}
	return c, nil
}

// NewVerifier implements Scheme.
func (s *BodyHMAC) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	c, err := s.compile()
	if err != nil {
		return nil, err
	}
	macs, err := c.macPools(s.SecretEncoding, cfg.Secrets)
	if err != nil {
		return nil, err
	}
	return &bodyVerifier{s: s, c: c, macs: macs, tolerance: cfg.Tolerance}, nil
}

// item reads one signed item's fields.
type item interface {
	get(path string) string
}

type jsonItem struct{ gjson.Result }

// get reads a number as it is written: gjson's String would give 1e3
// and 1000.0 as "1000", so the signature of 1000 would also cover
// spellings that other parsers read differently.
func (j jsonItem) get(path string) string {
	r := j.Get(path)
	if r.Type == gjson.Number {
		return r.Raw
	}
	return r.String()
}

type formItem struct{ url.Values }

func (f formItem) get(name string) string { return f.Values.Get(name) }

// items splits a body into its signed items, refusing a body that
// repeats a key.
func (s *BodyHMAC) items(body []byte) ([]item, error) {
	if s.Form {
		vals, err := parseForm(body)
		if err != nil {
			return nil, err
		}
		if name, found := formDuplicateKey(vals); found {
			return nil, refuse(ReasonMalformedSignature, "form repeats field %.64q", name)
		}
		return []item{formItem{vals}}, nil
	}
	// The key check runs first: it also bounds the nesting that gjson's
	// validator would recurse into.
	key, found, err := jsonDuplicateKey(body)
	if err != nil || !gjson.ValidBytes(body) {
		return nil, refuse(ReasonMalformedSignature, "body is not valid JSON")
	}
	if found {
		return nil, refuse(ReasonMalformedSignature, "body repeats key %.64q in one object", key)
	}
	root := gjson.ParseBytes(body)
	if s.Items == "" {
		return []item{jsonItem{root}}, s.refuseCaseVariants(jsonItem{root})
	}
	arr := root.Get(s.Items)
	if !arr.IsArray() {
		return nil, refuse(ReasonMissingSignature, "body has no %s array", s.Items)
	}
	var out []item
	for _, it := range arr.Array() {
		if len(out) == maxBodyItems {
			return nil, refuse(ReasonMalformedSignature, "body has more than %d items", maxBodyItems)
		}
		if err := s.refuseCaseVariants(jsonItem{it}); err != nil {
			return nil, err
		}
		out = append(out, jsonItem{it})
	}
	if len(out) == 0 {
		return nil, refuse(ReasonMissingSignature, "body has no signed item")
	}
	return out, nil
}

// refuseCaseVariants refuses an item that lacks a signed field but holds
// a key differing from it only in case: the signature then covers an
// empty value, while encoding/json (and ASP.NET) read the variant. A
// present field needs no check, since the two would be a repeated key.
func (s *BodyHMAC) refuseCaseVariants(it jsonItem) error {
	for _, path := range s.Fields {
		if key, found := it.caseVariant(path); found {
			return refuse(ReasonMalformedSignature, "body has key %.64q where the signed field %s is absent", key, path)
		}
	}
	return nil
}

// caseVariant returns the key, if any, that stands where path is absent
// and differs from its missing segment only in case.
func (j jsonItem) caseVariant(path string) (variant string, found bool) {
	obj := j.Result
	for _, seg := range strings.Split(path, ".") {
		if next := obj.Get(seg); next.Exists() {
			obj = next
			continue
		}
		want := foldJSONKey(seg)
		obj.ForEach(func(k, _ gjson.Result) bool {
			variant, found = k.String(), k.Type == gjson.String && foldJSONKey(k.String()) == want
			return !found
		})
		return variant, found
	}
	return "", false
}

// content is the signed string of an item.
func (s *BodyHMAC) content(it item) string {
	parts := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		parts[i] = it.get(f)
	}
	return strings.Join(parts, s.Separator)
}

// candidates are an item's presented signatures.
func (s *BodyHMAC) candidates(it item) []string {
	var out []string
	for _, path := range s.Signature {
		v := it.get(path)
		if v == "" {
			continue
		}
		entries := []string{v}
		if s.SignatureList != "" {
			entries = strings.Split(v, s.SignatureList)
		}
		for _, e := range entries {
			if s.SignatureAfter != "" {
				var ok bool
				if _, e, ok = strings.Cut(e, s.SignatureAfter); !ok {
					continue
				}
			}
			if len(out) < maxCandidates {
				out = append(out, strings.TrimSpace(e))
			}
		}
	}
	return out
}

type bodyVerifier struct {
	s         *BodyHMAC
	c         *compiled
	macs      []*macPool
	tolerance time.Duration
}

func (v *bodyVerifier) Verify(r *Request) (Verified, error) {
	items, err := v.s.items(r.Body)
	if err != nil {
		return Verified{}, err
	}
	// Every item verified: the first one's time and secret stand for
	// the body.
	out := Verified{Body: BodyParts, Secret: -1}
	for i, it := range items {
		ts, secret, err := v.verifyItem(it, r.Now)
		if err != nil {
			if len(items) > 1 {
				err.Detail = fmt.Sprintf("item %d: %s", i, err.Detail)
			}
			return Verified{}, err
		}
		if out.Secret < 0 {
			out.Timestamp, out.Secret = ts, secret
		}
	}
	if len(items) == 1 {
		out.ID = v.s.signedID(items[0])
		if v.s.Nonce != "" {
			out.Nonce = items[0].get(v.s.Nonce)
		}
	}
	return out, nil
}

// signedID joins the item's id fields, or is empty if any is.
func (s *BodyHMAC) signedID(it item) string {
	parts := make([]string, len(s.ID))
	for i, path := range s.ID {
		if parts[i] = it.get(path); parts[i] == "" {
			return ""
		}
	}
	return strings.Join(parts, ":")
}

// verifyItem checks one item and returns its signed time and the
// position of the secret that verified it.
func (v *bodyVerifier) verifyItem(it item, now time.Time) (time.Time, int, *Error) {
	var ts time.Time
	if v.s.Timestamp != "" {
		raw := it.get(v.s.Timestamp)
		if raw == "" {
			return ts, 0, refuse(ReasonMissingTimestamp, "timestamp %s is missing", v.s.Timestamp)
		}
		var err error
		if ts, err = v.c.TimestampFormat.parse(raw); err != nil {
			return ts, 0, refuse(ReasonMalformedTimestamp, "timestamp %s is %v", v.s.Timestamp, err)
		}
		if err := checkFreshness(ts, now, v.tolerance); err != nil {
			return ts, 0, err.(*Error)
		}
	}
	cands := v.s.candidates(it)
	if len(cands) == 0 {
		return ts, 0, refuse(ReasonMissingSignature, "signature %s is missing", strings.Join(v.s.Signature, " or "))
	}
	secret, ok := v.match(v.s.content(it), cands)
	if !ok {
		return ts, 0, refuse(ReasonSignatureMismatch, "no signature in %s matches a configured secret", strings.Join(v.s.Signature, " or "))
	}
	return ts, secret, nil
}

// match returns the position of the first secret that signs content.
func (v *bodyVerifier) match(content string, cands []string) (int, bool) {
	var got [sha512.Size]byte
	for i, pool := range v.macs {
		mac := pool.get()
		io.WriteString(mac, content)
		expected := mac.Sum(mac.sum[:0])
		found := false
		for _, c := range cands {
			n, ok := v.c.decode(got[:], c)
			found = found || (ok && hmac.Equal(expected, got[:n]))
		}
		pool.put(mac)
		if found {
			return i, true
		}
	}
	return 0, false
}

// Sign implements Scheme: it writes the signature of every item into
// the body, whose signature fields must exist (their values are
// replaced); a form gets the first signature field set.
func (s *BodyHMAC) Sign(secret string, m *Message) error {
	c, key, err := keyed(s.compile, s.SecretEncoding, secret)
	if err != nil {
		return err
	}
	sign := func(it item) string {
		mac := c.newMAC(key)
		mac.Write([]byte(s.content(it)))
		sig := c.encode(mac.Sum(nil))
		if s.SignatureAfter != "" {
			sig = "signer" + s.SignatureAfter + sig
		}
		return sig
	}
	if s.Form {
		vals, err := parseForm(m.Body)
		if err != nil {
			return err
		}
		vals.Set(s.Signature[0], sign(formItem{vals}))
		m.Body = []byte(vals.Encode())
		return nil
	}
	return s.spliceJSON(m, sign)
}

// spliceJSON replaces each item's signature value in place, last first
// so that earlier offsets stay right.
func (s *BodyHMAC) spliceJSON(m *Message, sign func(item) string) error {
	items, err := s.items(m.Body)
	if err != nil {
		return err
	}
	type edit struct {
		at, n int
		sig   string
	}
	var edits []edit
	for i, it := range items {
		path := s.Signature[0]
		if s.Items != "" {
			path = fmt.Sprintf("%s.%d.%s", s.Items, i, path)
		}
		// A path looked up from the root gives an offset into the body.
		sig := gjson.GetBytes(m.Body, path)
		if sig.Type != gjson.String || sig.Index == 0 {
			return fmt.Errorf("body hmac scheme: signing needs a string at %s", path)
		}
		edits = append(edits, edit{at: sig.Index, n: len(sig.Raw), sig: sign(it)})
	}
	body := slices.Clone(m.Body)
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		body = slices.Replace(body, e.at, e.at+e.n, []byte(`"`+e.sig+`"`)...)
	}
	m.Body = body
	return nil
}

// Interface guards
var (
	_ Scheme   = (*BodyHMAC)(nil)
	_ Verifier = (*bodyVerifier)(nil)
)
