package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// CRC answers X's challenge-response check: a GET with ?crc_token=
// answered {"response_token": "sha256=<base64 HMAC-SHA256(consumer
// secret, crc_token)>"} (docs.x.com, "Securing webhooks").
//
// The answer is an HMAC under the very secret that signs deliveries, over
// a string the caller chose: answered blindly, it would sign any body an
// attacker liked, and the signature would verify as X's. So only a short
// token-shaped crc_token is answered (crcToken: no '{', so never a JSON
// object, the only kind X delivers), the verifier refuses every body of
// that shape (guard: "1234", "null" or a UUID are tokens, and valid
// JSON too), and the challenge is rate-limited per secret and client.
// The limit is not per secret alone: X marks a webhook invalid when its
// CRC fails, so a bucket that anyone could empty would let anyone turn
// the route off.
type CRC struct {
	// Param names the query parameter holding the token.
	Param string
	// Shape is what a token may look like.
	Shape TokenShape
	// Limit paces the challenges answered for one secret and one
	// client address.
	Limit store.Limit

	mu sync.Mutex
	// tats is the GCRA's theoretical arrival time, in Unix
	// microseconds, per digest of a route's secrets and a client.
	tats map[[sha256.Size]byte]int64
}

// maxCRCLimiters bounds the limiter table; past it, entries whose pace
// has caught up with the clock are dropped (they hold nothing). A client
// that finds it still full is answered unlimited rather than refused:
// refusing would let whoever fills it with many addresses fail X's own
// CRC, and the guard makes an answer worthless to anyone else.
const maxCRCLimiters = 4096

// crcToken is the shape of a token X sends (a UUID in X's samples, base64
// in deliveries seen): base64 and URL-safe base64 characters, '=' and
// '-'. None of them opens a JSON value, and 128 bytes leaves room for
// any such token.
var crcToken = TokenShape{MaxLen: 128, Allowed: func(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '=' || c == '+' || c == '/'
}}

// Methods implements Handshake.
func (*CRC) Methods() []string { return []string{http.MethodGet} }

// BeforeVerify implements Handshake. The challenge is not signed: its
// answer is what proves the secret, to X.
func (h *CRC) BeforeVerify(r *Request, cfg HandshakeConfig) (*Answer, bool) {
	token, ok := challengeParam(r, http.MethodGet, h.Param)
	if !ok {
		return nil, false
	}
	if !h.Shape.Accepts(token) {
		return badChallenge(h.Param), true
	}
	if len(cfg.Secrets) == 0 {
		return &Answer{Status: http.StatusForbidden}, true
	}
	if wait, ok := h.admit(limiterKey(cfg.Secrets, r.Client), r.Now); !ok {
		secs := max(1, int(wait.Round(time.Second)/time.Second))
		return &Answer{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {strconv.Itoa(secs)}}}, true
	}
	// X's consumer secret is one at a time: the first configured is the
	// current one.
	mac := hmac.New(sha256.New, []byte(cfg.Secrets[0]))
	mac.Write([]byte(token))
	return jsonAnswer(map[string]string{"response_token": "sha256=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))}), true
}

// AfterVerify implements Handshake.
func (*CRC) AfterVerify(*Request, Verified, HandshakeConfig) (*Answer, bool) {
	return nil, false
}

// guard implements oracle. A token the challenge answers and a body are
// signed alike (HMAC-SHA256 under the same secret, "sha256=" and
// base64), so a body the token shape accepts is refused before its
// signature is even checked: its signature may be an answer obtained by
// whoever chose the token. X delivers JSON objects, which no token is.
func (h *CRC) guard(v Verifier) Verifier { return crcGuard{inner: v, shape: h.Shape} }

// crcGuard refuses the bodies a CRC answer could have signed.
type crcGuard struct {
	inner Verifier
	shape TokenShape
}

// Verify implements Verifier.
func (g crcGuard) Verify(r *Request) (Verified, error) {
	if len(r.Body) <= g.shape.MaxLen && g.shape.Accepts(string(r.Body)) {
		return Verified{}, refuse(ReasonUnsignedBody, "the body has the shape of a challenge token, whose signature any challenge could obtain")
	}
	return g.inner.Verify(r)
}

// admit charges one challenge to key's limiter and reports whether it
// is within the limit, else how long until one would be.
func (h *CRC) admit(key [sha256.Size]byte, now time.Time) (time.Duration, bool) {
	if now.IsZero() {
		now = time.Now()
	}
	at := now.UnixMicro()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tats == nil {
		h.tats = make(map[[sha256.Size]byte]int64)
	}
	if len(h.tats) >= maxCRCLimiters {
		for k, tat := range h.tats {
			if tat <= at {
				delete(h.tats, k)
			}
		}
	}
	allowed, tat := store.GCRA(h.Limit, at, h.tats[key])
	if !allowed {
		return h.Limit.Decide(false, at, tat).RetryAfter, false
	}
	if len(h.tats) < maxCRCLimiters || h.tats[key] != 0 {
		h.tats[key] = tat
	}
	return 0, true
}

// limiterKey names a route's secrets and a client without keeping the
// secrets.
func limiterKey(secrets []string, client string) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range secrets {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write([]byte{1})
	h.Write([]byte(client))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Interface guards
var (
	_ Handshake = (*CRC)(nil)
	_ oracle    = (*CRC)(nil)
	_ Verifier  = crcGuard{}
)
