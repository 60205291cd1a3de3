package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
)

// SecretEncoding says how a configured secret string becomes key bytes.
// Providers differ: Stripe uses its "whsec_" string verbatim while
// Standard Webhooks base64-decodes what follows the same prefix.
type SecretEncoding string

const (
	// SecretRaw uses the string's bytes as they are (the default).
	SecretRaw SecretEncoding = "raw"
	// SecretWhsec strips an optional "whsec_" prefix and base64-decodes
	// the rest (Standard Webhooks, Svix).
	SecretWhsec SecretEncoding = "whsec"
	// SecretBase64 base64-decodes the string (padding optional).
	SecretBase64 SecretEncoding = "base64"
	// SecretHex hex-decodes the string (Adyen, Dixa).
	SecretHex SecretEncoding = "hex"
	// SecretSHA1 uses the SHA-1 digest of the string (Braintree keys its
	// HMAC with SHA1(private key)).
	SecretSHA1 SecretEncoding = "sha1"
)

func (e SecretEncoding) valid() bool {
	switch e {
	case "", SecretRaw, SecretWhsec, SecretBase64, SecretHex, SecretSHA1:
		return true
	}
	return false
}

// decode turns a secret into key bytes. Errors say which secret (by
// position) is wrong and why, never what it is.
func (e SecretEncoding) decode(secret string) ([]byte, error) {
	if secret == "" {
		return nil, fmt.Errorf("secret is empty")
	}
	switch e {
	case "", SecretRaw:
		return []byte(secret), nil
	case SecretWhsec:
		return decodeBase64Loose(strings.TrimPrefix(secret, "whsec_"))
	case SecretBase64:
		return decodeBase64Loose(secret)
	case SecretHex:
		key, err := hex.DecodeString(secret)
		if err != nil {
			return nil, fmt.Errorf("secret is not valid hex")
		}
		return key, nil
	case SecretSHA1:
		sum := sha1.Sum([]byte(secret))
		return sum[:], nil
	}
	return nil, fmt.Errorf("unknown secret encoding %q", e)
}

// decodeBase64Loose accepts padded or unpadded standard base64, as the
// Standard Webhooks reference libraries do.
func decodeBase64Loose(s string) ([]byte, error) {
	key, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("secret is not valid base64")
	}
	return key, nil
}

// decodeKeys decodes every configured secret, in order.
func decodeKeys(enc SecretEncoding, secrets []string) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("no secret configured")
	}
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		k, err := enc.decode(s)
		if err != nil {
			return nil, fmt.Errorf("secret #%d: %w", i+1, err)
		}
		keys[i] = k
	}
	return keys, nil
}

// keyThatSigns returns the position of the first key whose HMAC over
// what write produces equals want, compared in constant time: the
// verifiers that key a MAC per request (no pool) share it.
func keyThatSigns(keys [][]byte, newHash func() hash.Hash, want []byte, write func(io.Writer)) (int, bool) {
	for i, key := range keys {
		mac := hmac.New(newHash, key)
		write(mac)
		if hmac.Equal(mac.Sum(nil), want) {
			return i, true
		}
	}
	return 0, false
}
