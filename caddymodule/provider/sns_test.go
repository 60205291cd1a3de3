package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testTopic   = "arn:aws:sns:us-east-1:123456789012:orders"
	testCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem"
)

// snsKeySource serves one document for every request and records the
// requests; the real KeySource (caddymodule/keyfetch) applies their rules.
type snsKeySource struct {
	doc []byte
	err error

	mu   sync.Mutex
	reqs []KeyRequest
}

func (k *snsKeySource) Fetch(_ context.Context, req KeyRequest) (KeyDocument, error) {
	k.mu.Lock()
	k.reqs = append(k.reqs, req)
	k.mu.Unlock()
	if k.err != nil {
		return KeyDocument{}, k.err
	}
	return KeyDocument{Body: k.doc, Fetched: time.Now()}, nil
}

func (k *snsKeySource) requests() []KeyRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]KeyRequest(nil), k.reqs...)
}

// certPair is an RSA key (the signer's secret) and a certificate of it,
// valid a year either side of testNow (what the KeySource serves).
func certPair(t testing.TB) keyPair {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{"rsa-certificate", rsaKeyPEM(key), testCertificate(t, key, testNow.AddDate(-1, 0, 0), testNow.AddDate(1, 0, 0))}
}

func rsaKeyPEM(key *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func testCertificate(t testing.TB, key *rsa.PrivateKey, notBefore, notAfter time.Time) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: notBefore, NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// snsEnvelopes are one message of each type, as SNS sends them.
var snsEnvelopes = map[string]string{
	"notification":                 `{"Type":"Notification","TopicArn":"` + testTopic + `","Subject":"Order","Message":"{\"id\":\"evt_1\"}","UnsubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=` + testTopic + `:1","MessageAttributes":{"kind":{"Type":"String","Value":"created"}}}`,
	"notification_without_subject": `{"Type":"Notification","TopicArn":"` + testTopic + `","Message":"hello <b>&</b>"}`,
	"subscription_confirmation":    `{"Type":"SubscriptionConfirmation","TopicArn":"` + testTopic + `","Token":"2336412f37","Message":"You have chosen to subscribe","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=` + testTopic + `&Token=2336412f37"}`,
	"unsubscribe_confirmation":     `{"Type":"UnsubscribeConfirmation","TopicArn":"` + testTopic + `","Token":"2336412f37","Message":"You have chosen to deactivate","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=` + testTopic + `&Token=2336412f37"}`,
}

// signSNS signs an envelope at a time with a signature version.
func signSNS(t testing.TB, secret, envelope, version string, at time.Time) *Request {
	t.Helper()
	if version == "1" {
		envelope = strings.Replace(envelope, `{`, `{"SignatureVersion":"1",`, 1)
	}
	m := Message{Body: []byte(envelope), ID: "b2ae9ec6-2156-5e66-91f3-cc7fa740f142", Timestamp: at, KeyURL: testCertURL, Header: http.Header{}}
	if err := (SNS{}).Sign(secret, &m); err != nil {
		t.Fatalf("sign: %v", err)
	}
	return &Request{Method: "POST", URL: "https://hooks.example.com/sns", Header: m.Header, Body: m.Body, Now: testNow}
}

func snsVerifierFor(t testing.TB, keys KeySource) Verifier {
	t.Helper()
	v, err := mustLookup("sns").NewVerifier(VerifierConfig{Keys: keys, Topics: []string{"arn:aws:sns:eu-west-1:1:other", testTopic}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSNSStringToSign: the canonical strings of AWS's own examples.
func TestSNSStringToSign(t *testing.T) {
	for _, c := range []struct {
		name string
		msg  snsMessage
		want string
	}{
		{"notification", snsMessage{
			"Type": "Notification", "Message": "My Test Message", "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
			"Subject": "My subject", "Timestamp": "2019-01-31T04:37:04.321Z",
			"TopicArn": "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P", "SigningCertURL": "https://x", "UnsubscribeURL": "https://y",
		}, "Message\nMy Test Message\nMessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\nSubject\nMy subject\nTimestamp\n2019-01-31T04:37:04.321Z\nTopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nNotification\n"},
		{"subscription_confirmation", snsMessage{
			"Type": "SubscriptionConfirmation", "Message": "My Test Message", "MessageId": "3d891288-136d-417f-bc05-901c108273ee",
			"SubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P&Token=233...",
			"Timestamp":    "2019-01-31T19:25:13.719Z", "Token": "233...", "TopicArn": "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P",
		}, "Message\nMy Test Message\nMessageId\n3d891288-136d-417f-bc05-901c108273ee\nSubscribeURL\nhttps://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P&Token=233...\nTimestamp\n2019-01-31T19:25:13.719Z\nToken\n233...\nTopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nSubscriptionConfirmation\n"},
		{"notification_without_subject", snsMessage{
			"Type": "Notification", "Message": "m", "MessageId": "1", "Timestamp": "2019-01-31T04:37:04.321Z", "TopicArn": "t",
		}, "Message\nm\nMessageId\n1\nTimestamp\n2019-01-31T04:37:04.321Z\nTopicArn\nt\nType\nNotification\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.msg.stringToSign()
			if err != nil || string(got) != c.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, c.want)
			}
		})
	}
}

// TestSNSVerifies: every message type, with either signature version,
// verifies with one fetch of the certificate under AWS's host rule, and
// the result names the signed id, time and coverage.
func TestSNSVerifies(t *testing.T) {
	kp := certPair(t)
	for name, envelope := range snsEnvelopes {
		for _, version := range []string{"1", "2"} {
			t.Run(name+"/v"+version, func(t *testing.T) {
				keys := &snsKeySource{doc: []byte(kp.verify)}
				r := signSNS(t, kp.sign, envelope, version, testNow.Add(-time.Minute))
				if !strings.Contains(string(r.Body), `"SignatureVersion":"`+version+`"`) {
					t.Fatalf("body lacks SignatureVersion %s: %s", version, r.Body)
				}
				got, err := snsVerifierFor(t, keys).Verify(r)
				if err != nil {
					t.Fatalf("genuine message refused: %v", err)
				}
				if got.ID != "b2ae9ec6-2156-5e66-91f3-cc7fa740f142" || got.Body != BodyParts || !got.Timestamp.Equal(testNow.Add(-time.Minute).Truncate(time.Millisecond)) {
					t.Fatalf("verified %+v", got)
				}
				reqs := keys.requests()
				if len(reqs) != 1 || reqs[0].URL != testCertURL || reqs[0].HostPattern != snsHosts || reqs[0].PathSuffix != ".pem" || reqs[0].Provider != "sns" || reqs[0].NoCache {
					t.Fatalf("fetches %+v", reqs)
				}
				if typ, signed := Read(mustLookup("sns").EventType, r, got); !signed || typ != r.Header.Get(snsTypeHeader) {
					t.Fatalf("event type %q signed=%v", typ, signed)
				}
			})
		}
	}
}

// TestSNSRefuses: forgeries and malformed messages are refused with the
// reason an operator needs; the topic is checked before any fetch.
func TestSNSRefuses(t *testing.T) {
	kp, other := certPair(t), certPair(t)
	envelope := snsEnvelopes["notification"]
	good := signSNS(t, kp.sign, envelope, "2", testNow)
	edit := func(f func(m map[string]any)) *Request {
		var m map[string]any
		if err := json.Unmarshal(good.Body, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		r := *good
		r.Header = good.Header.Clone()
		r.Body, _ = json.Marshal(m)
		return &r
	}
	header := func(name, value string) *Request {
		r := *good
		r.Header = good.Header.Clone()
		if value == "" {
			r.Header.Del(name)
		} else {
			r.Header.Set(name, value)
		}
		return &r
	}
	body := func(s string) *Request {
		r := *good
		r.Body = []byte(s)
		return &r
	}
	expired := func() string {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		return testCertificate(t, key, testNow.AddDate(-2, 0, 0), testNow.Add(-time.Hour))
	}
	type refusal struct {
		name    string
		r       *Request
		doc     string
		keyErr  error
		want    Reason
		fetches int
	}
	cases := []refusal{
		{"wrong key", good, other.verify, nil, ReasonSignatureMismatch, 1},
		{"expired certificate", good, expired(), nil, ReasonSignatureMismatch, 1},
		{"not a certificate", good, "<html>", nil, ReasonKeyUnavailable, 1},
		{"certificate URL refused", good, "", &Error{Reason: ReasonKeyNotAllowed, Detail: "host"}, ReasonKeyNotAllowed, 1},
		{"certificate unavailable", good, "", errors.New("timeout"), ReasonKeyUnavailable, 1},
		{"topic not allowed", edit(func(m map[string]any) { m["TopicArn"] = "arn:aws:sns:us-east-1:666:evil" }), kp.verify, nil, ReasonNotAllowed, 0},
		{"topic header differs", header(snsTopicHeader, "arn:aws:sns:us-east-1:666:evil"), kp.verify, nil, ReasonSignatureMismatch, 0},
		{"type header missing", header(snsTypeHeader, ""), kp.verify, nil, ReasonMissingHeader, 0},
		{"type header differs", header(snsTypeHeader, "SubscriptionConfirmation"), kp.verify, nil, ReasonSignatureMismatch, 0},
		{"id header differs", header(snsIDHeader, "other"), kp.verify, nil, ReasonSignatureMismatch, 0},
		{"signature version 3", edit(func(m map[string]any) { m["SignatureVersion"] = "3" }), kp.verify, nil, ReasonMalformedSignature, 0},
		{"signature version changed", edit(func(m map[string]any) { m["SignatureVersion"] = "1" }), kp.verify, nil, ReasonSignatureMismatch, 1},
		{"signature not base64", edit(func(m map[string]any) { m["Signature"] = "!!" }), kp.verify, nil, ReasonMalformedSignature, 0},
		{"signature removed", edit(func(m map[string]any) { delete(m, "Signature") }), kp.verify, nil, ReasonMissingSignature, 0},
		{"certificate URL removed", edit(func(m map[string]any) { delete(m, "SigningCertURL") }), kp.verify, nil, ReasonMissingSignature, 0},
		{"unknown type", edit(func(m map[string]any) { m["Type"] = "Other" }), kp.verify, nil, ReasonMalformedSignature, 0},
		{"repeated key", body(strings.Replace(string(good.Body), `{`, `{"Message":"forged",`, 1)), kp.verify, nil, ReasonMalformedSignature, 0},
		{"case variant of a signed field", body(strings.Replace(string(good.Body), `"Subject":"Order",`, `"subject":"forged",`, 1)), kp.verify, nil, ReasonMalformedSignature, 0},
		{"field not a string", edit(func(m map[string]any) { m["Message"] = 1 }), kp.verify, nil, ReasonMalformedSignature, 0},
		{"field null", edit(func(m map[string]any) { m["Subject"] = nil }), kp.verify, nil, ReasonMalformedSignature, 0},
		{"not json", body("Message=x"), kp.verify, nil, ReasonMalformedSignature, 0},
		{"raw message delivery", body(`{"id":"evt_1"}`), kp.verify, nil, ReasonMissingSignature, 0},
		{"invalid utf-8", body("{\"Message\":\"\xff\"}"), kp.verify, nil, ReasonMalformedSignature, 0},
		{"malformed timestamp", edit(func(m map[string]any) { m["Timestamp"] = "yesterday" }), kp.verify, nil, ReasonMalformedTimestamp, 0},
		{"too old", signSNS(t, kp.sign, envelope, "2", testNow.Add(-snsTolerance-time.Minute)), kp.verify, nil, ReasonTimestampTooOld, 1},
		{"in the future", signSNS(t, kp.sign, envelope, "2", testNow.Add(snsTolerance+time.Minute)), kp.verify, nil, ReasonTimestampInFuture, 1},
	}
	// Each signed field changed to another value that passes every
	// other check, and removed (which may fail before the signature).
	for f, changed := range map[string]string{
		"Message": "{\"id\":\"evt_2\"}", "MessageId": "other", "Subject": "Refund", "Timestamp": "2023-11-14T22:13:20.001Z",
		"TopicArn": "arn:aws:sns:eu-west-1:1:other", "Type": "",
	} {
		want := ReasonSignatureMismatch
		if changed == "" {
			want = ""
		}
		cases = append(cases,
			refusal{"changed " + f, edit(func(m map[string]any) { m[f] = changed }), kp.verify, nil, want, -1},
			refusal{"removed " + f, edit(func(m map[string]any) { delete(m, f) }), kp.verify, nil, "", -1})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys := &snsKeySource{doc: []byte(c.doc), err: c.keyErr}
			_, err := snsVerifierFor(t, keys).Verify(c.r)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("want a refusal, got %v", err)
			}
			if c.want != "" && perr.Reason != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
			if n := len(keys.requests()); c.fetches >= 0 && n != c.fetches {
				t.Fatalf("%d fetches, want %d", n, c.fetches)
			}
			if strings.Contains(err.Error(), "forged") || strings.Contains(err.Error(), "evil") && c.want != ReasonNotAllowed {
				t.Fatalf("refusal shows the sender's values: %v", err)
			}
		})
	}
}

// TestSNSCertificateChanges: a verifier that parsed one certificate reads
// the next document the KeySource serves, not the one it remembers.
func TestSNSCertificateChanges(t *testing.T) {
	kp, other := certPair(t), certPair(t)
	keys := &snsKeySource{doc: []byte(kp.verify)}
	v := snsVerifierFor(t, keys)
	r := signSNS(t, kp.sign, snsEnvelopes["notification"], "2", testNow)
	for i, c := range []struct {
		doc string
		ok  bool
	}{{kp.verify, true}, {kp.verify, true}, {other.verify, false}, {kp.verify, true}} {
		keys.mu.Lock()
		keys.doc = []byte(c.doc)
		keys.mu.Unlock()
		if _, err := v.Verify(r); (err == nil) != c.ok {
			t.Fatalf("delivery %d: %v, want ok=%v", i, err, c.ok)
		}
	}
}

// TestSNSNeedsKeysAndTopics: a route without a KeySource or topics is a
// config error, not a route that anyone's topic can post to.
func TestSNSNeedsKeysAndTopics(t *testing.T) {
	p := mustLookup("aws_sns")
	for name, cfg := range map[string]VerifierConfig{
		"no key source": {Topics: []string{testTopic}},
		"no topics":     {Keys: &snsKeySource{}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.NewVerifier(cfg); err == nil {
				t.Fatal("verifier built")
			}
		})
	}
}

// TestSNSConfirm: a verified SubscriptionConfirmation for an allowed
// topic is confirmed by one uncached GET of its SubscribeURL and
// answered 200; anything else fetches nothing.
func TestSNSConfirm(t *testing.T) {
	kp := certPair(t)
	sub := snsEnvelopes["subscription_confirmation"]
	otherURL := strings.Replace(sub, "TopicArn="+testTopic, "TopicArn=arn:aws:sns:us-east-1:123456789012:other", 1)
	cases := []struct {
		name     string
		envelope string
		topics   []string
		keyErr   error
		answered bool
		status   int
		fetches  int
	}{
		{"confirmed", sub, []string{testTopic}, nil, true, 200, 1},
		{"topic not allowed", sub, []string{"arn:aws:sns:us-east-1:1:other"}, nil, true, 403, 0},
		{"url for another topic", otherURL, []string{testTopic}, nil, true, 403, 0},
		{"url not confirming", strings.Replace(sub, "Action=ConfirmSubscription", "Action=Unsubscribe", 1), []string{testTopic}, nil, true, 403, 0},
		{"url for two topics", strings.Replace(sub, "&Token=", "&TopicArn=arn:aws:sns:us-east-1:1:other&Token=", 1), []string{testTopic}, nil, true, 403, 0},
		{"url refused by the key source", sub, []string{testTopic}, &Error{Reason: ReasonKeyNotAllowed}, true, 403, 1},
		{"confirmation failed", sub, []string{testTopic}, errors.New("503"), true, 503, 1},
		{"unsubscribe is a delivery", snsEnvelopes["unsubscribe_confirmation"], []string{testTopic}, nil, false, 0, 0},
		{"notification is a delivery", snsEnvelopes["notification"], []string{testTopic}, nil, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := signSNS(t, kp.sign, c.envelope, "2", testNow)
			keys := &snsKeySource{err: c.keyErr}
			ans, ok := SNSConfirm{}.AfterVerify(r, Verified{}, HandshakeConfig{Keys: keys, Topics: c.topics})
			if ok != c.answered || (ok && ans.Status != c.status) {
				t.Fatalf("answered=%v %+v", ok, ans)
			}
			reqs := keys.requests()
			if len(reqs) != c.fetches {
				t.Fatalf("%d fetches, want %d", len(reqs), c.fetches)
			}
			if c.fetches == 1 && (reqs[0].NoCache || reqs[0].HostPattern != snsHosts || !strings.HasPrefix(reqs[0].URL, "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&")) {
				t.Fatalf("fetch %+v", reqs[0])
			}
		})
	}
}

// TestSNSSign: the signer completes an envelope, keeping its unsigned
// fields, or wraps any other body as a Notification's Message.
func TestSNSSign(t *testing.T) {
	kp := certPair(t)
	t.Run("envelope", func(t *testing.T) {
		r := signSNS(t, kp.sign, snsEnvelopes["notification"], "2", testNow)
		var got map[string]any
		json.Unmarshal(r.Body, &got)
		if got["MessageAttributes"] == nil || got["SigningCertURL"] != testCertURL || got["Timestamp"] != "2023-11-14T22:13:20.000Z" || got["SignatureVersion"] != "2" {
			t.Fatalf("body %s", r.Body)
		}
		if r.Header.Get(snsTypeHeader) != "Notification" {
			t.Fatalf("header %v", r.Header)
		}
	})
	t.Run("wrapped", func(t *testing.T) {
		m := Message{Body: []byte(`{"id":"evt_1"}`), ID: "m1", Timestamp: testNow, KeyURL: testCertURL, Header: http.Header{snsTopicHeader: {testTopic}}}
		if err := (SNS{}).Sign(kp.sign, &m); err != nil {
			t.Fatal(err)
		}
		env, err := parseSNS(m.Body)
		if err != nil || env["Message"] != `{"id":"evt_1"}` || env["Type"] != "Notification" || env["TopicArn"] != testTopic || env["MessageId"] != "m1" {
			t.Fatalf("%v %q", err, m.Body)
		}
	})
	for name, m := range map[string]Message{
		"no key url":    {Body: []byte("x"), ID: "m1", Header: http.Header{snsTopicHeader: {testTopic}}},
		"no topic":      {Body: []byte("x"), ID: "m1", KeyURL: testCertURL},
		"no token":      {Body: []byte(`{"Type":"SubscriptionConfirmation","TopicArn":"t","Message":"m","SubscribeURL":"https://s"}`), ID: "m1", KeyURL: testCertURL},
		"not utf-8":     {Body: []byte("\xff"), ID: "m1", KeyURL: testCertURL, Header: http.Header{snsTopicHeader: {testTopic}}},
		"repeated keys": {Body: []byte(`{"Type":"Notification","Type":"Notification"}`), ID: "m1", KeyURL: testCertURL},
	} {
		t.Run(name, func(t *testing.T) {
			if err := (SNS{}).Sign(kp.sign, &m); err == nil {
				t.Fatalf("signed %s", m.Body)
			}
		})
	}
}

// TestSNSHosts: AWS's host rule, which the KeySource applies.
func TestSNSHosts(t *testing.T) {
	for host, want := range map[string]bool{
		"sns.us-east-1.amazonaws.com":             true,
		"sns.cn-north-1.amazonaws.com.cn":         true,
		"sns.us-gov-west-1.amazonaws.com":         true,
		"sns.us-east-1.amazonaws.com.evil.com":    false,
		"evil.com/sns.us-east-1.amazonaws.com":    false,
		"sns.x.amazonaws.com":                     false,
		"sqs.us-east-1.amazonaws.com":             false,
		"sns.us-east-1.amazonaws.com:8443":        false,
		"user@sns.us-east-1.amazonaws.com":        false,
		"sns.us-east-1.amazonaws.com.":            false,
		"sns.us-east-1.amazonaws.com\n.evil.com":  false,
		"xsns.us-east-1.amazonaws.com":            false,
		"sns.us-east-1.amazonawsXcom":             false,
		"sns.us_east_1.amazonaws.com":             false,
		"sns.us-east-1.amazonaws.com.cn.evil.com": false,
	} {
		if got := snsHosts.MatchString(host); got != want {
			t.Errorf("%q: %v, want %v", host, got, want)
		}
	}
}

// FuzzSNS: the envelope parser never panics, and what it accepts signs
// to the same canonical string after a round trip through the signer's
// encoding, so the gateway and an app read the same signed values.
func FuzzSNS(f *testing.F) {
	for _, e := range snsEnvelopes {
		f.Add([]byte(e))
	}
	f.Add([]byte(`{"Type":"Notification","Message":"a","message":"b"}`))
	f.Add([]byte(`{"Type":"Notification","MessageId":"1","Timestamp":"2023-11-14T22:13:20.000Z","TopicArn":"t","Message":"\u00e9\n\"x\""}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseSNS(body)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		content, err := m.stringToSign()
		again, perr := parseSNS(m.marshal(nil))
		if perr != nil {
			t.Fatalf("re-encoded envelope refused: %v", perr)
		}
		content2, err2 := again.stringToSign()
		if (err == nil) != (err2 == nil) || string(content) != string(content2) {
			t.Fatalf("canonical strings differ: %q %q", content, content2)
		}
	})
}

// BenchmarkSNSVerify measures a whole verification of a notification
// whose certificate the KeySource has cached, for either version.
func BenchmarkSNSVerify(b *testing.B) {
	kp := certPair(b)
	for _, version := range []string{"1", "2"} {
		b.Run("v"+version, func(b *testing.B) {
			r := signSNS(b, kp.sign, snsEnvelopes["notification"], version, testNow)
			v := snsVerifierFor(b, &snsKeySource{doc: []byte(kp.verify)})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
