package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mailgunBodyAt is a Mailgun delivery signed with key at ts.
func mailgunBodyAt(key, token string, ts time.Time, eventData string) string {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	return `{"signature":{"timestamp":"` + stamp + `","token":"` + token + `","signature":"` + hmacHex(key, stamp+token) + `"},"event-data":` + eventData + `}`
}

// verifyAs builds the provider's verifier as a route does, with the
// provider's default tolerance unless cfg sets one, and verifies r.
func verifyAs(t *testing.T, name string, cfg VerifierConfig, r Request) (Verified, *Error) {
	t.Helper()
	v, err := mustLookup(name).NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	got, err := v.Verify(&r)
	var perr *Error
	if err != nil && !errors.As(err, &perr) {
		t.Fatalf("error %v is no *Error", err)
	}
	return got, perr
}

// TestMailgunReplayDefaults: Mailgun signs only a time and a token, so
// the shipped row must bound the time by default and hand the token back
// as the delivery's id and nonce, whatever event-data says.
func TestMailgunReplayDefaults(t *testing.T) {
	now := time.Unix(1700000000, 0)
	const key, token = "mg-key", "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
	cases := []struct {
		name   string
		age    time.Duration // how long before now it was signed
		data   string
		reason Reason
	}{
		{name: "fresh", age: time.Minute, data: `{"id":"ev-1","event":"delivered"}`},
		{name: "other event-data, same token", age: time.Minute, data: `{"id":"forged","event":"failed"}`},
		{name: "a retry signed seven hours ago", age: 7 * time.Hour, data: `{"id":"ev-1","event":"delivered"}`},
		{name: "signed nine hours ago", age: 9 * time.Hour, data: `{"id":"ev-1"}`, reason: ReasonTimestampTooOld},
		{name: "signed a day ago", age: 24 * time.Hour, data: `{"id":"ev-1"}`, reason: ReasonTimestampTooOld},
		{name: "signed nine hours ahead", age: -9 * time.Hour, data: `{"id":"ev-1"}`, reason: ReasonTimestampInFuture},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := mailgunBodyAt(key, token, now.Add(-c.age), c.data)
			got, err := verifyAs(t, "mailgun", VerifierConfig{Secrets: []string{"other", key}}, Request{Method: "POST", Body: []byte(body), Now: now})
			if c.reason != "" {
				if err == nil || err.Reason != c.reason {
					t.Fatalf("want %s, got %v", c.reason, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("want valid, got %v", err)
			}
			if got.ID != token || got.Nonce != token {
				t.Errorf("ID %q Nonce %q, want the signed token %q for both", got.ID, got.Nonce, token)
			}
			if got.Body != BodyParts || got.Secret != 1 || !got.Timestamp.Equal(now.Add(-c.age)) {
				t.Errorf("verified %+v, want BodyParts, secret 1 and the signed time", got)
			}
			id, signed := Identify(mustLookup("mailgun").EventID, &Request{Body: []byte(body)}, got)
			if id != token || !signed {
				t.Errorf("Identify = %q, %v; want the token, signed", id, signed)
			}
		})
	}
}

// TestRepeatedKeysRefused: where a signature covers only some fields of
// the body, appending a second copy of a signed field must not verify,
// whatever case or escapes it is spelled with, since the app's parser
// may read it instead of the signed one.
func TestRepeatedKeysRefused(t *testing.T) {
	now := time.Unix(1700000000, 0)
	item := adyenSigned("00112233", "p1")
	inItem := func(extra string) string {
		return `{"notificationItems":[` + item[:len(item)-2] + extra + `}}]}`
	}
	btKey := sha1.Sum([]byte("private"))
	btMAC := hmac.New(sha1.New, btKey[:])
	btMAC.Write([]byte("cGF5bG9hZA==\n"))
	btBody := "bt_payload=cGF5bG9hZA%3D%3D%0A&bt_signature=" + urlQueryEscape("pub|"+hex.EncodeToString(btMAC.Sum(nil)))
	mg := mailgunBodyAt("mg-key", "tok", now, `{"id":"e"}`)
	cases := []struct {
		name, provider, secret, body string
		reason                       Reason // empty: must verify
	}{
		{name: "adyen genuine", provider: "adyen", secret: "00112233", body: inItem("")},
		{name: "adyen same key in sibling objects", provider: "adyen", secret: "00112233", body: inItem(`,"extra":{"value":1,"currency":"x"}`)},
		{name: "adyen appended reference and amount", provider: "adyen", secret: "00112233", body: inItem(`,"merchantReference":"order-X","amount":{"value":99999999}`), reason: ReasonMalformedSignature},
		{name: "adyen upper-case key", provider: "adyen", secret: "00112233", body: inItem(`,"MERCHANTREFERENCE":"order-X"`), reason: ReasonMalformedSignature},
		{name: "adyen escaped key", provider: "adyen", secret: "00112233", body: inItem(`,"merchant\u0052eference":"order-X"`), reason: ReasonMalformedSignature},
		{name: "adyen case variant of an absent signed field", provider: "adyen", secret: "00112233", body: inItem(`,"OriginalReference":"psp-VICTIM"`), reason: ReasonMalformedSignature},
		{name: "adyen case variant of an absent signed parent", provider: "adyen", secret: "00112233", body: `{"notificationItems":[{"notificationRequestItem":{"originalReference":"psp-VICTIM"},` + item[1:] + `]}`, reason: ReasonMalformedSignature},
		{name: "adyen unsigned field beside", provider: "adyen", secret: "00112233", body: inItem(`,"reason":"unsigned but harmless"`)},
		{name: "adyen kelvin sign folds to k", provider: "adyen", secret: "00112233", body: `{"notificationItems":[` + item + `],"k":1,"\u212a":2}`, reason: ReasonMalformedSignature},
		{name: "adyen second item list", provider: "adyen", secret: "00112233", body: `{"notificationItems":[` + item + `],"notificationItems":[]}`, reason: ReasonMalformedSignature},
		{name: "adyen deep nesting", provider: "adyen", secret: "00112233", body: `{"notificationItems":[` + item + `],"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, reason: ReasonMalformedSignature},
		{name: "adyen amount spelled 1e3", provider: "adyen", secret: "00112233", body: `{"notificationItems":[` + strings.Replace(item, `"value":1000`, `"value":1e3`, 1) + `]}`, reason: ReasonSignatureMismatch},
		{name: "adyen amount spelled 999.99999999999999999", provider: "adyen", secret: "00112233", body: `{"notificationItems":[` + strings.Replace(item, `"value":1000`, `"value":999.99999999999999999`, 1) + `]}`, reason: ReasonSignatureMismatch},
		{name: "braintree genuine", provider: "braintree", secret: "private", body: btBody},
		{name: "braintree appended payload", provider: "braintree", secret: "private", body: btBody + "&bt_payload=FORGED", reason: ReasonMalformedSignature},
		{name: "braintree upper-case payload", provider: "braintree", secret: "private", body: btBody + "&BT_PAYLOAD=FORGED", reason: ReasonMalformedSignature},
		{name: "braintree dotted payload (php)", provider: "braintree", secret: "private", body: btBody + "&bt.payload=FORGED", reason: ReasonMalformedSignature},
		{name: "braintree payload array (php, rails)", provider: "braintree", secret: "private", body: btBody + "&bt_payload[]=FORGED", reason: ReasonMalformedSignature},
		{name: "mailgun genuine", provider: "mailgun", secret: "mg-key", body: mg},
		{name: "mailgun second signature object", provider: "mailgun", secret: "mg-key", body: mg[:len(mg)-1] + `,"signature":{"token":"other"}}`, reason: ReasonMalformedSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := verifyAs(t, c.provider, VerifierConfig{Secrets: []string{c.secret}}, Request{Method: "POST", Body: []byte(c.body), Now: now})
			switch {
			case c.reason == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case c.reason == "" && got.Body != BodyParts:
				t.Errorf("coverage %v, want BodyParts", got.Body)
			case c.reason != "" && (err == nil || err.Reason != c.reason):
				t.Fatalf("want %s, got %v", c.reason, err)
			}
		})
	}
}

// TestAdyenSignedID: one item's id is its signed pspReference, eventCode
// and success; a batch has no single id.
func TestAdyenSignedID(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, c := range []struct {
		name, body, want string
	}{
		{"one item", `{"notificationItems":[` + adyenSigned("00112233", "p1") + `]}`, "p1:AUTHORISATION:true"},
		{"batch", `{"notificationItems":[` + adyenSigned("00112233", "p1") + `,` + adyenSigned("00112233", "p2") + `]}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := verifyAs(t, "adyen", VerifierConfig{Secrets: []string{"00112233"}}, Request{Body: []byte(c.body), Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != c.want || got.Nonce != "" || got.Secret != 0 {
				t.Errorf("verified %+v, want ID %q", got, c.want)
			}
		})
	}
}

// TestBodySchemeDescriptions: the in-body schemes name where their
// signatures sit and what stops a replay.
func TestBodySchemeDescriptions(t *testing.T) {
	for _, c := range []struct {
		provider string
		fields   []string
		replay   string
	}{
		{"mailgun", []string{"signature.signature", "signature.parent-signature"}, ReplayTimestampAndID},
		{"adyen", []string{"notificationItems.#.NotificationRequestItem.additionalData.hmacSignature"}, ReplayID},
		{"braintree", []string{"bt_signature"}, ReplayNone},
	} {
		d := mustLookup(c.provider).Scheme.Describe()
		if strings.Join(d.Credentials.BodyFields, ",") != strings.Join(c.fields, ",") || d.Replay != c.replay {
			t.Errorf("%s: body fields %q replay %q, want %q %q", c.provider, d.Credentials.BodyFields, d.Replay, c.fields, c.replay)
		}
	}
	for _, s := range []*BodyHMAC{
		{Signature: []string{"s"}, Fields: []string{"a"}, ID: []string{"a", "b"}},
		{Signature: []string{"s"}, Fields: []string{"a"}, Nonce: "b"},
	} {
		if _, err := s.NewVerifier(VerifierConfig{Secrets: []string{"k"}}); err == nil || !strings.Contains(err.Error(), "not a signed field") {
			t.Errorf("an id or nonce outside the signed fields: %v", err)
		}
	}
}
