package provider

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
)

// KeyAlgorithm names a public-key signature.
type KeyAlgorithm string

// The supported public-key signatures.
const (
	// Ed25519 signs the content itself (Discord, Standard Webhooks v1a).
	Ed25519 KeyAlgorithm = "ed25519"
	// ECDSAP256 is ECDSA on P-256 over SHA-256 with an ASN.1 signature
	// (SendGrid).
	ECDSAP256 KeyAlgorithm = "ecdsa_p256_sha256"
	// RSASHA256 is RSA PKCS #1 v1.5 over SHA-256 (PayPal's SHA256withRSA).
	RSASHA256 KeyAlgorithm = "rsa_sha256"
)

// maxPublicSignature bounds a decoded public-key signature (RSA-4096).
const maxPublicSignature = 512

// PublicKey is the scheme of providers that sign with a private key and
// let receivers verify with the public one, so the route's secrets are
// public keys: PEM (a certificate, PKIX or PKCS #1 key), base64 DER, or
// for Ed25519 the 32 raw bytes in hex or base64 (with an optional whpk_
// prefix). Signing takes the matching private key.
type PublicKey struct {
	// Algorithm is ed25519, ecdsa_p256_sha256 or rsa_sha256. Required.
	Algorithm KeyAlgorithm `json:"algorithm"`

	// Layout describes the signature header and the signed content with
	// the fields of the HMAC scheme; its algorithm, secret_encoding and
	// key_prefix_hash are not used.
	Layout HMAC `json:"layout"`
}

// Describe implements Scheme.
func (s *PublicKey) Describe() Description {
	d := s.Layout.Describe()
	d.Kind = string(s.Algorithm) + "/" + orDefault(string(s.Layout.Encoding), "hex")
	return d
}

// NewVerifier implements Scheme.
func (s *PublicKey) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	c, err := s.compile()
	if err != nil {
		return nil, err
	}
	if err := c.needs(cfg); err != nil {
		return nil, err
	}
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("no public key configured")
	}
	v := &publicKeyVerifier{c: c, alg: s.Algorithm, cfg: cfg}
	for i, secret := range cfg.Secrets {
		key, err := parsePublicKey(s.Algorithm, secret)
		if err != nil {
			return nil, fmt.Errorf("public key #%d: %w", i+1, err)
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// Sign implements Scheme; secret is the private key.
func (s *PublicKey) Sign(secret string, m *Message) error {
	c, err := s.compile()
	if err != nil {
		return err
	}
	key, err := parsePrivateKey(s.Algorithm, secret)
	if err != nil {
		return err
	}
	return c.sign(m, func(vals *contentValues) ([]byte, error) {
		var buf bytes.Buffer
		c.content.writeTo(&buf, vals, nil)
		return signWith(key, buf.Bytes())
	})
}

func (s *PublicKey) compile() (*compiled, error) {
	switch s.Algorithm {
	case Ed25519, ECDSAP256, RSASHA256:
	default:
		return nil, fmt.Errorf("public-key scheme: unknown algorithm %q (known: ed25519, ecdsa_p256_sha256, rsa_sha256)", s.Algorithm)
	}
	c, err := s.Layout.compile()
	if err != nil {
		return nil, fmt.Errorf("public-key scheme: %w", err)
	}
	return c, nil
}

type publicKeyVerifier struct {
	c    *compiled
	alg  KeyAlgorithm
	keys []crypto.PublicKey
	cfg  VerifierConfig
}

func (v *publicKeyVerifier) Verify(r *Request) (Verified, error) {
	return v.c.verify(r, &v.cfg, checker{pub: v})
}

// check verifies every well-formed candidate under every key; public
// data only, so no constant-time care is needed here.
func (v *publicKeyVerifier) check(vals *contentValues, p *parsedHeader) (int, error) {
	var buf bytes.Buffer
	v.c.content.writeTo(&buf, vals, nil)
	msg := buf.Bytes()
	wellFormed := 0
	for i := 0; i < p.n; i++ {
		sig, ok := v.decode(p.candidates[i])
		if !ok {
			continue
		}
		wellFormed++
		for secret, key := range v.keys {
			if verifyWith(key, msg, sig) {
				return secret, nil
			}
		}
	}
	if wellFormed == 0 {
		return 0, refuse(ReasonMalformedSignature, "header %s holds no well-formed %s signature", v.c.headers[p.family], orDefault(string(v.c.Encoding), "hex"))
	}
	return 0, refuse(ReasonSignatureMismatch, "no signature in header %s matches a configured public key", v.c.headers[p.family])
}

func (v *publicKeyVerifier) decode(s string) ([]byte, bool) {
	var buf [maxPublicSignature]byte
	n, ok := v.c.decode(buf[:], s)
	if !ok || n == 0 || (v.alg == Ed25519 && n != ed25519.SignatureSize) {
		return nil, false
	}
	return buf[:n], true
}

func verifyWith(key crypto.PublicKey, msg, sig []byte) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	case *rsa.PublicKey:
		sum := sha256.Sum256(msg)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil
	}
	return false
}

func signWith(key crypto.Signer, msg []byte) ([]byte, error) {
	if k, ok := key.(ed25519.PrivateKey); ok {
		return ed25519.Sign(k, msg), nil
	}
	sum := sha256.Sum256(msg)
	return key.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// keyBytes turns a configured key into DER or raw bytes: PEM blocks give
// their type, everything else is tried as hex then base64.
func keyBytes(s string, prefixes ...string) (der []byte, pemType string, err error) {
	s = strings.TrimSpace(s)
	if block, _ := pem.Decode([]byte(s)); block != nil {
		return block.Bytes, block.Type, nil
	}
	for _, p := range prefixes {
		s = strings.TrimPrefix(s, p)
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) > 0 {
		return b, "", nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = decodeBase64Loose(s); err != nil {
			return nil, "", fmt.Errorf("key is neither PEM, hex nor base64")
		}
	}
	return b, "", nil
}

func parsePublicKey(alg KeyAlgorithm, s string) (crypto.PublicKey, error) {
	der, typ, err := keyBytes(s, "whpk_")
	if err != nil {
		return nil, err
	}
	var key crypto.PublicKey
	switch {
	case typ == "" && alg == Ed25519 && len(der) == ed25519.PublicKeySize:
		key = ed25519.PublicKey(der)
	case typ == "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(der)
	case typ == "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(der); err == nil {
			key = cert.PublicKey
		}
	default:
		if key, err = x509.ParsePKIXPublicKey(der); err != nil {
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(der); err == nil {
				key = cert.PublicKey
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("key does not parse as a public key or certificate")
	}
	return key, checkKeyType(alg, key)
}

func parsePrivateKey(alg KeyAlgorithm, s string) (crypto.Signer, error) {
	der, typ, err := keyBytes(s, "whsk_")
	if err != nil {
		return nil, err
	}
	if typ == "" && alg == Ed25519 {
		switch len(der) {
		case ed25519.SeedSize:
			return ed25519.NewKeyFromSeed(der), nil
		case ed25519.PrivateKeySize:
			return ed25519.PrivateKey(der), nil
		}
	}
	var key any
	switch typ {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	default:
		if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			key, err = x509.ParseECPrivateKey(der)
		}
	}
	signer, ok := key.(crypto.Signer)
	if err != nil || !ok {
		return nil, fmt.Errorf("key does not parse as a private key")
	}
	return signer, checkKeyType(alg, signer.Public())
}

func checkKeyType(alg KeyAlgorithm, key crypto.PublicKey) error {
	ok := false
	switch k := key.(type) {
	case ed25519.PublicKey:
		ok = alg == Ed25519
	case *ecdsa.PublicKey:
		ok = alg == ECDSAP256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		ok = alg == RSASHA256
	}
	if !ok {
		return fmt.Errorf("key is not a %s key", alg)
	}
	return nil
}

// Interface guards
var (
	_ Scheme   = (*PublicKey)(nil)
	_ Verifier = (*publicKeyVerifier)(nil)
)

// isEd25519PublicKey reports whether a secret reads as an Ed25519 public
// key in any of the forms parsePublicKey accepts.
func isEd25519PublicKey(s string) bool {
	_, err := parsePublicKey(Ed25519, s)
	return err == nil
}
