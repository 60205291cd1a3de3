package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// The JWS algorithms a provider may allow. Each provider names exactly
// the ones it signs with, so "none", an HMAC over a public key
// (algorithm confusion) or any other algorithm is refused before a key
// is looked at.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

// maxJWT bounds a token read from a header or a body.
const maxJWT = 8 << 10

// maxKeyID bounds the kid a token names: it becomes part of a key
// request, so it must stay small.
const maxKeyID = 256

// es256Size is an ES256 signature: r and s, 32 bytes each (RFC 7518
// 3.4), not ASN.1.
const es256Size = 64

// jwtToken is a compact JWS taken apart; nothing in it is trusted until
// the signature over signed holds.
type jwtToken struct {
	signed string
	alg    string
	kid    string
	sig    []byte
	claims gjson.Result
}

// parseJWS accepts only a three-part token with a JSON header and a JSON
// object of claims, signed with one of allowed, whose signature has the
// size that algorithm gives. A header naming critical extensions is
// refused (RFC 7515 4.1.11: none is understood here); jku, x5u and jwk
// are never read, so a token cannot choose its own key.
func parseJWS(raw string, allowed ...string) (*jwtToken, error) {
	return parseJWSUpTo(raw, maxJWT, allowed...)
}

// parseJWSUpTo is parseJWS for a token of at most limit bytes.
func parseJWSUpTo(raw string, limit int, allowed ...string) (*jwtToken, error) {
	if len(raw) > limit {
		return nil, fmt.Errorf("token longer than %d bytes", limit)
	}
	head, rest, ok1 := strings.Cut(raw, ".")
	body, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, fmt.Errorf("not a compact JWT")
	}
	enc := base64.RawURLEncoding
	h, err := enc.DecodeString(head)
	if err != nil || !gjson.ValidBytes(h) || !gjson.ParseBytes(h).IsObject() {
		return nil, fmt.Errorf("token header is not base64url JSON")
	}
	hdr := gjson.ParseBytes(h)
	alg := hdr.Get("alg")
	if alg.Type != gjson.String || !slices.Contains(allowed, alg.String()) {
		return nil, fmt.Errorf("token algorithm is not %s", strings.Join(allowed, " or "))
	}
	if hdr.Get("crit").Exists() {
		return nil, fmt.Errorf("token header names critical extensions")
	}
	kid := hdr.Get("kid")
	if kid.Exists() && (kid.Type != gjson.String || len(kid.String()) > maxKeyID) {
		return nil, fmt.Errorf("token key id is not a string of at most %d bytes", maxKeyID)
	}
	c, err := enc.DecodeString(body)
	if err != nil || !gjson.ValidBytes(c) || !gjson.ParseBytes(c).IsObject() {
		return nil, fmt.Errorf("token claims are not a base64url JSON object")
	}
	s, err := enc.DecodeString(sig)
	if err != nil || !signatureSized(alg.String(), len(s)) {
		return nil, fmt.Errorf("token signature is not a base64url %s signature", alg.String())
	}
	return &jwtToken{
		signed: raw[:len(head)+1+len(body)], alg: alg.String(), kid: kid.String(),
		sig: s, claims: gjson.ParseBytes(c),
	}, nil
}

// signatureSized says whether n bytes can be a signature of alg: RSA
// ones are the modulus' size, which minRSABits and maxRSABits bound.
func signatureSized(alg string, n int) bool {
	switch alg {
	case algHS256:
		return n == sha256.Size
	case algES256:
		return n == es256Size
	case algRS256:
		return n >= minRSABits/8 && n <= maxRSABits/8
	}
	return false
}

// verifyJWS checks a public-key signature of a parsed token. The key must
// be of the token's algorithm's type: an RSA key never checks an ES256
// token, nor the reverse.
func verifyJWS(key crypto.PublicKey, tok *jwtToken) bool {
	sum := sha256.Sum256([]byte(tok.signed))
	switch k := key.(type) {
	case *rsa.PublicKey:
		return tok.alg == algRS256 && rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], tok.sig) == nil
	case *ecdsa.PublicKey:
		if tok.alg != algES256 || k.Curve != elliptic.P256() || len(tok.sig) != es256Size {
			return false
		}
		r := new(big.Int).SetBytes(tok.sig[:es256Size/2])
		s := new(big.Int).SetBytes(tok.sig[es256Size/2:])
		return ecdsa.Verify(k, sum[:], r, s)
	}
	return false
}

// signJWS makes a compact token of claims. key is a []byte secret for
// HS256, else the crypto.Signer of alg's key type.
func signJWS(alg, kid string, claims any, key any) (string, error) {
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sig, err := jwsSignature(alg, key, []byte(signed))
	if err != nil {
		return "", err
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

func jwsSignature(alg string, key any, signed []byte) ([]byte, error) {
	sum := sha256.Sum256(signed)
	switch k := key.(type) {
	case []byte:
		if alg == algHS256 {
			mac := hmac.New(sha256.New, k)
			mac.Write(signed)
			return mac.Sum(nil), nil
		}
	case *rsa.PrivateKey:
		if alg == algRS256 {
			return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		}
	case *ecdsa.PrivateKey:
		if alg == algES256 {
			r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
			if err != nil {
				return nil, err
			}
			out := make([]byte, es256Size)
			r.FillBytes(out[:es256Size/2])
			s.FillBytes(out[es256Size/2:])
			return out, nil
		}
	}
	return nil, fmt.Errorf("key does not sign %s", alg)
}

// issuedAt reads a verified token's iat, which is required, and when
// leeway is set (the route's tolerance, zero when off) bounds its
// distance from now in both directions.
func issuedAt(claims gjson.Result, now time.Time, leeway time.Duration) (time.Time, error) {
	iat := claims.Get("iat")
	if iat.Type != gjson.Number {
		return time.Time{}, refuse(ReasonMissingTimestamp, "token has no iat claim")
	}
	at := time.Unix(iat.Int(), 0)
	switch {
	case leeway <= 0:
	case now.Sub(at) > leeway:
		return at, refuse(ReasonTimestampTooOld, "token issued more than %s ago", leeway)
	case at.Sub(now) > leeway:
		return at, refuse(ReasonTimestampInFuture, "token issued more than %s in the future", leeway)
	}
	return at, nil
}

// unexpired checks a verified token's exp with leeway; a token without
// one passes unless required.
func unexpired(claims gjson.Result, now time.Time, leeway time.Duration, required bool) error {
	exp := claims.Get("exp")
	switch {
	case exp.Type == gjson.Number && now.After(time.Unix(exp.Int(), 0).Add(leeway)):
		return refuse(ReasonTimestampTooOld, "token expired")
	case exp.Type != gjson.Number && required:
		return refuse(ReasonMissingTimestamp, "token has no exp claim")
	}
	return nil
}

// signedTimeToken describes a scheme whose token, in header, signs a
// time that bounds its replay, and body as given.
func signedTimeToken(kind, header string, body Coverage) Description {
	return Description{
		Kind: kind, Headers: []string{header},
		Replay:      ReplayTimestamp,
		Body:        body,
		Credentials: Credentials{SignatureHeaders: []string{header}},
	}
}
