package provider

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"hash"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// AWS SNS signs each HTTP/S delivery inside its JSON body: an RSA
// signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) over
// "Key\nValue\n" for a fixed list of the body's fields, checked with the
// public key of the X.509 certificate at the body's SigningCertURL.
// Sources: docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html,
// aws-sdk-ruby Aws::SNS::MessageVerifier (the host pattern, the fields).
//
// What is signed is not the body but those fields. The app receives the
// body as sent, so every other field in it (SigningCertURL,
// UnsubscribeURL, MessageAttributes) is whatever the last sender wrote:
// the coverage is BodyParts, and a body whose signed fields could read
// differently to another parser (a repeated key, a key differing only in
// case, a value that is not a string) is refused.

func init() {
	Register(&Provider{
		Name: "sns", Aliases: []string{"aws_sns", "amazon_sns"},
		Scheme: SNS{}, Tolerance: snsTolerance,
		// The id is Verified.ID, the signed MessageId. The type header
		// counts as signed: the verifier requires it to equal the
		// signed Type.
		EventID:    []Field{{JSON: "MessageId"}},
		EventType:  []Field{{Header: snsTypeHeader}},
		Handshake:  SNSConfirm{},
		Docs:       "https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html",
		Secretless: true,
		Options:    []string{"topics"},
	})
}

// snsHosts is AWS's pattern for the hosts of its signing certificates
// and subscription URLs (aws-sdk-ruby MessageVerifier AWS_HOSTNAMES; the
// same in AWS's PHP and JavaScript validators).
var snsHosts = regexp.MustCompile(`^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$`)

// snsTolerance bounds the signed Timestamp. SNS retries a failed HTTP/S
// delivery with the same signed message, so its Timestamp ages by up to
// the retry window: "the total policy retry time for an HTTP/S endpoint
// cannot be greater than 3,600 seconds. This is a hard limit"
// (docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html;
// the default policy is 3 retries 20 s apart). The hour plus 5 minutes
// for clocks and transit admits every retry; within it the signed
// MessageId, the default idempotency key, stops a replay.
const snsTolerance = time.Hour + 5*time.Minute

// snsMaxBody bounds an envelope: SNS messages are at most 256 KiB, and
// JSON escaping at most sextuples a byte.
const snsMaxBody = 2 << 20

// The message types and the header that repeats the type.
const (
	snsNotification  = "Notification"
	snsSubscribe     = "SubscriptionConfirmation"
	snsUnsubscribe   = "UnsubscribeConfirmation"
	snsTypeHeader    = "X-Amz-Sns-Message-Type"
	snsIDHeader      = "X-Amz-Sns-Message-Id"
	snsTopicHeader   = "X-Amz-Sns-Topic-Arn"
	snsKeyProvider   = "sns"
	snsSignatureName = "Signature"
)

// snsSigned lists, in byte order, the fields each message type signs;
// Subject is signed only when the message has one.
var snsSigned = map[string][]string{
	snsNotification: {"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"},
	snsSubscribe:    {"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"},
	snsUnsubscribe:  {"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"},
}

// snsFields are the envelope's string fields: the signed ones and those
// that say how to check them. A key that differs from one of them only
// in case is refused, since encoding/json would read it as that field.
var snsFields = []string{
	"Type", "MessageId", "Token", "TopicArn", "Subject", "Message", "SubscribeURL",
	"Timestamp", "SignatureVersion", snsSignatureName, "SigningCertURL", "UnsubscribeURL",
}

// snsCheckedHeaders are the SNS headers that, when present, must equal the
// signed field they repeat: the signature then covers them too.
var snsCheckedHeaders = []string{snsTypeHeader, snsIDHeader, snsTopicHeader}

// snsMessage is a parsed envelope: its string fields by name.
type snsMessage map[string]string

// parseSNS reads an envelope, refusing one that another parser could read
// differently: invalid UTF-8, a repeated key, a key that differs from a
// known field only in case, or a known field that is not a string.
func parseSNS(body []byte) (snsMessage, error) {
	if len(body) > snsMaxBody {
		return nil, refuse(ReasonMalformedSignature, "body is larger than an SNS message (%d bytes)", snsMaxBody)
	}
	if !utf8.Valid(body) {
		return nil, refuse(ReasonMalformedSignature, "body is not valid UTF-8")
	}
	key, found, err := jsonDuplicateKey(body)
	if err != nil {
		return nil, refuse(ReasonMalformedSignature, "body is not valid JSON")
	}
	if found {
		return nil, refuse(ReasonMalformedSignature, "body repeats key %.64q in one object", key)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, refuse(ReasonMissingSignature, "body is not an SNS message")
	}
	m := make(snsMessage, len(snsFields))
	for k, v := range raw {
		name, known := snsField(k)
		if !known {
			continue
		}
		if name != k {
			return nil, refuse(ReasonMalformedSignature, "body has key %.64q where SNS writes %s", k, name)
		}
		var s string
		if bytes.HasPrefix(v, []byte("null")) || json.Unmarshal(v, &s) != nil {
			return nil, refuse(ReasonMalformedSignature, "%s is not a string", name)
		}
		m[name] = s
	}
	return m, nil
}

// snsField returns the known field a key names, matching as
// encoding/json does, and whether it names one.
func snsField(key string) (string, bool) {
	folded := foldJSONKey(key)
	for _, f := range snsFields {
		if foldJSONKey(f) == folded {
			return f, true
		}
	}
	return "", false
}

// stringToSign is the canonical string of a message of a known type.
func (m snsMessage) stringToSign() ([]byte, error) {
	fields, ok := snsSigned[m["Type"]]
	if !ok {
		return nil, refuse(ReasonMalformedSignature, "Type is not an SNS message type")
	}
	var b bytes.Buffer
	for _, f := range fields {
		v, present := m[f]
		if !present {
			if f == "Subject" {
				continue
			}
			return nil, refuse(ReasonMalformedSignature, "SNS message has no %s", f)
		}
		b.WriteString(f)
		b.WriteByte('\n')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// snsHash is the digest of a SignatureVersion.
func snsHash(version string) (crypto.Hash, func() hash.Hash, bool) {
	switch version {
	case "1":
		return crypto.SHA1, sha1.New, true
	case "2":
		return crypto.SHA256, sha256.New, true
	}
	return 0, nil, false
}

// SNS is AWS SNS's scheme. Its verifier needs VerifierConfig.Keys, which
// fetches the certificates, and Topics, the topic ARNs the route accepts:
// any AWS account can create a topic and sign through SNS, so without
// the list anyone's topic could post to the route.
type SNS struct{}

// Describe implements Scheme.
func (SNS) Describe() Description {
	return Description{
		Kind:        "rsa-sha1/sha256/x509-in-json",
		Headers:     []string{"json:" + snsSignatureName, "json:SigningCertURL", snsTypeHeader},
		Tolerance:   snsTolerance,
		Replay:      ReplayTimestampAndID,
		Credentials: Credentials{BodyFields: []string{snsSignatureName}},
		Body:        BodyParts,
	}
}

// NewVerifier implements Scheme.
func (SNS) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	if cfg.Keys == nil {
		return nil, errors.New("sns scheme: no key source to fetch signing certificates with")
	}
	if len(cfg.Topics) == 0 {
		return nil, errors.New("sns scheme: topics is required: list the topic ARNs this route accepts")
	}
	return &snsVerifier{keys: cfg.Keys, topics: slices.Clone(cfg.Topics), tolerance: cfg.Tolerance, certs: newParsedDocs(parseCertificate)}, nil
}

type snsVerifier struct {
	keys      KeySource
	topics    []string
	tolerance time.Duration
	// certs are the certificates parsed, by URL: a burst signed by one
	// certificate parses it once.
	certs *parsedDocs[*x509.Certificate]
}

// Verify checks, in order: the envelope, the headers that repeat its
// fields, the topic (before anything is fetched), the certificate URL
// (by the KeySource, under AWS's host rule), the signature, then the
// time.
func (v *snsVerifier) Verify(r *Request) (Verified, error) {
	m, err := parseSNS(r.Body)
	if err != nil {
		return Verified{}, err
	}
	sig, digest, newHash, err := m.signature()
	if err != nil {
		return Verified{}, err
	}
	content, err := m.stringToSign()
	if err != nil {
		return Verified{}, err
	}
	if err := m.checkHeaders(r.Header); err != nil {
		return Verified{}, err
	}
	ts, err := time.Parse(time.RFC3339Nano, m["Timestamp"])
	if err != nil {
		return Verified{}, refuse(ReasonMalformedTimestamp, "Timestamp is not an RFC 3339 time")
	}
	if !slices.Contains(v.topics, m["TopicArn"]) {
		return Verified{}, refuse(ReasonNotAllowed, "TopicArn %.256q is not one of the route's topics", m["TopicArn"])
	}
	key, err := v.key(r, m["SigningCertURL"])
	if err != nil {
		return Verified{}, err
	}
	h := newHash()
	h.Write(content)
	if rsa.VerifyPKCS1v15(key, digest, h.Sum(nil), sig) != nil {
		return Verified{}, refuse(ReasonSignatureMismatch, "the signature does not match the message")
	}
	if err := checkFreshness(ts, r.Now, v.tolerance); err != nil {
		return Verified{}, err
	}
	return Verified{Timestamp: ts, ID: m["MessageId"], Body: BodyParts, Headers: snsCheckedHeaders, Secret: -1}, nil
}

// signature decodes the signature and names its digest.
func (m snsMessage) signature() ([]byte, crypto.Hash, func() hash.Hash, error) {
	b64, ok := m[snsSignatureName]
	if !ok || b64 == "" {
		return nil, 0, nil, refuse(ReasonMissingSignature, "body has no SNS Signature")
	}
	digest, newHash, ok := snsHash(m["SignatureVersion"])
	if !ok {
		return nil, 0, nil, refuse(ReasonMalformedSignature, "SignatureVersion is neither 1 nor 2")
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sig) == 0 {
		return nil, 0, nil, refuse(ReasonMalformedSignature, "Signature is not base64")
	}
	return sig, digest, newHash, nil
}

// checkHeaders wants the message-type header SNS always sends, and each
// SNS header present to equal the signed field it repeats, so that an
// app reading the header reads what was signed. The values are never
// shown: they are the sender's.
func (m snsMessage) checkHeaders(h http.Header) error {
	if h.Get(snsTypeHeader) == "" {
		return refuse(ReasonMissingHeader, "no %s header", snsTypeHeader)
	}
	for name, field := range map[string]string{snsTypeHeader: "Type", snsIDHeader: "MessageId", snsTopicHeader: "TopicArn"} {
		if vals, present := h[name]; present && (len(vals) != 1 || vals[0] != m[field]) {
			return refuse(ReasonSignatureMismatch, "%s differs from the signed %s", name, field)
		}
	}
	return nil
}

// key fetches the certificate at url through the KeySource, which
// admits only AWS's certificate hosts, and returns its RSA key if the
// certificate is valid now.
func (v *snsVerifier) key(r *Request, url string) (*rsa.PublicKey, error) {
	if url == "" {
		return nil, refuse(ReasonMissingSignature, "body has no SigningCertURL")
	}
	// AWS's certificate URLs have neither a query nor a fragment; each
	// variant would be a document of its own, so a flood of them could
	// push the genuine certificate out of the cache.
	if strings.ContainsAny(url, "?#") {
		return nil, refuse(ReasonKeyNotAllowed, "SigningCertURL has a query or a fragment")
	}
	doc, err := v.keys.Fetch(r.Ctx(), KeyRequest{Provider: snsKeyProvider, URL: url, HostPattern: snsHosts, PathSuffix: ".pem"})
	if err != nil {
		return nil, keyRefusal(err)
	}
	cert, err := v.certs.get(url, doc.Body)
	if err != nil {
		return nil, refuse(ReasonKeyUnavailable, "SigningCertURL: %v", err)
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, refuse(ReasonSignatureMismatch, "the signing certificate is not valid at this time")
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, refuse(ReasonSignatureMismatch, "the signing certificate's key is not RSA")
	}
	return key, nil
}

// parseCertificate reads the first PEM certificate of a fetched document.
func parseCertificate(doc []byte) (*x509.Certificate, error) {
	if len(doc) == 0 {
		return nil, errors.New("empty document")
	}
	block, _ := pem.Decode(doc)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, errors.New("certificate does not parse")
	}
	return cert, nil
}

// Interface guards
var (
	_ Scheme   = SNS{}
	_ Verifier = (*snsVerifier)(nil)
)
