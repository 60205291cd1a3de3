package provider

import (
	"slices"
	"testing"
)

// TestCredentialsNamed: every provider names where its request carries a
// signature or a secret, so that the gateway can strip and redact it;
// a static token is a token, never a mere signature.
func TestCredentialsNamed(t *testing.T) {
	for _, p := range All() {
		if _, ok := p.Scheme.(*BodyJWT); ok {
			// The whole body is the token, signed with a private key:
			// nothing in it is secret and nothing needs stripping.
			continue
		}
		c := p.Describe().Credentials
		if len(c.TokenHeaders)+len(c.TokenQuery)+len(c.SignatureHeaders)+len(c.SignatureQuery)+len(c.BodyFields) == 0 {
			t.Errorf("%s names no credential", p.Name)
		}
	}
	cases := []struct {
		provider                string
		tokenHeader, tokenQuery string
		signatureHeader         string
	}{
		{provider: "gitlab", tokenHeader: "X-Gitlab-Token"},
		{provider: "telegram", tokenHeader: "X-Telegram-Bot-Api-Secret-Token"},
		{provider: "cloudflare", tokenHeader: "Cf-Webhook-Auth"},
		{provider: "postmark", tokenHeader: "Authorization"},
		{provider: "pipedrive", tokenHeader: "Authorization"},
		{provider: "okta", tokenHeader: "Authorization"},
		{provider: "mailchimp", tokenQuery: "secret"},
		{provider: "github", signatureHeader: "X-Hub-Signature-256"},
		{provider: "standard_webhooks", signatureHeader: "Svix-Signature"},
		{provider: "docusign", signatureHeader: "X-Docusign-Signature-2"},
		{provider: "netlify", signatureHeader: "X-Webhook-Signature"},
		{provider: "contentful", signatureHeader: "X-Contentful-Signature"},
		{provider: "discord", signatureHeader: "X-Signature-Ed25519"},
	}
	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			got := mustLookup(c.provider).Describe().Credentials
			if c.tokenHeader != "" && !slices.Contains(got.TokenHeaders, c.tokenHeader) {
				t.Errorf("token headers %q lack %s", got.TokenHeaders, c.tokenHeader)
			}
			if c.tokenQuery != "" && !slices.Contains(got.TokenQuery, c.tokenQuery) {
				t.Errorf("token query %q lacks %s", got.TokenQuery, c.tokenQuery)
			}
			if c.signatureHeader != "" && !slices.Contains(got.SignatureHeaders, c.signatureHeader) {
				t.Errorf("signature headers %q lack %s", got.SignatureHeaders, c.signatureHeader)
			}
			if c.signatureHeader != "" && len(got.TokenHeaders)+len(got.TokenQuery) > 0 {
				t.Errorf("a signing scheme names tokens %q %q", got.TokenHeaders, got.TokenQuery)
			}
		})
	}
}
