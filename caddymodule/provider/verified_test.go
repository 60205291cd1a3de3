package provider

import (
	"slices"
	"testing"
)

// TestVerifiedSays holds every verifier of these schemes to the contract
// of Verified: it says what the signature covered, and which secret
// held, nothing more.
func TestVerifiedSays(t *testing.T) {
	cases := []struct {
		provider string
		key      int // which of testKeys' pairs signs
		id       string
		body     Coverage
		headers  []string
		signsAt  bool
	}{
		{provider: "github", body: BodyWhole},
		{provider: "stripe", body: BodyWhole, signsAt: true},
		{provider: "standard_webhooks", id: "msg_1", body: BodyWhole, headers: []string{"Webhook-Id", "Webhook-Timestamp"}, signsAt: true},
		{provider: "standard_webhooks", key: 1, id: "msg_1", body: BodyWhole, headers: []string{"Webhook-Id", "Webhook-Timestamp"}, signsAt: true},
		{provider: "svix", id: "msg_1", body: BodyWhole, headers: []string{"Svix-Id", "Svix-Timestamp"}, signsAt: true},
		{provider: "twitch", id: "msg_1", body: BodyWhole, headers: []string{"Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp"}, signsAt: true},
		{provider: "slack", body: BodyWhole, headers: []string{"X-Slack-Request-Timestamp"}, signsAt: true},
		{provider: "linear", body: BodyWhole, signsAt: true},
		{provider: "box", body: BodyWhole, headers: []string{"Box-Delivery-Timestamp"}, signsAt: true},
		{provider: "discord", body: BodyWhole, headers: []string{"X-Signature-Timestamp"}, signsAt: true},
		// PayPal signs a CRC-32 of the body, which anyone can match.
		{provider: "paypal", id: "msg_1", body: BodyNone, headers: []string{"Paypal-Transmission-Id", "Paypal-Transmission-Time"}, signsAt: true},
		{provider: "gitlab", body: BodyNone},
		{provider: "postmark", body: BodyNone},
		{provider: "netlify", body: BodyWhole, signsAt: true},
		{provider: "monday", body: BodyNone, signsAt: true},
		{provider: "contentful", body: BodyWhole, headers: []string{"X-Contentful-Signed-Headers", "X-Contentful-Timestamp"}, signsAt: true},
	}
	for _, c := range cases {
		p := mustLookup(c.provider)
		pairs := testKeys(t, p.Scheme)
		kp, other := pairs[c.key], testKeys(t, p.Scheme)[c.key]
		t.Run(c.provider+"/"+kp.name, func(t *testing.T) {
			r := signFor(t, p, kp.sign, testNow)
			for secret, secrets := range [][]string{{kp.verify}, {other.verify, kp.verify}} {
				v, err := p.NewVerifier(VerifierConfig{Secrets: secrets, WebhookID: "WH-1", Tolerance: -1})
				if err != nil {
					t.Fatal(err)
				}
				got, err := v.Verify(&r.Request)
				if err != nil {
					t.Fatalf("genuine delivery refused: %v", err)
				}
				if got.ID != c.id || got.Body != c.body || !slices.Equal(got.Headers, c.headers) || got.Secret != secret {
					t.Errorf("secrets %d: got id %q body %d headers %q secret %d; want %q %d %q %d",
						len(secrets), got.ID, got.Body, got.Headers, got.Secret, c.id, c.body, c.headers, secret)
				}
				if got.Timestamp.IsZero() == c.signsAt {
					t.Errorf("timestamp %v, want one: %v", got.Timestamp, c.signsAt)
				}
			}
		})
	}
}

// TestVerifiedSecretTokenRotation: a token route reports the position of
// whichever secret matched, also when it is not the first.
func TestVerifiedSecretTokenRotation(t *testing.T) {
	p := mustLookup("telegram")
	r := signFor(t, p, "tok-c", testNow)
	v, err := p.NewVerifier(VerifierConfig{Secrets: []string{"tok-a", "tok-b", "tok-c"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(&r.Request)
	if err != nil || got.Secret != 2 {
		t.Fatalf("got secret %d, %v; want 2", got.Secret, err)
	}
}

// TestVerifiedIDIsTheSignedFamilys: Standard Webhooks and Svix verify one
// header family; an id header of the other family, added to a captured
// delivery, must not become its id.
func TestVerifiedIDIsTheSignedFamilys(t *testing.T) {
	secret := "whsec_ZnV6ei1zZWNyZXQtZnV6ei1zZWNyZXQ="
	cases := []struct {
		name, route, signer, extra string
	}{
		{"webhook delivery plus Svix-Id", "standard_webhooks", "standard_webhooks", "Svix-Id"},
		{"svix delivery plus Webhook-Id", "standard_webhooks", "svix", "Webhook-Id"},
		{"svix route, webhook delivery plus Svix-Id", "svix", "standard_webhooks", "Svix-Id"},
		{"svix route, svix delivery plus Webhook-Id", "svix", "svix", "Webhook-Id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			route := mustLookup(c.route)
			r := signFor(t, mustLookup(c.signer), secret, testNow)
			r.Header.Set(c.extra, "fresh")
			v, err := route.NewVerifier(VerifierConfig{Secrets: []string{secret}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(&r.Request)
			if err != nil {
				t.Fatalf("genuine delivery refused: %v", err)
			}
			if id, signed := Identify(route.EventID, &r.Request, got); id != "msg_1" || !signed {
				t.Fatalf("event id %q (signed: %v), want the signed msg_1", id, signed)
			}
		})
	}
}
