// Package providertest makes what tests of the provider catalog sign and
// configure with: key material in the form each scheme reads (keys.go),
// a delivery shaped as each provider sends it, and the forgeries made by
// taking away what a signer added (delivery.go).
//
// It does not import the provider package, so that package's own tests
// can use it as well as the end-to-end tests through Caddy; it reads a
// scheme's exported configuration by reflection instead.
package providertest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"reflect"
)

// KeyPair is what a test signs with (the secret `webhook-gateway sign`
// takes: a private key, or the shared secret) and what a route verifies
// with (its secret: the public key, or the same shared secret).
type KeyPair struct{ Name, Sign, Verify string }

// Keys makes fresh key material in the form scheme reads: one pair per
// kind of secret it takes (a scheme that chooses its kind by a secret's
// prefix has one of each). ok is false for a scheme whose keys are
// fetched from its provider (SNS, Google's push tokens, Plaid): their
// key material depends on what the test's key server serves.
func Keys(scheme any) (pairs []KeyPair, ok bool) {
	// A scheme choosing by prefix says which schemes it chooses among.
	if m := reflect.ValueOf(scheme).MethodByName("Schemes"); m.IsValid() {
		all := m.Call(nil)[0]
		for i := range all.Len() {
			ps, ok := Keys(all.Index(i).Interface())
			if !ok {
				return nil, false
			}
			pairs = append(pairs, ps...)
		}
		return pairs, true
	}
	v := reflect.Indirect(reflect.ValueOf(scheme))
	switch v.Type().Name() {
	case "SNS", "GooglePush", "Plaid":
		return nil, false
	case "Contentful":
		// Contentful's secrets are exactly 64 characters.
		key := hex.EncodeToString(random())
		return []KeyPair{{"symmetric", key, key}}, true
	case "BodyJWT":
		return []KeyPair{RSA()}, true
	}
	if layout := v.FieldByName("Layout"); layout.IsValid() {
		if alg := v.FieldByName("Algorithm"); alg.IsValid() {
			return []KeyPair{PublicKey(alg.String())}, true
		}
		return []KeyPair{Secret(layout.FieldByName("SecretEncoding").String())}, true
	}
	if basic := v.FieldByName("Basic"); basic.IsValid() && basic.Bool() {
		user := "user:" + hex.EncodeToString(random())
		return []KeyPair{{"basic", user, user}}, true
	}
	var enc string
	if f := v.FieldByName("SecretEncoding"); f.IsValid() {
		enc = f.String()
	}
	return []KeyPair{Secret(enc)}, true
}

// Secret is a fresh shared secret in a secret encoding (provider's
// SecretEncoding values: whsec, base64, hex; anything else is raw).
func Secret(encoding string) KeyPair {
	raw := random()
	var s string
	switch encoding {
	case "whsec":
		s = "whsec_" + base64.StdEncoding.EncodeToString(raw)
	case "base64":
		s = base64.StdEncoding.EncodeToString(raw)
	case "hex":
		s = hex.EncodeToString(raw)
	default:
		s = "secret-" + hex.EncodeToString(raw)
	}
	return KeyPair{"symmetric", s, s}
}

// PublicKey is a fresh key pair for a public-key algorithm (provider's
// KeyAlgorithm values), in the forms the signer and the route read.
func PublicKey(alg string) KeyPair {
	switch alg {
	case "ed25519":
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		return KeyPair{"ed25519", "whsk_" + base64.StdEncoding.EncodeToString(priv.Seed()), "whpk_" + base64.StdEncoding.EncodeToString(pub)}
	case "ecdsa_p256_sha256":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		priv, _ := x509.MarshalPKCS8PrivateKey(k)
		pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		return KeyPair{"ecdsa", base64.StdEncoding.EncodeToString(priv), base64.StdEncoding.EncodeToString(pub)}
	case "rsa_sha256":
		return RSA()
	}
	panic("providertest: no key for algorithm " + alg)
}

// RSA is a fresh 2048-bit RSA key as PEM: PKCS #1 private, PKIX public.
func RSA() KeyPair {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return KeyPair{"rsa", string(priv), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))}
}

func random() []byte {
	raw := make([]byte, 32)
	rand.Read(raw)
	return raw
}
