package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"testing"

	"github.com/tidwall/gjson"
)

// handshakeCase is one challenge as the provider sends it.
type handshakeCase struct {
	name, provider string
	req            Request
	cfg            HandshakeConfig
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
			name: "asana x-hook-secret", provider: "asana",
			req:        post(``, http.Header{"X-Hook-Secret": {"b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"}}),
			want:       &Answer{Status: 200},
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
			after, answeredAfter := p.Handshake.AfterVerify(&c.req, c.cfg)
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
	if got.Status != c.want.Status {
		t.Fatalf("status %d, want %d", got.Status, c.want.Status)
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
