package sdkcheck

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/api/idtoken"
	googleoption "google.golang.org/api/option"

	"github.com/webrev/webhook-gateway/internal/jwktest"
)

// Google Cloud Pub/Sub's authenticated push has no signing SDK: Google
// signs the token with keys only it holds. Its verifier is the Google
// API client's idtoken package, which Pub/Sub's docs point Go
// subscribers to (cloud.google.com/pubsub/docs/authenticate-push-
// subscriptions). Here a test key stands in for Google's: the gateway
// fetches its JWKS from a local TLS server (keys_url, allowed by
// key_fetch), and idtoken gets it from a RoundTripper that answers for
// Google's certs URL, the one thing the validator would fetch.

const (
	googleServiceAccount = "push@sdkcheck-project.iam.gserviceaccount.com"
	// googleKid is the key id of both test keys, so that the other key
	// is refused for its signature, not for an unknown kid.
	googleKid = "sdkcheck-google-key-1"
	// googleCertsURL is where idtoken fetches the keys of RS256 tokens.
	googleCertsURL = "https://www.googleapis.com/oauth2/v3/certs"
)

// googleKeys returns a service account's JSON key file, as `webhook-
// gateway sign --provider google_pubsub` takes it, and the JWKS that
// publishes its public half, as Google's certs URL does.
func googleKeys() (keyFile, jwks string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	kf, err := json.Marshal(map[string]string{"type": "service_account", "private_key": jwktest.PrivatePEM(k),
		"private_key_id": googleKid, "client_email": googleServiceAccount})
	if err != nil {
		panic(err)
	}
	set, err := json.Marshal(map[string]any{"keys": []any{jwktest.JWK(&k.PublicKey, googleKid)}})
	if err != nil {
		panic(err)
	}
	return string(kf), string(set)
}

var (
	googleKeyFile, googleJWKS           = googleKeys()
	otherGoogleKeyFile, otherGoogleJWKS = googleKeys()
)

// googleCase is Pub/Sub push: the route fetches the JWKS (secret) from
// keys_url; the test signs as Google does with go-jose, and idtoken
// verifies what the gateway forwarded.
func googleCase() sdkCase {
	return sdkCase{
		name: "idtoken", provider: "google_pubsub",
		secret: googleJWKS, signKey: googleKeyFile, wrong: otherGoogleJWKS, wrongSignKey: otherGoogleKeyFile,
		published: true,
		options:   "service_account " + googleServiceAccount,
		body:      `{"message":{"attributes":{"k":"v"},"data":"aGVsbG8=","messageId":"2070443601311540","publishTime":"2026-12-01T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`,
		// The token does not sign the body.
		bodyUnsigned: true,
		sign: func(keyFile, url string, _ []byte, at time.Time, _ string) (http.Header, error) {
			tok, err := googleToken(keyFile, url, at)
			if err != nil {
				return nil, err
			}
			return http.Header{"Authorization": {"Bearer " + tok}}, nil
		},
		verify: verifyGooglePush,
	}
}

// googleToken signs a push token as Google does, with go-jose: RS256
// under the key's id, for the push endpoint as audience (Pub/Sub's
// default), the claims of the docs' example.
func googleToken(keyFile, url string, at time.Time) (string, error) {
	var kf struct {
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
		ClientEmail  string `json:"client_email"`
	}
	if err := json.Unmarshal([]byte(keyFile), &kf); err != nil {
		return "", err
	}
	block, _ := pem.Decode([]byte(kf.PrivateKey))
	if block == nil {
		return "", errors.New("the key file's private_key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kf.PrivateKeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	claims := jwt.Claims{
		Issuer: "https://accounts.google.com", Subject: "113774264463038321964", Audience: jwt.Audience{url},
		IssuedAt: jwt.NewNumericDate(at), Expiry: jwt.NewNumericDate(at.Add(time.Hour)),
	}
	google := map[string]any{"azp": "113774264463038321964", "email": kf.ClientEmail, "email_verified": true}
	return jwt.Signed(signer).Claims(claims).Claims(google).Serialize()
}

// verifyGooglePush checks a push as a Go subscriber does: idtoken
// validates the token's signature, expiry and audience (the push
// endpoint); the subscriber then checks who it is from, as Pub/Sub's
// docs say. jwks is what Google's certs URL serves.
func verifyGooglePush(d delivery, jwks string) error {
	ctx := context.Background()
	v, err := idtoken.NewValidator(ctx, googleoption.WithHTTPClient(&http.Client{Transport: googleCerts(jwks)}))
	if err != nil {
		return err
	}
	tok, ok := strings.CutPrefix(d.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return errors.New("no bearer token")
	}
	p, err := v.Validate(ctx, tok, d.URL)
	if err != nil {
		return err
	}
	switch {
	case p.Issuer != "https://accounts.google.com" && p.Issuer != "accounts.google.com":
		return fmt.Errorf("issuer %q", p.Issuer)
	case p.Claims["email"] != googleServiceAccount || p.Claims["email_verified"] != true:
		return fmt.Errorf("from %v (verified: %v)", p.Claims["email"], p.Claims["email_verified"])
	}
	return nil
}

// googleCerts answers idtoken's one request, for Google's certs, with
// jwks; the network stand-in and nothing else: any other request fails.
type googleCerts string

func (c googleCerts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet || r.URL.String() != googleCertsURL {
		return nil, fmt.Errorf("idtoken asked for %s %s, not Google's certs", r.Method, r.URL)
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(strings.NewReader(string(c))), ContentLength: int64(len(c)),
		Request: r,
	}, nil
}
