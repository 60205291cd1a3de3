package provider

import (
	"crypto/hmac"
	"crypto/sha256"
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

func TestHandshakes(t *testing.T) {
	get := func(url string, h http.Header) Request { return Request{Method: "GET", URL: url, Header: h} }
	post := func(body string, h http.Header) Request {
		return Request{Method: "POST", URL: "https://hooks.example.com/in", Header: h, Body: []byte(body)}
	}
	ok := func(body string) *Answer { return &Answer{Status: 200, Body: []byte(body)} }
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
