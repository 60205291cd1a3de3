package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/tidwall/gjson"
)

// The endpoint challenges of the catalog, as a few kinds of data. Unsigned
// challenges (answered before verification) only ever echo what the
// request carries, never anything derived from a secret; a challenge whose
// answer needs the secret (Zoom) is answered only after its signature
// holds, or the gateway would sign whatever an attacker sent.

// QueryChallenge answers a request whose query carries a challenge to
// echo (Meta's hub.challenge, Dropbox's and Nylas's challenge, Microsoft
// Graph's validationToken), decoded, as the whole body of a 200
// text/plain answer that no browser sniffs. With TokenParam set, the
// request must also carry the route's verify token. Anyone may send a
// challenge and the answer comes from the route's origin, so only a
// value of the token shape is echoed; any other, or a parameter given
// twice, gets a 400 that does not repeat it.
type QueryChallenge struct {
	// Method is the challenge's method. Default: GET.
	Method string
	// Param names the query parameter holding the challenge.
	Param string
	// ModeParam and Mode, when set, must match (Meta: hub.mode=subscribe).
	ModeParam, Mode string
	// TokenParam names the parameter with the verify token, compared in
	// constant time with HandshakeConfig.VerifyToken.
	TokenParam string
	// Shape is what a challenge may look like. Default: printableToken.
	Shape TokenShape
}

// Methods implements Handshake.
func (h QueryChallenge) Methods() []string { return []string{h.method()} }

func (h QueryChallenge) method() string { return orDefault(h.Method, http.MethodGet) }

// BeforeVerify implements Handshake.
func (h QueryChallenge) BeforeVerify(r *Request, cfg HandshakeConfig) (*Answer, bool) {
	if h.ModeParam != "" && query(r.URL).Get(h.ModeParam) != h.Mode {
		return nil, false
	}
	challenge, ok := challengeParam(r, h.method(), h.Param)
	if !ok || challenge == "" {
		return nil, false
	}
	if h.TokenParam != "" && !sameToken(query(r.URL).Get(h.TokenParam), cfg.VerifyToken) {
		return &Answer{Status: http.StatusForbidden}, true
	}
	shape := h.Shape
	if shape.Allowed == nil {
		shape = printableToken
	}
	if !shape.Accepts(challenge) {
		return badChallenge(h.Param), true
	}
	return text(challenge, http.Header{"X-Content-Type-Options": {"nosniff"}}), true
}

// AfterVerify implements Handshake.
func (QueryChallenge) AfterVerify(*Request, Verified, HandshakeConfig) (*Answer, bool) {
	return nil, false
}

// HeaderChallenge answers a request that carries a challenge header as
// a JSON field (Okta's X-Okta-Verification-Challenge -> {"verification":
// …}), or echoed in the same header, or, with Forward, passes it on to
// the app (Asana's X-Hook-Secret).
type HeaderChallenge struct {
	// Method is the challenge's method. Default: any.
	Method string
	// Header names the challenge header.
	Header string
	// JSONKey, when set, answers {JSONKey: value} instead of echoing
	// the header.
	JSONKey string
	// Forward passes the challenge on to the app: the header carries
	// the secret that will sign the deliveries to come, which only the
	// app can keep (and the operator then configure). The route may
	// have no secret yet.
	Forward bool
}

// Methods implements Handshake.
func (h HeaderChallenge) Methods() []string {
	if h.Method == "" {
		return nil
	}
	return []string{h.Method}
}

// BeforeVerify implements Handshake.
func (h HeaderChallenge) BeforeVerify(r *Request, _ HandshakeConfig) (*Answer, bool) {
	value := r.Header.Get(h.Header)
	if value == "" || (h.Method != "" && r.Method != h.Method) {
		return nil, false
	}
	switch {
	case h.Forward:
		return &Answer{Forward: true, Header: http.Header{http.CanonicalHeaderKey(h.Header): {value}}}, true
	case h.JSONKey != "":
		return jsonAnswer(map[string]string{h.JSONKey: value}), true
	}
	return &Answer{Status: http.StatusOK, Header: http.Header{h.Header: {value}}}, true
}

// AfterVerify implements Handshake.
func (HeaderChallenge) AfterVerify(*Request, Verified, HandshakeConfig) (*Answer, bool) {
	return nil, false
}

// Credentials names a forwarded challenge header as a token: it is a
// secret, to be redacted wherever the gateway logs a request.
func (h HeaderChallenge) Credentials() Credentials {
	if !h.Forward {
		return Credentials{}
	}
	return Credentials{TokenHeaders: []string{http.CanonicalHeaderKey(h.Header)}}
}

// MethodProbe answers 200 to a bare probe with a method the provider
// never delivers with (Trello's HEAD, Mailchimp's GET).
type MethodProbe struct{ Method string }

// Methods implements Handshake.
func (h MethodProbe) Methods() []string { return []string{h.Method} }

// BeforeVerify implements Handshake.
func (h MethodProbe) BeforeVerify(r *Request, _ HandshakeConfig) (*Answer, bool) {
	if r.Method != h.Method {
		return nil, false
	}
	return &Answer{Status: http.StatusOK}, true
}

// AfterVerify implements Handshake.
func (MethodProbe) AfterVerify(*Request, Verified, HandshakeConfig) (*Answer, bool) {
	return nil, false
}

// EventChallenge answers a signed delivery that is a challenge, once
// verified: Slack's url_verification and Twitch's
// webhook_callback_verification are echoed as text, Zoom's
// endpoint.url_validation gets its token HMACed with the secret. With
// Unsigned set it is answered before verification instead, which only
// suits a plain echo (monday.com's {"challenge": …}).
type EventChallenge struct {
	// When and Equals recognise the challenge: a header or body field
	// and its value. With Equals empty, the field's presence is enough.
	When   Field
	Equals string
	// Challenge is the gjson path of the value to answer with.
	Challenge string
	// Echo answers the JSON {Challenge: value} instead of plain text.
	Echo bool
	// Zoom answers {"plainToken", "encryptedToken"}.
	Zoom bool
	// Unsigned answers before verification.
	Unsigned bool
}

// Methods implements Handshake.
func (EventChallenge) Methods() []string { return nil }

// BeforeVerify implements Handshake.
func (h EventChallenge) BeforeVerify(r *Request, cfg HandshakeConfig) (*Answer, bool) {
	if !h.Unsigned {
		return nil, false
	}
	return h.answer(r, "")
}

// AfterVerify implements Handshake.
func (h EventChallenge) AfterVerify(r *Request, v Verified, cfg HandshakeConfig) (*Answer, bool) {
	if h.Unsigned {
		return nil, false
	}
	secret := ""
	if v.Secret >= 0 && v.Secret < len(cfg.Secrets) {
		secret = cfg.Secrets[v.Secret]
	}
	return h.answer(r, secret)
}

// answer answers the challenge; secret, which signs Zoom's answer, is the
// one that verified the challenge, so that a rotation in progress works.
func (h EventChallenge) answer(r *Request, secret string) (*Answer, bool) {
	got := Extract([]Field{h.When}, r.Header, r.Body)
	if got == "" || (h.Equals != "" && got != h.Equals) {
		return nil, false
	}
	challenge := gjson.GetBytes(r.Body, h.Challenge)
	if challenge.Type != gjson.String || challenge.String() == "" {
		return nil, false
	}
	value := challenge.String()
	switch {
	case h.Zoom:
		if secret == "" {
			return nil, false
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(value))
		return jsonAnswer(map[string]string{"plainToken": value, "encryptedToken": hex.EncodeToString(mac.Sum(nil))}), true
	case h.Echo:
		return jsonAnswer(map[string]string{h.Challenge: value}), true
	}
	return text(value, nil), true
}

func query(raw string) url.Values {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return u.Query()
}

// sameToken compares digests, so the timing shows neither content nor
// length; an unset token never matches.
func sameToken(got, want string) bool {
	if want == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func text(body string, extra http.Header) *Answer {
	h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	for k, v := range extra {
		h[k] = v
	}
	return &Answer{Status: http.StatusOK, Header: h, Body: []byte(body)}
}

func jsonAnswer(v map[string]string) *Answer {
	body, _ := json.Marshal(v)
	return &Answer{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

// Interface guards
var (
	_ Handshake = QueryChallenge{}
	_ Handshake = HeaderChallenge{}
	_ Handshake = MethodProbe{}
	_ Handshake = EventChallenge{}
)
