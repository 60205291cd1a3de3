package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// Bounds on fetched keys: RSA moduli from 2048 to 4096 bits (Google's
// are 2048), and key sets of a size no provider comes near.
const (
	minRSABits  = 2048
	maxRSABits  = 4096
	maxJWKS     = 64 << 10
	maxJWKSKeys = 64
)

// jwk is a JSON Web Key (RFC 7517) with the members the RSA and P-256
// public keys need; private members, certificates and URLs are not read.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// jwkKey is a parsed public key and what its JWK says of it.
type jwkKey struct {
	kid string
	alg string
	key crypto.PublicKey
}

// parseJWK reads one JWK: an RSA key of the bounded size or an EC key on
// P-256 whose point is on the curve, meant for signatures, with an alg,
// when given, that matches its type.
func parseJWK(raw []byte) (jwkKey, error) {
	if len(raw) > maxJWKS {
		return jwkKey{}, fmt.Errorf("key longer than %d bytes", maxJWKS)
	}
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return jwkKey{}, fmt.Errorf("key is not a JSON Web Key")
	}
	return j.parse()
}

func (j jwk) parse() (jwkKey, error) {
	if len(j.Kid) > maxKeyID {
		return jwkKey{}, fmt.Errorf("key id longer than %d bytes", maxKeyID)
	}
	if j.Use != "" && j.Use != "sig" {
		return jwkKey{}, fmt.Errorf("key %q is not for signatures", j.Kid)
	}
	var (
		key crypto.PublicKey
		alg string
		err error
	)
	switch j.Kty {
	case "RSA":
		alg = algRS256
		key, err = j.rsaKey()
	case "EC":
		alg = algES256
		key, err = j.ecKey()
	default:
		return jwkKey{}, fmt.Errorf("key %q is of unsupported type %q", j.Kid, j.Kty)
	}
	if err != nil {
		return jwkKey{}, fmt.Errorf("key %q: %w", j.Kid, err)
	}
	if j.Alg != "" && j.Alg != alg {
		return jwkKey{}, fmt.Errorf("key %q is for %q, not %s", j.Kid, j.Alg, alg)
	}
	return jwkKey{kid: j.Kid, alg: alg, key: key}, nil
}

func (j jwk) rsaKey() (*rsa.PublicKey, error) {
	n, err1 := base64.RawURLEncoding.DecodeString(j.N)
	e, err2 := base64.RawURLEncoding.DecodeString(j.E)
	if err1 != nil || err2 != nil || len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("modulus or exponent is not base64url")
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits (want %d to %d)", bits, minRSABits, maxRSABits)
	}
	exp := new(big.Int).SetBytes(e).Int64()
	if exp < 3 || exp > 1<<31-1 || exp%2 == 0 {
		return nil, fmt.Errorf("RSA exponent out of range")
	}
	return &rsa.PublicKey{N: mod, E: int(exp)}, nil
}

func (j jwk) ecKey() (*ecdsa.PublicKey, error) {
	if j.Crv != "P-256" {
		return nil, fmt.Errorf("curve %q is not P-256", j.Crv)
	}
	x, err1 := base64.RawURLEncoding.DecodeString(j.X)
	y, err2 := base64.RawURLEncoding.DecodeString(j.Y)
	if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		return nil, fmt.Errorf("coordinates are not 32-byte base64url")
	}
	point := append(append([]byte{4}, x...), y...)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("point is not on P-256")
	}
	return key, nil
}

// parseJWKS reads a key set ({"keys": [...]}) into its keys by kid.
// Keys this package cannot use (another type, a bad encoding, no kid)
// are left out: they could verify nothing anyway. A kid named twice
// keeps its first key. A set with no usable key is an error.
func parseJWKS(raw []byte) (map[string]jwkKey, error) {
	if len(raw) > maxJWKS {
		return nil, fmt.Errorf("key set longer than %d bytes", maxJWKS)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("key set is not a JSON Web Key Set")
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("key set holds more than %d keys", maxJWKSKeys)
	}
	keys := make(map[string]jwkKey, len(set.Keys))
	for _, raw := range set.Keys {
		k, err := parseJWK(raw)
		if err != nil || k.kid == "" {
			continue
		}
		if _, dup := keys[k.kid]; !dup {
			keys[k.kid] = k
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key set holds no usable key")
	}
	return keys, nil
}

// jwkThumbprint is the RFC 7638 thumbprint of an RSA or P-256 key: the
// key id this package's signers give a key, so that a signer needs no
// configured kid and anyone holding the public key can derive it.
func jwkThumbprint(key crypto.PublicKey) (string, error) {
	m, err := publicJWK(key)
	if err != nil {
		return "", err
	}
	// The required members only, in lexicographic order (RFC 7638 3.2);
	// encoding/json sorts map keys.
	delete(m, "kid")
	delete(m, "alg")
	delete(m, "use")
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// publicJWK is the JWK of a public key, with its alg and use.
func publicJWK(key crypto.PublicKey) (map[string]string, error) {
	enc := base64.RawURLEncoding
	switch k := key.(type) {
	case *rsa.PublicKey:
		return map[string]string{
			"kty": "RSA", "alg": algRS256, "use": "sig",
			"n": enc.EncodeToString(k.N.Bytes()),
			"e": enc.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			break
		}
		point, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		return map[string]string{
			"kty": "EC", "alg": algES256, "use": "sig", "crv": "P-256",
			"x": enc.EncodeToString(point[1:33]), "y": enc.EncodeToString(point[33:]),
		}, nil
	}
	return nil, fmt.Errorf("key is neither RSA nor ECDSA P-256")
}
