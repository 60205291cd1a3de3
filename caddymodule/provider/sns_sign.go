package provider

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// snsTimeLayout is how SNS writes Timestamp: UTC with milliseconds.
const snsTimeLayout = "2006-01-02T15:04:05.000Z"

// Sign implements Scheme: it produces the envelope SNS would deliver,
// signed with secret, an RSA private key whose certificate is served at
// m.KeyURL. A body that is an SNS envelope (a JSON object whose Type is
// an SNS message type) is completed and signed as it is; any other body
// becomes the Message of a Notification, whose TopicArn is then taken
// from an X-Amz-Sns-Topic-Arn header. m.ID and m.Timestamp become
// MessageId and Timestamp; SignatureVersion is 2 unless the envelope
// says 1. The X-Amz-Sns-Message-Type header is set, as SNS sends it.
func (SNS) Sign(secret string, m *Message) error {
	key, err := parsePrivateKey(RSASHA256, secret)
	if err != nil {
		return fmt.Errorf("sns: %w", err)
	}
	if m.KeyURL == "" {
		return errors.New("sns: the signing certificate's URL is required (sign's --key-url)")
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	env, extra, err := snsEnvelope(m)
	if err != nil {
		return err
	}
	env["SigningCertURL"] = m.KeyURL
	if env["SignatureVersion"] != "1" {
		env["SignatureVersion"] = "2"
	}
	digest, newHash, _ := snsHash(env["SignatureVersion"])
	content, err := env.stringToSign()
	if err != nil {
		return fmt.Errorf("sns: %w", err)
	}
	h := newHash()
	h.Write(content)
	sig, err := key.Sign(rand.Reader, h.Sum(nil), digest)
	if err != nil {
		return fmt.Errorf("sns: %w", err)
	}
	env[snsSignatureName] = base64.StdEncoding.EncodeToString(sig)
	m.Body = env.marshal(extra)
	m.Header.Set(snsTypeHeader, env["Type"])
	return nil
}

// snsEnvelope is the message to sign, with the body's other fields
// (MessageAttributes) kept as they are.
func snsEnvelope(m *Message) (snsMessage, map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	var typ string
	if json.Unmarshal(m.Body, &raw) != nil || json.Unmarshal(raw["Type"], &typ) != nil || snsSigned[typ] == nil {
		raw = nil
	}
	env := snsMessage{"Type": snsNotification, "Message": string(m.Body)}
	if raw == nil && !utf8.Valid(m.Body) {
		return nil, nil, errors.New("sns: a Message must be UTF-8 text")
	}
	if raw != nil {
		var err error
		if env, err = parseSNS(m.Body); err != nil {
			return nil, nil, fmt.Errorf("sns: envelope: %w", err)
		}
		for _, f := range snsFields {
			delete(raw, f)
		}
	}
	if env["TopicArn"] == "" {
		env["TopicArn"] = m.Header.Get(snsTopicHeader)
	}
	if env["TopicArn"] == "" {
		return nil, nil, errors.New("sns: no TopicArn: give it in the envelope or an X-Amz-Sns-Topic-Arn header")
	}
	if m.ID != "" {
		env["MessageId"] = m.ID
	}
	if env["MessageId"] == "" {
		return nil, nil, errors.New("sns: no MessageId: give an id")
	}
	at := m.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	env["Timestamp"] = at.UTC().Format(snsTimeLayout)
	for _, f := range []string{"Signature", "SigningCertURL"} {
		delete(env, f)
	}
	return env, raw, nil
}

// marshal writes the envelope with its fields in SNS's order, then the
// extra fields by name, without escaping HTML as SNS does not.
func (env snsMessage) marshal(extra map[string]json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	field := func(name string, value []byte) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(jsonString(name))
		b.WriteByte(':')
		b.Write(value)
	}
	for _, f := range snsFields {
		if v, ok := env[f]; ok {
			field(f, jsonString(v))
		}
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		field(name, extra[name])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// jsonString encodes s as a JSON string, leaving <, > and & as they are.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
