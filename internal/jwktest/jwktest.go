// Package jwktest builds what tests of the token providers serve and
// send: the JWK of a public key, and compact tokens with any header and
// claims, signed as a genuine sender would or as a forger might.
package jwktest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
)

// JWK is the JWK of an RSA or P-256 public key under kid, with its alg
// and use; nil for any other key.
func JWK(pub crypto.PublicKey, kid string) map[string]any {
	enc := base64.RawURLEncoding
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
			"n": enc.EncodeToString(k.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			return nil
		}
		return map[string]any{"kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "kid": kid,
			"x": enc.EncodeToString(b[1:33]), "y": enc.EncodeToString(b[33:])}
	}
	return nil
}

// Token is a compact JWS of header and claims, its signature made by
// sign over the signed part.
func Token(header, claims map[string]any, sign func(signed []byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	return signed + "." + enc.EncodeToString(sign([]byte(signed)))
}

// RS256 signs as RS256 does.
func RS256(k *rsa.PrivateKey) func([]byte) []byte {
	return func(signed []byte) []byte {
		sum := sha256.Sum256(signed)
		sig, _ := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		return sig
	}
}

// ES256 signs as ES256 does: r and s, 32 bytes each.
func ES256(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(signed []byte) []byte {
		sum := sha256.Sum256(signed)
		r, s, _ := ecdsa.Sign(rand.Reader, k, sum[:])
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// PrivatePEM is a private key as PKCS #8 PEM, the form signers take.
func PrivatePEM(k crypto.Signer) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
