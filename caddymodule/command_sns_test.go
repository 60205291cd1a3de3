package caddymodule

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// servedKeys is a KeySource serving one document, counting the fetches.
type servedKeys struct {
	doc     []byte
	fetched []string
}

func (k *servedKeys) Fetch(_ context.Context, req provider.KeyRequest) (provider.KeyDocument, error) {
	k.fetched = append(k.fetched, req.URL)
	return provider.KeyDocument{Body: k.doc, Fetched: time.Now()}, nil
}

// TestSignSNS: `sign --provider sns --key-url …` with an RSA key produces
// an envelope naming that certificate URL, which a route accepts once its
// KeySource serves the certificate there.
func TestSignSNS(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	const certURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-cli.pem"
	const topic = "arn:aws:sns:us-east-1:123456789012:cli"
	o := signOptions{
		Provider: "aws_sns", Body: []byte(`{"id":"evt_cli"}`), KeyURL: certURL, ID: "cli-1",
		Secret: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		Header: http.Header{"X-Amz-Sns-Topic-Arn": {topic}},
	}
	m, err := signDelivery(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := gjson.GetBytes(m.Body, "SigningCertURL").String(); got != certURL {
		t.Fatalf("SigningCertURL %q", got)
	}
	keys := &servedKeys{doc: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	p, _ := provider.Lookup("sns")
	v, err := p.NewVerifier(provider.VerifierConfig{Keys: keys, Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(&provider.Request{Method: "POST", Header: m.Header, Body: m.Body, Now: time.Now()})
	if err != nil || got.ID != "cli-1" || len(keys.fetched) != 1 {
		t.Fatalf("verified %+v, %v, fetched %q", got, err, keys.fetched)
	}
	o.KeyURL = ""
	if _, err := signDelivery(o); err == nil {
		t.Fatal("signed without --key-url")
	}
}
