package provider

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestEchoAnswerIsPlainText: every unsigned challenge that is echoed
// (Microsoft Graph, Nylas, Meta, Dropbox) is served as text that no
// browser sniffs into anything else, and only a token-shaped value is
// echoed: anyone may send one, and the answer comes from the route's
// origin.
func TestEchoAnswerIsPlainText(t *testing.T) {
	const meta = "hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge="
	cases := []struct {
		name, provider, method, url string
		want                        int
	}{
		{"graph", "microsoft_graph", "POST", "https://hooks.example.com/in?validationToken=abc%3Cscript%3E", 200},
		{"nylas", "nylas", "GET", "https://hooks.example.com/in?challenge=abc", 200},
		{"meta", "meta", "GET", "https://hooks.example.com/in?" + meta + "1158201444", 200},
		{"dropbox", "dropbox", "GET", "https://hooks.example.com/in?challenge=abc123", 200},
		{"meta line break", "meta", "GET", "https://hooks.example.com/in?" + meta + "a%0D%0Ab", 400},
		{"dropbox too long", "dropbox", "GET", "https://hooks.example.com/in?challenge=" + strings.Repeat("a", 1025), 400},
		{"dropbox repeated", "dropbox", "GET", "https://hooks.example.com/in?challenge=a&challenge=b", 400},
		{"meta repeated", "meta", "GET", "https://hooks.example.com/in?" + meta + "1&hub.challenge=2", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ans, ok := mustLookup(c.provider).Handshake.BeforeVerify(&Request{Method: c.method, URL: c.url}, HandshakeConfig{VerifyToken: "verify-me"})
			if !ok || ans.Status != c.want {
				t.Fatalf("answered %v %+v, want %d", ok, ans, c.want)
			}
			if c.want == http.StatusOK {
				if got := ans.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q", got)
				}
			} else if strings.Contains(string(ans.Body), "a\r\nb") || len(ans.Body) > 200 {
				t.Errorf("a refused challenge echoed: %q", ans.Body)
			}
			if got := ans.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
		})
	}
}

// TestCRCAnswersOnlyTokens: X's CRC answer is an HMAC under the secret
// that signs deliveries, so anything that is not a short token, and
// above all anything shaped like a body, is refused unsigned.
func TestCRCAnswersOnlyTokens(t *testing.T) {
	secret := "consumer-" + rand.Text()
	cases := []struct {
		name, token string
		answered    bool
	}{
		{"uuid", "9b4507b3-9040-4669-9ca3-6b94edb50553", true},
		{"base64", "NDQ3MjM0NzAtZmY0OS00ODE1LWFlYjAtMWJhYWZkOTdhMmY5+/==", true},
		{"longest", strings.Repeat("a", 128), true},
		{"too long", strings.Repeat("a", 129), false},
		{"json body", `{"tweet_create_events":[{"id":1}]}`, false},
		{"brace", "{", false},
		{"space", "a b", false},
		{"line break", "a\nb", false},
		{"empty", "", false},
	}
	h := mustLookup("twitter").Handshake
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Request{Method: "GET", URL: "https://hooks.example.com/in?crc_token=" + url.QueryEscape(c.token)}
			ans, ok := h.BeforeVerify(r, HandshakeConfig{Secrets: []string{secret + c.name}})
			if !ok {
				t.Fatal("a CRC went on to verification")
			}
			if !c.answered {
				if ans.Status != http.StatusBadRequest || strings.Contains(string(ans.Body), "sha256=") {
					t.Fatalf("answered %d %q, want a 400 without a signature", ans.Status, ans.Body)
				}
				return
			}
			want := "sha256=" + crcAnswer(secret+c.name, c.token)
			if ans.Status != http.StatusOK || gjson.GetBytes(ans.Body, "response_token").String() != want {
				t.Fatalf("answered %d %s, want response_token %s", ans.Status, ans.Body, want)
			}
		})
	}
	r := &Request{Method: "GET", URL: "https://hooks.example.com/in?crc_token=a&crc_token=b"}
	if ans, _ := h.BeforeVerify(r, HandshakeConfig{Secrets: []string{secret}}); ans.Status != http.StatusBadRequest {
		t.Fatalf("a repeated crc_token got %d", ans.Status)
	}
}

// TestCRCRateLimited: a flood of challenges from one client for one
// secret gets the burst answered and the rest refused with Retry-After,
// without touching another route's allowance nor another client's (X's
// own challenge must still be answered while someone floods, or X marks
// the webhook invalid); the pace then lets one through.
func TestCRCRateLimited(t *testing.T) {
	h := mustLookup("twitter").Handshake.(*CRC)
	secret, other := "consumer-"+rand.Text(), "consumer-"+rand.Text()
	const flooder, xClient = "203.0.113.7", "198.51.100.20"
	at := time.Unix(1800000000, 0)
	crc := func(secret, client string, now time.Time) *Answer {
		r := &Request{Method: "GET", URL: "https://hooks.example.com/in?crc_token=tok", Now: now, Client: client}
		ans, _ := h.BeforeVerify(r, HandshakeConfig{Secrets: []string{secret}})
		return ans
	}
	answered := 0
	for range 20 {
		switch ans := crc(secret, flooder, at); ans.Status {
		case http.StatusOK:
			answered++
		case http.StatusTooManyRequests:
			if ans.Header.Get("Retry-After") == "" || len(ans.Body) > 0 {
				t.Fatalf("a refused CRC: %+v", ans)
			}
		default:
			t.Fatalf("status %d", ans.Status)
		}
	}
	if answered != int(h.Limit.Capacity()) {
		t.Fatalf("%d of 20 challenges answered, want the burst of %d", answered, h.Limit.Capacity())
	}
	cases := []struct {
		name, secret, client string
		at                   time.Time
		want                 int
	}{
		{"another secret, same client", other, flooder, at, http.StatusOK},
		{"same secret, another client", secret, xClient, at, http.StatusOK},
		{"same secret and client, at once", secret, flooder, at, http.StatusTooManyRequests},
		{"same secret and client, one interval later", secret, flooder, at.Add(h.Limit.Period / time.Duration(h.Limit.Count)), http.StatusOK},
	}
	for _, c := range cases {
		if ans := crc(c.secret, c.client, c.at); ans.Status != c.want {
			t.Errorf("%s: got %d, want %d", c.name, ans.Status, c.want)
		}
	}
}

// TestClientStateEveryNotification: every notification of a batch must
// carry a configured client state, and the body must leave no doubt
// about what it holds.
func TestClientStateEveryNotification(t *testing.T) {
	p := mustLookup("microsoft_graph")
	v, err := p.NewVerifier(VerifierConfig{Secrets: []string{"state-old", "state-new"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		want       Reason // empty: verified
		secret     int
	}{
		{name: "one", body: `{"value":[{"clientState":"state-new","changeType":"created"}]}`, secret: 1},
		{name: "two subscriptions, two secrets", body: `{"value":[{"clientState":"state-old"},{"clientState":"state-new"}]}`},
		{name: "second wrong", body: `{"value":[{"clientState":"state-old"},{"clientState":"guess"}]}`, want: ReasonSignatureMismatch},
		{name: "second missing", body: `{"value":[{"clientState":"state-old"},{"changeType":"deleted"}]}`, want: ReasonMissingSignature},
		{name: "not a string", body: `{"value":[{"clientState":["state-old"]}]}`, want: ReasonMissingSignature},
		{name: "empty", body: `{"value":[{"clientState":""}]}`, want: ReasonMissingSignature},
		{name: "prefix of a secret", body: `{"value":[{"clientState":"state-ol"}]}`, want: ReasonSignatureMismatch},
		{name: "repeated clientState", body: `{"value":[{"clientState":"guess","clientState":"state-old"}]}`, want: ReasonMalformedSignature},
		{name: "case variant", body: `{"value":[{"clientState":"state-old","ClientState":"guess"}]}`, want: ReasonMalformedSignature},
		{name: "repeated value", body: `{"value":[{"clientState":"state-old"}],"value":[{"clientState":"guess"}]}`, want: ReasonMalformedSignature},
		{name: "no notification", body: `{"value":[]}`, want: ReasonMissingSignature},
		{name: "value not an array", body: `{"value":{"clientState":"state-old"}}`, want: ReasonMissingSignature},
		{name: "item not an object", body: `{"value":["state-old"]}`, want: ReasonMalformedSignature},
		{name: "not json", body: `value=state-old`, want: ReasonMalformedSignature},
		{name: "two documents", body: `{"value":[{"clientState":"state-old"}]}{}`, want: ReasonMalformedSignature},
		{name: "too many", body: `{"value":[` + strings.Repeat(`{"clientState":"state-old"},`, maxNotifications) + `{"clientState":"state-old"}]}`, want: ReasonMalformedSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := v.Verify(&Request{Method: "POST", Body: []byte(c.body), Header: http.Header{}})
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.Body != BodyNone || got.Secret != c.secret || got.ID != "" {
					t.Fatalf("verified %+v: a client state signs no byte and no id", got)
				}
				return
			}
			var perr *Error
			if !errors.As(err, &perr) || perr.Reason != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
			if strings.Contains(perr.Detail, "state-") {
				t.Fatalf("refusal %q shows a client state", perr.Detail)
			}
		})
	}
	d := p.Describe()
	if d.Body != BodyNone || d.Replay != ReplayNone || !slices.Contains(d.Credentials.BodyFields, "value.#.clientState") {
		t.Fatalf("description %+v: want no body coverage, no replay protection, clientState redacted", d)
	}
}

// TestQuerySignature: the signature is read from the URL only; a header
// of the stand-in's name proves nothing, and a repeated parameter is
// refused.
func TestQuerySignature(t *testing.T) {
	p := mustLookup("pandadoc")
	good := signFor(t, p, "shared-key", testNow)
	v, err := p.NewVerifier(VerifierConfig{Secrets: []string{"shared-key"}})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(good.URL)
	sig := u.Query().Get("signature")
	cases := []struct {
		name   string
		url    string
		header http.Header
		want   Reason
	}{
		{name: "genuine", url: good.URL},
		{name: "stand-in header instead", url: good.unsigned.URL, header: http.Header{querySignatureHeader: {sig}}, want: ReasonMissingSignature},
		{name: "stand-in header beside a wrong one", url: good.unsigned.URL + "&signature=00", header: http.Header{querySignatureHeader: {sig}}, want: ReasonMalformedSignature},
		{name: "repeated", url: good.URL + "&signature=" + sig, want: ReasonMalformedSignature},
		{name: "empty", url: good.unsigned.URL + "&signature=", want: ReasonMissingSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, vs := range c.header {
				h[k] = vs
			}
			_, err := v.Verify(&Request{Method: "POST", URL: c.url, Header: h, Body: good.Body, Now: testNow})
			perr := wantRefusal(t, err, c.want)
			if perr == nil {
				return
			}
			if strings.Contains(perr.Detail, querySignatureHeader) || !strings.Contains(perr.Detail, "query parameter signature") {
				t.Fatalf("refusal %q does not name the query parameter", perr.Detail)
			}
		})
	}
	c := p.Describe().Credentials
	if !slices.Equal(c.SignatureQuery, []string{"signature"}) || len(c.SignatureHeaders) > 0 {
		t.Fatalf("credentials %+v: want the signature query parameter only", c)
	}
}

// TestCRCAnswerSignsNoDelivery: a CRC answer is an HMAC of the token
// under the secret that signs deliveries, in the very form of the
// delivery header, so a body equal to an answerable token (a JSON
// number, true, null, or any token-shaped text) must be refused as a
// delivery, or every answered challenge would be a delivery signed for
// the attacker who chose its token.
func TestCRCAnswerSignsNoDelivery(t *testing.T) {
	p := mustLookup("twitter")
	secret := "consumer-" + rand.Text()
	v, err := p.NewVerifier(VerifierConfig{Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		want       Reason // empty: verified
	}{
		{name: "number", body: "1234567890", want: ReasonUnsignedBody},
		{name: "null", body: "null", want: ReasonUnsignedBody},
		{name: "true", body: "true", want: ReasonUnsignedBody},
		{name: "uuid", body: "9b4507b3-9040-4669-9ca3-6b94edb50553", want: ReasonUnsignedBody},
		{name: "longest token", body: strings.Repeat("a", 128), want: ReasonUnsignedBody},
		{name: "one past the longest token", body: strings.Repeat("a", 129)},
		{name: "json object", body: `{"for_user_id":"1"}`},
		{name: "quoted string", body: `"abc"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"X-Twitter-Webhooks-Signature": {"sha256=" + crcAnswer(secret, c.body)}}
			_, err := v.Verify(&Request{Method: "POST", URL: "https://hooks.example.com/in", Header: h, Body: []byte(c.body), Now: testNow})
			wantRefusal(t, err, c.want)
		})
	}
}

// wantRefusal fails the test unless err is a refusal for want, or no
// error when want is empty; it returns the refusal.
func wantRefusal(t *testing.T, err error, want Reason) *Error {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return nil
	}
	var perr *Error
	if !errors.As(err, &perr) || perr.Reason != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	return perr
}
