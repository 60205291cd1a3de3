package provider

import "time"

// The providers table. Each row is data over a scheme; the catalog
// (testdata/catalog.md) gives every source.
func init() {
	for _, p := range builtin {
		Register(p)
	}
}

// standardWebhooks is the Standard Webhooks scheme; Svix and its
// adopters share it under other header names.
func standardWebhooks(families ...string) *HMAC {
	s := &HMAC{
		Encoding:      Base64,
		SignatureKey:  "v1",
		PairSeparator: " ",
		KeySeparator:  ",",
		Content:       "{id}.{timestamp}.{body}",
		// Libraries accept the secret with or without its whsec_ prefix.
		SecretEncoding: SecretWhsec,
	}
	for _, f := range families {
		s.Header = append(s.Header, f+"-signature")
		s.TimestampHeader = append(s.TimestampHeader, f+"-timestamp")
		s.IDHeader = append(s.IDHeader, f+"-id")
	}
	return s
}

// standardWebhooksV1a is the spec's Ed25519 variant: same headers and
// content, "v1a" entries.
func standardWebhooksV1a(families ...string) *HMAC {
	s := standardWebhooks(families...)
	s.SignatureKey = "v1a"
	return s
}

var builtin = []*Provider{
	{
		Name: "stripe",
		// The whsec_ string is the key as it is, unlike Standard Webhooks.
		Scheme: &HMAC{
			Header:       []string{"Stripe-Signature"},
			SignatureKey: "v1",
			TimestampKey: "t",
			Content:      "{timestamp}.{body}",
		},
		Tolerance: 5 * time.Minute,
		EventID:   []Field{{JSON: "id"}},
		EventType: []Field{{JSON: "type"}},
		Docs:      "https://docs.stripe.com/webhooks#verify-events",
	},
	{
		Name: "github",
		Scheme: &HMAC{
			Header: []string{"X-Hub-Signature-256"},
			Prefix: "sha256=",
		},
		EventID:   []Field{{Header: "X-GitHub-Delivery"}},
		EventType: []Field{{Header: "X-GitHub-Event"}},
		Docs:      "https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries",
	},
	{
		Name: "standard_webhooks",
		// whpk_/whsk_ keys select the spec's asymmetric v1a signatures.
		Scheme: &byKeyPrefix{
			Scheme:   standardWebhooks("webhook", "svix"),
			prefixes: []string{"whpk_", "whsk_"},
			alt:      &PublicKey{Algorithm: Ed25519, Layout: *standardWebhooksV1a("webhook", "svix")},
			mine:     "whsec_",
			altKey:   isEd25519PublicKey,
		},
		Tolerance: 5 * time.Minute,
		EventID:   []Field{{Header: "Webhook-Id"}, {Header: "Svix-Id"}},
		EventType: []Field{{JSON: "type"}},
		Docs:      "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md",
	},
	{
		Name:      "svix",
		Aliases:   []string{"clerk", "resend"},
		Scheme:    standardWebhooks("svix", "webhook"),
		Tolerance: 5 * time.Minute,
		EventID:   []Field{{Header: "Svix-Id"}, {Header: "Webhook-Id"}},
		EventType: []Field{{JSON: "type"}},
		Docs:      "https://docs.svix.com/receiving/verifying-payloads/how-manual",
	},
	{
		Name: "shopify",
		Scheme: &HMAC{
			Header:   []string{"X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256"},
			Encoding: Base64,
		},
		EventID:   []Field{{Header: "X-Shopify-Webhook-Id"}, {Header: "Shopify-Webhook-Id"}},
		EventType: []Field{{Header: "X-Shopify-Topic"}, {Header: "Shopify-Topic"}},
		Docs:      "https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook",
	},
	{
		Name:      "slack",
		Scheme:    slackScheme(),
		Tolerance: 5 * time.Minute,
		EventID:   []Field{{JSON: "event_id"}},
		EventType: []Field{{JSON: "event.type"}, {JSON: "type"}},
		Handshake: EventChallenge{When: Field{JSON: "type"}, Equals: "url_verification", Challenge: "challenge"},
		Docs:      "https://api.slack.com/authentication/verifying-requests-from-slack",
	},
	{
		// Slash commands and interactive components are signed as
		// events are, but Slack shows their answer to the user, so a
		// route for them says so by its provider name.
		Name:          "slack_commands",
		Aliases:       []string{"slack_interactivity"},
		Scheme:        slackScheme(),
		Tolerance:     5 * time.Minute,
		Docs:          "https://api.slack.com/interactivity/slash-commands#responding_to_commands",
		AnswerMatters: "Slack shows the answer to a slash command or an interaction to the user who sent it",
	},
}

// slackScheme is how Slack signs every request it sends.
func slackScheme() *HMAC {
	return &HMAC{
		Header:          []string{"X-Slack-Signature"},
		Prefix:          "v0=",
		TimestampHeader: []string{"X-Slack-Request-Timestamp"},
		Content:         "v0:{timestamp}:{body}",
	}
}
