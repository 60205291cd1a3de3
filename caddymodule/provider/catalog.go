package provider

import (
	"net/http"
	"time"
)

// The catalog's providers beyond the first few (builtin.go): each is a
// row of data over a scheme. testdata/catalog.md gives every source;
// where it marks a tolerance as unverified the row has none and a scheme
// that signs a time gets DefaultTolerance: many providers sign no id, so
// a signed time is what bounds a replay.
func init() {
	for _, p := range catalog {
		Register(p)
	}
}

func hdr(name string) Field  { return Field{Header: name} }
func body(path string) Field { return Field{JSON: path} }

// bodyHex is the commonest scheme: a hex HMAC-SHA256 of the raw body.
func bodyHex(header string) *HMAC { return &HMAC{Header: []string{header}} }

// bodyB64 is the same in base64.
func bodyB64(header string) *HMAC { return &HMAC{Header: []string{header}, Encoding: Base64} }

// prefixedHex is a hex HMAC-SHA256 of the body after a prefix ("sha256=").
func prefixedHex(header, prefix string) *HMAC {
	return &HMAC{Header: []string{header}, Prefix: prefix}
}

// listed is Stripe's layout: "<ts key>=…,<sig key>=…" over "<ts>.<body>".
func listed(header, tsKey, sigKey string) *HMAC {
	return &HMAC{Header: []string{header}, TimestampKey: tsKey, SignatureKey: sigKey, Content: "{timestamp}.{body}"}
}

// slackStyle is "v0=<hex>" over "v0:<ts>:<body>" with the time in a header.
func slackStyle(header, tsHeader string) *HMAC {
	return &HMAC{Header: []string{header}, Prefix: "v0=", TimestampHeader: []string{tsHeader}, Content: "v0:{timestamp}:{body}"}
}

var catalog = []*Provider{
	{
		Name:      "adyen",
		Scheme:    adyenNotification,
		EventID:   []Field{body("notificationItems.0.NotificationRequestItem.pspReference")},
		EventType: []Field{body("notificationItems.0.NotificationRequestItem.eventCode")},
		Docs:      "https://docs.adyen.com/development-resources/webhooks/verify-hmac-signatures",
	},
	{
		Name:      "adyen_platform",
		Scheme:    &HMAC{Header: []string{"HmacSignature"}, Encoding: Base64, SecretEncoding: SecretHex},
		EventType: []Field{body("type")},
		Docs:      "https://docs.adyen.com/development-resources/webhooks/verify-hmac-signatures",
	},
	{
		Name:   "aftership",
		Scheme: &HMAC{Header: []string{"Aftership-Hmac-Sha256", "As-Signature-Hmac-Sha256"}, Encoding: Base64},
		Docs:   "https://www.aftership.com/docs/tracking/webhook/webhook-signature",
	},
	{
		Name:   "airtable",
		Scheme: &HMAC{Header: []string{"X-Airtable-Content-MAC"}, Prefix: "hmac-sha256=", SecretEncoding: SecretBase64},
		Docs:   "https://airtable.com/developers/web/api/webhooks-overview",
	},
	{
		Name:   "asana",
		Scheme: bodyHex("X-Hook-Signature"),
		// The handshake carries the secret of the webhook being
		// created: only the app, which asked for it, can keep it.
		Handshake: HeaderChallenge{Header: "X-Hook-Secret", Forward: true},
		Docs:      "https://developers.asana.com/docs/webhooks-guide",
	},
	{
		Name:      "billit",
		Scheme:    listed("Billit-Signature", "t", "s"),
		EventType: []Field{body("type")},
		Docs:      "https://docs.billit.be/docs/webhook",
	},
	{
		Name:      "bitbucket",
		Aliases:   []string{"bitbucket_server"},
		Scheme:    prefixedHex("X-Hub-Signature", "sha256="),
		EventID:   []Field{hdr("X-Request-UUID"), hdr("X-Request-Id")},
		EventType: []Field{hdr("X-Event-Key")},
		Docs:      "https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/",
	},
	{
		Name: "box",
		// Each key signs its own header; pooling the two lets either
		// key in rotation match.
		Scheme: &HMAC{
			Header:          []string{"Box-Signature-Primary", "Box-Signature-Secondary"},
			EveryHeader:     true,
			Encoding:        Base64,
			TimestampHeader: []string{"Box-Delivery-Timestamp"},
			TimestampFormat: TimestampRFC3339,
			Content:         "{body}{timestamp}",
		},
		Tolerance: 10 * time.Minute,
		EventID:   []Field{hdr("Box-Delivery-Id")},
		EventType: []Field{body("trigger")},
		Docs:      "https://developer.box.com/guides/webhooks/v2/signatures-v2/",
	},
	{
		Name:   "braintree",
		Scheme: braintreeForm,
		Docs:   "https://developer.paypal.com/braintree/docs/guides/webhooks/parse",
	},
	{
		Name:      "buildkite",
		Scheme:    listed("X-Buildkite-Signature", "timestamp", "signature"),
		Tolerance: 5 * time.Minute,
		EventType: []Field{hdr("X-Buildkite-Event")},
		Docs:      "https://buildkite.com/docs/apis/webhooks#webhook-signature",
	},
	{
		Name:      "calendly",
		Scheme:    listed("Calendly-Webhook-Signature", "t", "v1"),
		Tolerance: 3 * time.Minute,
		EventType: []Field{body("event")},
		Docs:      "https://developer.calendly.com/api-docs/webhook-signatures",
	},
	{
		Name: "cashfree",
		Scheme: &HMAC{
			Header: []string{"X-Webhook-Signature"}, Encoding: Base64,
			TimestampHeader: []string{"X-Webhook-Timestamp"}, TimestampFormat: TimestampUnixMilli,
			Content: "{timestamp}{body}",
		},
		EventType: []Field{body("type")},
		Docs:      "https://www.cashfree.com/docs/payments/online/webhooks/signature-verification",
	},
	{
		Name:      "circleci",
		Scheme:    &HMAC{Header: []string{"Circleci-Signature"}, SignatureKey: "v1"},
		EventID:   []Field{body("id")},
		EventType: []Field{hdr("Circleci-Event-Type"), body("type")},
		Docs:      "https://circleci.com/docs/webhooks/#validate-webhooks",
	},
	{
		Name:      "clickup",
		Scheme:    bodyHex("X-Signature"),
		EventType: []Field{body("event")},
		Docs:      "https://developer.clickup.com/docs/webhooksignature",
	},
	{
		Name:   "cloudflare",
		Scheme: &Token{Header: "Cf-Webhook-Auth"},
		Docs:   "https://developers.cloudflare.com/notifications/get-started/configure-webhooks/",
	},
	{
		Name:      "cloudflare_stream",
		Scheme:    listed("Webhook-Signature", "time", "sig1"),
		Tolerance: 5 * time.Minute,
		Docs:      "https://developers.cloudflare.com/stream/manage-video-library/using-webhooks/",
	},
	{
		Name:      "coinbase",
		Aliases:   []string{"coinbase_commerce"},
		Scheme:    bodyHex("X-CC-Webhook-Signature"),
		EventID:   []Field{body("event.id"), body("id")},
		EventType: []Field{body("event.type")},
		Docs:      "https://docs.cdp.coinbase.com/commerce-onchain/docs/webhooks-security",
	},
	{
		Name:      "coinify",
		Scheme:    bodyHex("X-Coinify-Webhook-Signature"),
		EventID:   []Field{body("id")},
		EventType: []Field{body("event")},
		Docs:      "https://coinify.readme.io/docs/webhooks",
	},
	{
		Name: "contentful",
		// verifyRequest's default time to live is 30 s.
		Scheme:    &Contentful{},
		Tolerance: 30 * time.Second,
		EventID:   []Field{hdr("X-Contentful-Idempotency-Key")},
		EventType: []Field{hdr("X-Contentful-Topic")},
		Docs:      "https://www.contentful.com/developers/docs/webhooks/request-verification/",
	},
	{
		Name:   "datasaur",
		Scheme: bodyHex("X-Datasaur-Signature"),
		Docs:   "https://docs.datasaur.ai/api/webhooks",
	},
	{
		Name: "discord",
		Scheme: &PublicKey{Algorithm: Ed25519, Layout: HMAC{
			Header:          []string{"X-Signature-Ed25519"},
			TimestampHeader: []string{"X-Signature-Timestamp"},
			Content:         "{timestamp}{body}",
		}},
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		// Discord probes with bad signatures and wants exactly 401.
		RefusalStatus: http.StatusUnauthorized,
		AnswerMatters: "Discord shows the answer to an interaction to its user, within 3 seconds",
		Docs:          "https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers",
	},
	{
		Name: "dixa",
		// Docs' example time has 13 digits: milliseconds.
		Scheme: &HMAC{
			Header: []string{"X-Dixa-Signature"}, TimestampKey: "t", SignatureKey: "v1",
			TimestampFormat: TimestampUnixMilli, Content: "{timestamp}.{body}", SecretEncoding: SecretHex,
		},
		EventType: []Field{body("event_fqn")},
		Docs:      "https://docs.dixa.io/docs/webhooks-security",
	},
	{
		Name:      "docusign",
		Scheme:    &HMAC{Header: []string{"X-DocuSign-Signature"}, Numbered: true, Encoding: Base64},
		EventType: []Field{body("event")},
		Docs:      "https://developers.docusign.com/platform/webhooks/connect/hmac/",
	},
	{
		Name:      "dropbox",
		Scheme:    bodyHex("X-Dropbox-Signature"),
		Handshake: QueryChallenge{Param: "challenge"},
		Docs:      "https://www.dropbox.com/developers/reference/webhooks",
	},
	{
		Name: "frameio",
		Scheme: &HMAC{
			Header: []string{"X-Frameio-Signature"}, Prefix: "v0=",
			TimestampHeader: []string{"X-Frameio-Request-Timestamp"}, Content: "v0:{timestamp}:{body}",
		},
		Tolerance: 5 * time.Minute,
		EventType: []Field{body("type")},
		Docs:      "https://developer.frame.io/docs/automations-webhooks/webhooks-overview",
	},
	{
		Name: "gitlab",
		// GitLab's newer signing token follows Standard Webhooks; use
		// standard_webhooks for it.
		Scheme:    &Token{Header: "X-Gitlab-Token"},
		EventID:   []Field{hdr("Idempotency-Key")},
		EventType: []Field{hdr("X-Gitlab-Event")},
		Docs:      "https://docs.gitlab.com/user/project/integrations/webhooks/",
	},
	{
		Name: "hubspot",
		Scheme: &HMAC{
			Header: []string{"X-HubSpot-Signature-v3"}, Encoding: Base64,
			TimestampHeader: []string{"X-HubSpot-Request-Timestamp"}, TimestampFormat: TimestampUnixMilli,
			Content: "{method}{url}{body}{timestamp}",
		},
		Tolerance: 5 * time.Minute,
		EventID:   []Field{body("0.eventId")},
		EventType: []Field{body("0.subscriptionType")},
		Docs:      "https://developers.hubspot.com/docs/api/webhooks/validating-requests",
	},
	{
		Name:      "hubspot_v1",
		Scheme:    &HMAC{Header: []string{"X-HubSpot-Signature"}, KeyPrefixHash: true},
		EventID:   []Field{body("0.eventId")},
		EventType: []Field{body("0.subscriptionType")},
		Docs:      "https://developers.hubspot.com/docs/api/webhooks/validating-requests",
	},
	{
		Name:      "hubspot_v2",
		Scheme:    &HMAC{Header: []string{"X-HubSpot-Signature"}, KeyPrefixHash: true, Content: "{method}{url}{body}"},
		EventID:   []Field{body("0.eventId")},
		EventType: []Field{body("0.subscriptionType")},
		Docs:      "https://developers.hubspot.com/docs/api/webhooks/validating-requests",
	},
	{
		Name:      "intercom",
		Scheme:    &HMAC{Header: []string{"X-Hub-Signature"}, Prefix: "sha1=", Algorithm: SHA1},
		EventID:   []Field{body("id")},
		EventType: []Field{body("topic")},
		Docs:      "https://developers.intercom.com/docs/references/webhooks/webhook-models",
	},
	{
		Name:      "jira",
		Scheme:    prefixedHex("X-Hub-Signature", "sha256="),
		EventID:   []Field{hdr("X-Atlassian-Webhook-Identifier")},
		EventType: []Field{body("webhookEvent")},
		Docs:      "https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks",
	},
	{
		Name:      "lago",
		Scheme:    bodyB64("X-Lago-Signature"),
		EventID:   []Field{hdr("X-Lago-Unique-Key")},
		EventType: []Field{body("webhook_type")},
		Docs:      "https://getlago.com/docs/api-reference/webhooks/format---signature",
	},
	{
		Name:      "lemon_squeezy",
		Aliases:   []string{"lemonsqueezy"},
		Scheme:    bodyHex("X-Signature"),
		EventType: []Field{hdr("X-Event-Name"), body("meta.event_name")},
		Docs:      "https://docs.lemonsqueezy.com/help/webhooks/signing-requests",
	},
	{
		Name:      "line",
		Scheme:    bodyB64("X-Line-Signature"),
		EventID:   []Field{body("events.0.webhookEventId")},
		EventType: []Field{body("events.0.type")},
		Docs:      "https://developers.line.biz/en/docs/messaging-api/receiving-messages/#verify-signature",
	},
	{
		Name: "linear",
		// The body's own webhookTimestamp is covered by the signature,
		// unlike the linear-timestamp header.
		Scheme:    &HMAC{Header: []string{"Linear-Signature"}, TimestampJSON: "webhookTimestamp", TimestampFormat: TimestampUnixMilli},
		Tolerance: time.Minute,
		EventID:   []Field{hdr("Linear-Delivery")},
		EventType: []Field{body("type")},
		Docs:      "https://linear.app/developers/webhooks#securing-webhooks",
	},
	{
		Name:      "logto",
		Scheme:    bodyHex("Logto-Signature-Sha-256"),
		EventType: []Field{body("event")},
		Docs:      "https://docs.logto.io/developers/webhooks/secure-webhooks",
	},
	{
		Name: "mailchimp",
		// Mailchimp signs nothing: the URL's secret query parameter is
		// the whole of its authentication.
		Scheme:    &Token{Query: "secret"},
		Handshake: MethodProbe{Method: http.MethodGet},
		Docs:      "https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/",
	},
	{
		Name:   "mailgun",
		Scheme: mailgunBody,
		// Mailgun asks receivers to refuse a stale timestamp without
		// naming a bound, and warns that its deliveries can be late.
		// Its retries resend the original signature (not documented by
		// Mailgun; observed by others) for up to about 7.5 hours, so the
		// bound covers the retry schedule and the token, remembered for
		// the whole window, is what refuses a replay.
		Tolerance: 8 * time.Hour,
		// The signed token, which Verified.ID also holds: event-data,
		// and its id, are not signed.
		EventID:   []Field{body("signature.token")},
		EventType: []Field{body("event-data.event")},
		Docs:      "https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks",
	},
	{
		Name:   "mandrill",
		Scheme: &Form{Header: "X-Mandrill-Signature"},
		Docs:   "https://mailchimp.com/developer/transactional/guides/track-respond-activity-webhooks/#authenticating-webhook-requests",
	},
	{
		Name: "meta",
		Aliases: []string{
			"facebook", "facebook_graph_api", "facebook_messenger", "instagram", "whatsapp",
		},
		Scheme:    prefixedHex("X-Hub-Signature-256", "sha256="),
		EventType: []Field{body("object")},
		Handshake: QueryChallenge{Param: "hub.challenge", ModeParam: "hub.mode", Mode: "subscribe", TokenParam: "hub.verify_token"},
		Docs:      "https://developers.facebook.com/docs/graph-api/webhooks/getting-started",
	},
	{
		Name:      "microsoft_teams",
		Scheme:    &HMAC{Header: []string{"Authorization"}, Prefix: "HMAC ", Encoding: Base64, SecretEncoding: SecretBase64},
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-outgoing-webhook",
	},
	{
		Name: "monday",
		// The token's aud ties it to this endpoint; the body is not
		// covered.
		Scheme:    &JWT{Header: "Authorization", Prefix: "Bearer ", AudienceURL: true},
		EventType: []Field{body("event.type")},
		Handshake: EventChallenge{When: body("challenge"), Challenge: "challenge", Echo: true, Unsigned: true},
		Docs:      "https://developer.monday.com/apps/docs/integration-authorization",
	},
	{
		Name:      "mux",
		Scheme:    listed("Mux-Signature", "t", "v1"),
		Tolerance: 5 * time.Minute,
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://docs.mux.com/core/verify-webhook-signatures",
	},
	{
		Name:   "netlify",
		Scheme: &JWT{Header: "X-Webhook-Signature", Issuer: "netlify", BodyHashClaim: "sha256"},
		Docs:   "https://docs.netlify.com/site-deploys/deploy-notifications/#payload-signature",
	},
	{
		Name:      "notion",
		Scheme:    prefixedHex("X-Notion-Signature", "sha256="),
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://developers.notion.com/reference/webhooks",
	},
	{
		Name:      "okta",
		Scheme:    &Token{Header: "Authorization"},
		EventID:   []Field{body("data.events.0.uuid")},
		EventType: []Field{body("data.events.0.eventType"), body("eventType")},
		Handshake: HeaderChallenge{Method: http.MethodGet, Header: "X-Okta-Verification-Challenge", JSONKey: "verification"},
		Docs:      "https://developer.okta.com/docs/concepts/event-hooks/",
	},
	{
		Name: "paddle",
		Scheme: &HMAC{
			Header: []string{"Paddle-Signature"}, TimestampKey: "ts", SignatureKey: "h1",
			PairSeparator: ";", Content: "{timestamp}:{body}",
		},
		// Paddle's SDKs allow five seconds.
		Tolerance: 5 * time.Second,
		EventID:   []Field{body("event_id")},
		EventType: []Field{body("event_type")},
		Docs:      "https://developer.paddle.com/webhooks/signature-verification",
	},
	{
		Name:      "pagerduty",
		Scheme:    &HMAC{Header: []string{"X-PagerDuty-Signature"}, SignatureKey: "v1"},
		EventID:   []Field{body("event.id")},
		EventType: []Field{body("event.event_type")},
		Docs:      "https://developer.pagerduty.com/docs/webhooks/webhook-signatures/",
	},
	{
		Name: "paypal",
		// The configured secret is PayPal's signing certificate (PEM),
		// fetched once by the operator: verifying never calls PayPal.
		Scheme: &PublicKey{Algorithm: RSASHA256, Layout: HMAC{
			Header: []string{"Paypal-Transmission-Sig"}, Encoding: Base64,
			IDHeader:        []string{"Paypal-Transmission-Id"},
			TimestampHeader: []string{"Paypal-Transmission-Time"}, TimestampFormat: TimestampRFC3339,
			Content: "{id}|{timestamp}|{webhook_id}|{body.crc32}",
		}},
		EventID:   []Field{body("id"), hdr("Paypal-Transmission-Id")},
		EventType: []Field{body("event_type")},
		Docs:      "https://developer.paypal.com/api/rest/webhooks/rest/#link-selfverificationmethod",
	},
	{
		Name:      "persona",
		Scheme:    &HMAC{Header: []string{"Persona-Signature"}, TimestampKey: "t", SignatureKey: "v1", SetSeparator: " ", Content: "{timestamp}.{body}"},
		EventID:   []Field{body("data.id")},
		EventType: []Field{body("data.attributes.name")},
		Docs:      "https://docs.withpersona.com/docs/webhooks-best-practices",
	},
	{
		Name:   "pipedrive",
		Scheme: &Token{Basic: true},
		Docs:   "https://pipedrive.readme.io/docs/guide-for-webhooks",
	},
	{
		Name:   "postmark",
		Scheme: &Token{Basic: true},
		// Postmark signs nothing; basic auth in the webhook URL is it.
		EventID:   []Field{body("MessageID")},
		EventType: []Field{body("RecordType")},
		Docs:      "https://postmarkapp.com/developer/webhooks/webhooks-overview#protecting-your-webhook",
	},
	{
		Name:   "qonto_onboarding",
		Scheme: bodyHex("Qonto-SHA256-Signature"),
		Docs:   "https://docs.qonto.com/api-reference/onboarding-api/webhooks",
	},
	{
		Name:      "razorpay",
		Scheme:    bodyHex("X-Razorpay-Signature"),
		EventID:   []Field{hdr("X-Razorpay-Event-Id")},
		EventType: []Field{body("event")},
		Docs:      "https://razorpay.com/docs/webhooks/validate-test/",
	},
	{
		Name: "revolut",
		Scheme: &HMAC{
			Header: []string{"Revolut-Signature"}, SignatureKey: "v1",
			TimestampHeader: []string{"Revolut-Request-Timestamp"}, TimestampFormat: TimestampUnixMilli,
			Content: "v1.{timestamp}.{body}",
		},
		Tolerance: 5 * time.Minute,
		EventType: []Field{body("event")},
		Docs:      "https://developer.revolut.com/docs/guides/accept-payments/tutorials/work-with-webhooks/verify-the-payload-signature",
	},
	{
		Name:      "savvycal",
		Scheme:    prefixedHex("X-Savvycal-Signature", "sha256="),
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://savvycal.com/docs/api/webhooks",
	},
	{
		Name:      "segment",
		Scheme:    &HMAC{Header: []string{"X-Signature"}, Algorithm: SHA1},
		EventID:   []Field{body("messageId")},
		EventType: []Field{body("type")},
		Docs:      "https://segment.com/docs/connections/destinations/catalog/webhooks/",
	},
	{
		Name: "sendgrid",
		Scheme: &PublicKey{Algorithm: ECDSAP256, Layout: HMAC{
			Header: []string{"X-Twilio-Email-Event-Webhook-Signature"}, Encoding: Base64,
			TimestampHeader: []string{"X-Twilio-Email-Event-Webhook-Timestamp"},
			Content:         "{timestamp}{body}",
		}},
		EventID:   []Field{body("0.sg_event_id")},
		EventType: []Field{body("0.event")},
		Docs:      "https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features",
	},
	{
		Name:      "sentry",
		Scheme:    bodyHex("Sentry-Hook-Signature"),
		EventID:   []Field{hdr("Request-ID")},
		EventType: []Field{hdr("Sentry-Hook-Resource")},
		Docs:      "https://docs.sentry.io/organization/integrations/integration-platform/webhooks/",
	},
	{
		Name:      "square",
		Scheme:    &HMAC{Header: []string{"X-Square-Hmacsha256-Signature"}, Encoding: Base64, Content: "{url}{body}"},
		EventID:   []Field{body("event_id")},
		EventType: []Field{body("type")},
		Docs:      "https://developer.squareup.com/docs/webhooks/step3validate",
	},
	{
		Name:    "telegram",
		Scheme:  &Token{Header: "X-Telegram-Bot-Api-Secret-Token"},
		EventID: []Field{body("update_id")},
		Docs:    "https://core.telegram.org/bots/api#setwebhook",
	},
	{
		Name:      "terraform",
		Scheme:    &HMAC{Header: []string{"X-TFE-Notification-Signature"}, Algorithm: SHA512},
		EventType: []Field{body("notifications.0.trigger")},
		Docs:      "https://developer.hashicorp.com/terraform/cloud-docs/workspaces/settings/notifications#notification-authenticity",
	},
	{
		Name:      "tiktok",
		Scheme:    listed("TikTok-Signature", "t", "s"),
		EventType: []Field{body("event")},
		Docs:      "https://developers.tiktok.com/doc/webhooks-verification",
	},
	{
		Name:   "trello",
		Scheme: &HMAC{Header: []string{"X-Trello-Webhook"}, Algorithm: SHA1, Encoding: Base64, Content: "{body}{url}"},
		// Trello checks a new callback URL with a HEAD.
		Handshake: MethodProbe{Method: http.MethodHead},
		EventID:   []Field{body("action.id")},
		EventType: []Field{body("action.type")},
		Docs:      "https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/#webhook-signatures",
	},
	{
		Name:   "trendmicro_conformity",
		Scheme: bodyHex("X-TrendMicro-Signature"),
		Docs:   "https://cloudone.trendmicro.com/docs/conformity/webhook-communication/",
	},
	{
		Name: "twilio",
		Scheme: &Form{
			Header:         "X-Twilio-Signature",
			PortVariants:   true,
			BodyHashParam:  "bodySHA256",
			SettingsHeader: "X-Twilio-Webhooks-Signature-Settings",
		},
		EventID:       []Field{hdr("I-Twilio-Idempotency-Token")},
		Docs:          "https://www.twilio.com/docs/usage/webhooks/webhooks-security",
		AnswerMatters: "Twilio follows the TwiML of the answer to a call or a message",
	},
	{
		Name: "twitch",
		Scheme: &HMAC{
			Header: []string{"Twitch-Eventsub-Message-Signature"}, Prefix: "sha256=",
			IDHeader:        []string{"Twitch-Eventsub-Message-Id"},
			TimestampHeader: []string{"Twitch-Eventsub-Message-Timestamp"}, TimestampFormat: TimestampRFC3339,
			Content: "{id}{timestamp}{body}",
		},
		Tolerance: 10 * time.Minute,
		EventID:   []Field{hdr("Twitch-Eventsub-Message-Id")},
		EventType: []Field{body("subscription.type")},
		Handshake: EventChallenge{
			When: hdr("Twitch-Eventsub-Message-Type"), Equals: "webhook_callback_verification", Challenge: "challenge",
		},
		Docs: "https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message",
	},
	{
		Name:      "typeform",
		Scheme:    &HMAC{Header: []string{"Typeform-Signature"}, Prefix: "sha256=", Encoding: Base64},
		EventID:   []Field{body("event_id")},
		EventType: []Field{body("event_type")},
		Docs:      "https://www.typeform.com/developers/webhooks/secure-your-webhooks/",
	},
	{
		Name:      "vercel",
		Scheme:    &HMAC{Header: []string{"X-Vercel-Signature"}, Algorithm: SHA1},
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://vercel.com/docs/webhooks/webhooks-api#securing-webhooks",
	},
	{
		Name: "webflow",
		Scheme: &HMAC{
			Header:          []string{"X-Webflow-Signature"},
			TimestampHeader: []string{"X-Webflow-Timestamp"}, TimestampFormat: TimestampUnixMilli,
			Content: "{timestamp}:{body}",
		},
		Tolerance: 5 * time.Minute,
		EventType: []Field{body("triggerType")},
		Docs:      "https://developers.webflow.com/data/docs/working-with-webhooks",
	},
	{
		Name:   "xero",
		Scheme: bodyB64("X-Xero-Signature"),
		// Xero's intent-to-receive check wants exactly 401 for a bad
		// signature.
		RefusalStatus: http.StatusUnauthorized,
		Docs:          "https://developer.xero.com/documentation/guides/webhooks/configuring-your-server/",
	},
	{
		Name:      "zendesk",
		Scheme:    &HMAC{Header: []string{"X-Zendesk-Webhook-Signature"}, Encoding: Base64, TimestampHeader: []string{"X-Zendesk-Webhook-Signature-Timestamp"}, TimestampFormat: TimestampRFC3339, Content: "{timestamp}{body}"},
		EventID:   []Field{hdr("X-Zendesk-Webhook-Invocation-Id"), body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://developer.zendesk.com/documentation/webhooks/verifying/",
	},
	{
		Name:      "zoom",
		Scheme:    slackStyle("X-Zm-Signature", "X-Zm-Request-Timestamp"),
		EventType: []Field{body("event")},
		Handshake: EventChallenge{When: body("event"), Equals: "endpoint.url_validation", Challenge: "payload.plainToken", Zoom: true},
		Docs:      "https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events",
	},
}

// adyenNotification checks each item of a classic notification batch
// over its eight signed fields.
var adyenNotification = &BodyHMAC{
	Items:     "notificationItems",
	Signature: []string{"NotificationRequestItem.additionalData.hmacSignature"},
	Fields: []string{
		"NotificationRequestItem.pspReference",
		"NotificationRequestItem.originalReference",
		"NotificationRequestItem.merchantAccountCode",
		"NotificationRequestItem.merchantReference",
		"NotificationRequestItem.amount.value",
		"NotificationRequestItem.amount.currency",
		"NotificationRequestItem.eventCode",
		"NotificationRequestItem.success",
	},
	// A pspReference alone repeats across events (a CHARGEBACK carries
	// its payment's); with the signed eventCode and success it names one.
	ID: []string{
		"NotificationRequestItem.pspReference",
		"NotificationRequestItem.eventCode",
		"NotificationRequestItem.success",
	},
	Separator:      ":",
	Encoding:       Base64,
	SecretEncoding: SecretHex,
}

// mailgunBody covers only the timestamp and the random token, not the
// event data: a captured signature fits any body within the tolerance,
// so the token is the delivery's id and a nonce, which the idempotency
// store refuses to see twice.
var mailgunBody = &BodyHMAC{
	Signature: []string{"signature.signature", "signature.parent-signature"},
	Fields:    []string{"signature.timestamp", "signature.token"},
	Timestamp: "signature.timestamp",
	ID:        []string{"signature.token"},
	Nonce:     "signature.token",
}

// braintreeForm reads "public_key|signature" pairs and keys the HMAC
// with SHA1(private key).
var braintreeForm = &BodyHMAC{
	Form:           true,
	Signature:      []string{"bt_signature"},
	SignatureList:  "&",
	SignatureAfter: "|",
	Fields:         []string{"bt_payload"},
	Algorithm:      SHA1,
	SecretEncoding: SecretSHA1,
}
