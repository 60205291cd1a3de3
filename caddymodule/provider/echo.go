package provider

import (
	"net/http"
	"net/url"
)

// An unsigned challenge is answered to whoever sends it, so the gateway
// must make sure that what it echoes is only ever a token: a short run of
// printable characters, served as text that no browser sniffs into
// anything else. A token of any other shape is refused, never echoed.

// TokenShape says which challenge tokens may be echoed or answered.
type TokenShape struct {
	// MaxLen bounds the token's length in bytes.
	MaxLen int
	// Allowed reports whether a byte may appear in a token.
	Allowed func(byte) bool
}

// Accepts reports whether token has the shape: not empty, not longer
// than MaxLen, and made only of allowed bytes.
func (s TokenShape) Accepts(token string) bool {
	if token == "" || len(token) > s.MaxLen {
		return false
	}
	for i := 0; i < len(token); i++ {
		if !s.Allowed(token[i]) {
			return false
		}
	}
	return true
}

// printableToken is the shape of an opaque token that is echoed as
// text: printable ASCII, spaces included (Microsoft Graph's validation
// tokens read "Validation: Testing client application reachability for
// subscription Request-Id: <guid>"), and nothing that could end a line,
// start an escape or be decoded as another character set. 1 KiB is
// several times the longest token the providers document or send.
var printableToken = TokenShape{MaxLen: 1024, Allowed: func(c byte) bool { return c >= 0x20 && c <= 0x7e }}

// challengeParam returns the value of the query parameter param when the
// request is a challenge: its method and a parameter present. A
// parameter given twice is returned as "\n", which no shape accepts, so
// that such a request is refused rather than answered with either.
func challengeParam(r *Request, method, param string) (string, bool) {
	if r.Method != method {
		return "", false
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return "", false
	}
	values, ok := u.Query()[param]
	switch {
	case !ok:
		return "", false
	case len(values) != 1:
		return "\n", true
	}
	return values[0], true
}

// badChallenge refuses a challenge whose token is not one the provider
// sends; the answer names the parameter, never its value.
func badChallenge(param string) *Answer {
	return &Answer{
		Status: http.StatusBadRequest,
		Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Content-Type-Options": {"nosniff"}},
		Body:   []byte("query parameter " + param + " is not a token this provider sends\n"),
	}
}
