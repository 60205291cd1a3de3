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
// body, the only kind X delivers), and the challenge is rate-limited per
// secret, which is what an oracle would be abused for.
type CRC struct {
	// Param names the query parameter holding the token.
	Param string
	// Shape is what a token may look like.
	Shape TokenShape
	// Limit paces the challenges answered for one secret.
	Limit store.Limit

	mu sync.Mutex
	// tats is the GCRA's theoretical arrival time, in Unix
	// microseconds, per digest of a route's secrets.
	tats map[[sha256.Size]byte]int64
}

// maxCRCLimiters bounds the limiter table; past it, entries whose pace
// has caught up with the clock are dropped (they hold nothing).
const maxCRCLimiters = 1024

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
	if wait, ok := h.admit(cfg.Secrets, r.Now); !ok {
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

// admit charges one challenge to the secrets' limiter and reports
// whether it is within the limit, else how long until one would be.
func (h *CRC) admit(secrets []string, now time.Time) (time.Duration, bool) {
	if now.IsZero() {
		now = time.Now()
	}
	key := secretsDigest(secrets)
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

// secretsDigest names a route's secrets without keeping them.
func secretsDigest(secrets []string) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range secrets {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Interface guards
var _ Handshake = (*CRC)(nil)
