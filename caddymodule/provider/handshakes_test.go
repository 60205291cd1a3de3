package provider

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// handshakeCase is one challenge as the provider sends it.
type handshakeCase struct {
	name, provider string
	req            Request
	cfg            HandshakeConfig
	verified       Verified
	// signed challenges are answered only after verification.
	signed bool
	// want is the answer; nil means the request is not answered.
	want       *Answer
	wantHeader string
	wantJSON   map[string]string
}

func zoomToken(secret, plain string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(plain))
	return hex.EncodeToString(mac.Sum(nil))
}

// crcAnswer is X's CRC response token, computed apart from the gateway's
// code as X's own samples do.
func crcAnswer(secret, token string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(token))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestHandshakes(t *testing.T) {
	get := func(url string, h http.Header) Request { return Request{Method: "GET", URL: url, Header: h} }
	post := func(body string, h http.Header) Request {
		return Request{Method: "POST", URL: "https://hooks.example.com/in", Header: h, Body: []byte(body)}
	}
	ok := func(body string) *Answer { return &Answer{Status: 200, Body: []byte(body)} }
	postURL := func(url string) Request { return Request{Method: "POST", URL: url, Header: http.Header{}} }
	// A secret of this run's own keeps the CRC's rate limit, which
	// lives as long as the process, from carrying over between runs.
	crcSecret := "consumer-" + rand.Text()
	cases := []handshakeCase{
		{
			name: "zoom url_validation", provider: "zoom", signed: true,
			req:      post(`{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"}}`, http.Header{}),
			cfg:      HandshakeConfig{Secrets: []string{"zoom_secret_token"}},
			want:     &Answer{Status: 200},
			wantJSON: map[string]string{"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": zoomToken("zoom_secret_token", "qgg8vlvZRS6UYooatFL8Aw")},
		},
		{
			name: "zoom url_validation, second secret verified", provider: "zoom", signed: true,
			req:      post(`{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"}}`, http.Header{}),
			cfg:      HandshakeConfig{Secrets: []string{"old_secret", "new_secret"}},
			verified: Verified{Secret: 1},
			want:     &Answer{Status: 200},
			wantJSON: map[string]string{"encryptedToken": zoomToken("new_secret", "qgg8vlvZRS6UYooatFL8Aw")},
		},
		{
			name: "zoom ordinary event", provider: "zoom", signed: true,
			req: post(`{"event":"meeting.started","payload":{}}`, http.Header{}),
			cfg: HandshakeConfig{Secrets: []string{"s"}},
		},
		{
			name: "slack url_verification", provider: "slack", signed: true,
			req:  post(`{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`, http.Header{}),
			want: ok("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
		},
		{
			name: "twitch callback verification", provider: "twitch", signed: true,
			req:  post(`{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"type":"channel.follow"}}`, http.Header{"Twitch-Eventsub-Message-Type": {"webhook_callback_verification"}}),
			want: ok("pogchamp-kappa-360noscope-vohiyo"),
		},
		{
			name: "twitch notification", provider: "twitch", signed: true,
			req: post(`{"challenge":"x"}`, http.Header{"Twitch-Eventsub-Message-Type": {"notification"}}),
		},
		{
			name: "meta subscribe", provider: "meta",
			req:  get("https://hooks.example.com/in?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", nil),
			cfg:  HandshakeConfig{VerifyToken: "meatyhamhock"},
			want: ok("1158201444"),
		},
		{
			name: "meta wrong verify token", provider: "meta",
			req:  get("https://hooks.example.com/in?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess", nil),
			cfg:  HandshakeConfig{VerifyToken: "meatyhamhock"},
			want: &Answer{Status: 403},
		},
		{
			name: "meta no verify token configured", provider: "meta",
			req:  get("https://hooks.example.com/in?hub.mode=subscribe&hub.challenge=1&hub.verify_token=", nil),
			want: &Answer{Status: 403},
		},
		{
			name: "dropbox challenge", provider: "dropbox",
			req:        get("https://hooks.example.com/in?challenge=abc123", nil),
			want:       ok("abc123"),
			wantHeader: "X-Content-Type-Options",
		},
		{
			// Forwarded to the app, the only one that can keep it.
			name: "asana x-hook-secret", provider: "asana",
			req:        post(``, http.Header{"X-Hook-Secret": {"b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"}}),
			want:       &Answer{Forward: true},
			wantHeader: "X-Hook-Secret",
		},
		{
			name: "trello head", provider: "trello",
			req:  Request{Method: "HEAD", URL: "https://hooks.example.com/in"},
			want: &Answer{Status: 200},
		},
		{
			name: "okta verification", provider: "okta",
			req:      get("https://hooks.example.com/in", http.Header{"X-Okta-Verification-Challenge": {"nKNl5eWr6C3KqcGH"}}),
			want:     &Answer{Status: 200},
			wantJSON: map[string]string{"verification": "nKNl5eWr6C3KqcGH"},
		},
		{
			name: "okta ordinary delivery", provider: "okta",
			req: post(`{"eventType":"com.okta.event_hook"}`, http.Header{}),
		},
		{
			name: "microsoft graph validation", provider: "microsoft_graph",
			req:        postURL("https://hooks.example.com/in?validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+7b1b2dd6-d1a0-4d6b-9f7c-7f2f8e2a5b0c"),
			want:       ok("Validation: Testing client application reachability for subscription Request-Id: 7b1b2dd6-d1a0-4d6b-9f7c-7f2f8e2a5b0c"),
			wantHeader: "X-Content-Type-Options",
		},
		{
			name: "microsoft graph validation token with a line break", provider: "microsoft_graph",
			req:  postURL("https://hooks.example.com/in?validationToken=ok%0D%0AContent-Type%3A+text%2Fhtml"),
			want: &Answer{Status: 400, Body: []byte("query parameter validationToken is not a token this provider sends\n")},
		},
		{
			name: "microsoft graph validation token too long", provider: "microsoft_graph",
			req:  postURL("https://hooks.example.com/in?validationToken=" + strings.Repeat("a", 1025)),
			want: &Answer{Status: 400},
		},
		{
			name: "microsoft graph validation token not ascii", provider: "microsoft_graph",
			req:  postURL("https://hooks.example.com/in?validationToken=%C3%A9t%C3%A9"),
			want: &Answer{Status: 400},
		},
		{
			name: "microsoft graph validation token twice", provider: "microsoft_graph",
			req:  postURL("https://hooks.example.com/in?validationToken=a&validationToken=b"),
			want: &Answer{Status: 400},
		},
		{
			name: "microsoft graph notification", provider: "microsoft_graph",
			req: post(`{"value":[{"clientState":"s","changeType":"created"}]}`, http.Header{}),
		},
		{
			name: "nylas challenge", provider: "nylas",
			req:        get("https://hooks.example.com/in?challenge=bc609b38-c81f-47fb-a275-1d9bd61be301", nil),
			want:       ok("bc609b38-c81f-47fb-a275-1d9bd61be301"),
			wantHeader: "X-Content-Type-Options",
		},
		{
			name: "nylas challenge with a NUL", provider: "nylas",
			req:  get("https://hooks.example.com/in?challenge=a%00b", nil),
			want: &Answer{Status: 400},
		},
		{
			name: "nylas delivery", provider: "nylas",
			req: post(`{"type":"message.created"}`, http.Header{}),
		},
		{
			name: "x crc", provider: "twitter",
			req:      get("https://hooks.example.com/in?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553", nil),
			cfg:      HandshakeConfig{Secrets: []string{crcSecret}},
			want:     &Answer{Status: 200},
			wantJSON: map[string]string{"response_token": "sha256=" + crcAnswer(crcSecret, "9b4507b3-9040-4669-9ca3-6b94edb50553")},
		},
		{
			name: "x crc token shaped as a body", provider: "x",
			req:  get("https://hooks.example.com/in?crc_token=%7B%22tweet_create_events%22%3A%5B%5D%7D", nil),
			cfg:  HandshakeConfig{Secrets: []string{crcSecret}},
			want: &Answer{Status: 400},
		},
		{
			name: "x crc without a secret", provider: "twitter",
			req:  get("https://hooks.example.com/in?crc_token=abc", nil),
			want: &Answer{Status: 403},
		},
		{
			name: "x delivery", provider: "twitter",
			req: post(`{"for_user_id":"1","tweet_create_events":[]}`, http.Header{}),
			cfg: HandshakeConfig{Secrets: []string{crcSecret}},
		},
		{
			name: "monday challenge", provider: "monday",
			req:      post(`{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`, http.Header{}),
			want:     &Answer{Status: 200},
			wantJSON: map[string]string{"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, found := Lookup(c.provider)
			if !found || p.Handshake == nil {
				t.Fatalf("%s has no handshake", c.provider)
			}
			if c.req.Method != "POST" && !slices.Contains(p.Handshake.Methods(), c.req.Method) {
				t.Errorf("Methods() = %v lacks %s", p.Handshake.Methods(), c.req.Method)
			}
			before, answeredBefore := p.Handshake.BeforeVerify(&c.req, c.cfg)
			after, answeredAfter := p.Handshake.AfterVerify(&c.req, c.verified, c.cfg)
			if c.signed && answeredBefore {
				t.Fatal("a signed challenge was answered before verification")
			}
			if !c.signed && answeredAfter {
				t.Fatal("an unsigned challenge was answered after verification")
			}
			got, answered := before, answeredBefore
			if c.signed {
				got, answered = after, answeredAfter
			}
			checkAnswer(t, c, got, answered)
		})
	}
}

func checkAnswer(t *testing.T, c handshakeCase, got *Answer, answered bool) {
	t.Helper()
	if c.want == nil {
		if answered {
			t.Fatalf("answered an ordinary request: %+v", got)
		}
		return
	}
	if !answered {
		t.Fatal("challenge not answered")
	}
	if got.Status != c.want.Status || got.Forward != c.want.Forward {
		t.Fatalf("status %d forward %v, want %d %v", got.Status, got.Forward, c.want.Status, c.want.Forward)
	}
	if c.want.Body != nil && string(got.Body) != string(c.want.Body) {
		t.Fatalf("body %q, want %q", got.Body, c.want.Body)
	}
	for k, v := range c.wantJSON {
		if g := gjson.GetBytes(got.Body, k).String(); g != v {
			t.Fatalf("answer %s = %q, want %q", k, g, v)
		}
	}
	if c.wantHeader != "" && got.Header.Get(c.wantHeader) == "" {
		t.Fatalf("answer lacks header %s", c.wantHeader)
	}
	if c.wantHeader == "X-Hook-Secret" && got.Header.Get(c.wantHeader) != c.req.Header.Get(c.wantHeader) {
		t.Fatal("X-Hook-Secret not echoed")
	}
}

// TestZoomAnswersWithTheSecretThatVerified: during a rotation Zoom signs
// with the new secret, and its url_validation must be answered with it.
func TestZoomAnswersWithTheSecretThatVerified(t *testing.T) {
	p := mustLookup("zoom")
	const plain = "qgg8vlvZRS6UYooatFL8Aw"
	m := Message{Method: "POST", Timestamp: testNow, Header: http.Header{},
		Body: []byte(`{"event":"endpoint.url_validation","payload":{"plainToken":"` + plain + `"}}`)}
	if err := p.Scheme.Sign("new_secret", &m); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"old_secret", "new_secret"}
	v, err := p.NewVerifier(VerifierConfig{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Method: m.Method, Header: m.Header, Body: m.Body, Now: testNow}
	verified, err := v.Verify(r)
	if err != nil {
		t.Fatalf("genuine challenge refused: %v", err)
	}
	ans, ok := p.Handshake.AfterVerify(r, verified, HandshakeConfig{Secrets: secrets})
	if !ok {
		t.Fatal("challenge not answered")
	}
	if got, want := gjson.GetBytes(ans.Body, "encryptedToken").String(), zoomToken("new_secret", plain); got != want {
		t.Fatalf("encryptedToken %s, want %s (keyed with the secret that verified)", got, want)
	}
}

// TestAsanaRouteAwaitsItsSecret: an asana route configured before its
// handshake has a secret refuses every delivery, saying why.
func TestAsanaRouteAwaitsItsSecret(t *testing.T) {
	p := mustLookup("asana")
	v, err := p.NewVerifier(VerifierConfig{})
	if err != nil {
		t.Fatalf("an asana route without a secret is refused: %v", err)
	}
	r := signFor(t, p, "some-secret", testNow)
	var perr *Error
	if _, err := v.Verify(&r.Request); !errors.As(err, &perr) || !strings.Contains(perr.Detail, "X-Hook-Secret") {
		t.Fatalf("got %v, want a refusal naming X-Hook-Secret", err)
	}
	if _, err := mustLookup("github").NewVerifier(VerifierConfig{}); err == nil {
		t.Fatal("a github route without a secret was accepted")
	}
	if c := p.Describe().Credentials; !slices.Contains(c.TokenHeaders, "X-Hook-Secret") {
		t.Fatalf("X-Hook-Secret is not a credential: %+v", c)
	}
}
