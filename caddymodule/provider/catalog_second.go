package provider

import "time"

// The second wave of plain providers (issue 9): rows over schemes that
// already exist. testdata/catalog.md gives each row's sources. Rows that
// sign a time and document no bound get DefaultTolerance.
func init() {
	for _, p := range secondWave {
		Register(p)
	}
}

// standardWebhooksOnly is Standard Webhooks under its own header names
// alone, for senders that never use svix-* headers.
func standardWebhooksOnly() *HMAC { return standardWebhooks("webhook") }

var secondWave = []*Provider{
	{
		Name:   "airwallex",
		Scheme: &HMAC{Header: []string{"X-Signature"}, TimestampHeader: []string{"X-Timestamp"}, TimestampFormat: TimestampUnixMilli, Content: "{timestamp}{body}"},
		// Airwallex documents no bound; its retries run for about three
		// days without saying whether they are signed again, so the
		// event id, stable across retries, is what refuses a replay.
		EventID:   []Field{body("id")},
		EventType: []Field{body("name")},
		Docs:      "https://www.airwallex.com/docs/developer-tools/webhooks/listen-for-webhook-events",
	},
	{
		Name:      "alchemy",
		Scheme:    bodyHex("X-Alchemy-Signature"),
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://www.alchemy.com/docs/reference/notify-api-quickstart",
	},
	{
		Name:    "auth0",
		Aliases: []string{"auth0_log_streams"},
		// A custom webhook log stream sends its optional "Authorization
		// Token" as the whole Authorization header: nothing is signed.
		Scheme: &Token{Header: "Authorization"},
		Docs:   "https://auth0.com/docs/customize/log-streams/custom-log-streams",
	},
	{
		Name:    "autodesk",
		Aliases: []string{"autodesk_aps"},
		Scheme:  &HMAC{Header: []string{"X-Adsk-Signature"}, Prefix: "sha1hash=", Algorithm: SHA1},
		Docs:    "https://aps.autodesk.com/en/docs/webhooks/v1/tutorials/how-to-verify-payload-signature/",
	},
	{
		Name: "bolt",
		// While a signing secret rotates, Bolt signs with the incoming
		// one in a second header.
		Scheme: &HMAC{Header: []string{"X-Bolt-Hmac-Sha256", "X-Bolt-Hmac-Sha256-Pending"}, EveryHeader: true, Encoding: Base64},
		Docs:   "https://help.bolt.com/developers/guides/webhooks/hook-verification/",
	},
	{
		Name: "brex",
		// Brex's secrets come from GET /v1/webhooks/secrets, base64, with
		// or without whsec_; during a rotation it returns two and signs
		// with both: configure both.
		Scheme:  standardWebhooksOnly(),
		EventID: []Field{hdr("Webhook-Id")},
		Docs:    "https://developer.brex.com/docs/webhooks/",
	},
	{
		Name:      "cal_com",
		Aliases:   []string{"calcom"},
		Scheme:    bodyHex("X-Cal-Signature-256"),
		EventType: []Field{body("triggerEvent")},
		Docs:      "https://cal.com/docs/core-features/webhooks",
	},
	{
		Name: "chargebee",
		// Chargebee signs nothing: the webhook's basic-auth credentials
		// are its only authentication.
		Scheme:    &Token{Basic: true},
		EventID:   []Field{body("id")},
		EventType: []Field{body("event_type")},
		Docs:      "https://www.chargebee.com/docs/2.0/webhook_settings.html",
	},
	{
		Name:    "chargify",
		Aliases: []string{"maxio"},
		// The body is form-encoded (id, event, payload[...]): the id
		// header is the dedup key and no JSON path applies.
		Scheme:  bodyHex("X-Chargify-Webhook-Signature-Hmac-Sha-256"),
		EventID: []Field{hdr("X-Chargify-Webhook-Id")},
		Docs:    "https://docs.maxio.com/hc/en-us/articles/24266136649869-Webhooks-Reference",
	},
	{
		Name:      "checkout_com",
		Aliases:   []string{"checkout"},
		Scheme:    bodyHex("Cko-Signature"),
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://www.checkout.com/docs/developer-resources/webhooks/manage-webhooks/set-up-your-webhook-receiver",
	},
	{
		Name:    "commerce_layer",
		Aliases: []string{"commercelayer"},
		// Real-time webhooks and external resources alike: a base64
		// HMAC-SHA256 of the body with the shared secret. The body is the
		// JSON:API resource, whose id names the resource, not the event.
		Scheme: bodyB64("X-CommerceLayer-Signature"),
		Docs:   "https://docs.commercelayer.io/core/callbacks-security",
	},
	{
		Name:    "customerio",
		Aliases: []string{"customer_io"},
		// Customer.io retries for seven days and documents neither a
		// bound nor whether retries are signed again: the 5 min default
		// applies and event_id refuses replays.
		Scheme:    &HMAC{Header: []string{"X-CIO-Signature"}, TimestampHeader: []string{"X-CIO-Timestamp"}, Content: "v0:{timestamp}:{body}"},
		EventID:   []Field{body("event_id")},
		EventType: []Field{body("metric")},
		Docs:      "https://customer.io/docs/api/webhooks/",
	},
	{
		Name:      "dwolla",
		Scheme:    bodyHex("X-Request-Signature-SHA-256"),
		EventID:   []Field{body("id")},
		EventType: []Field{hdr("X-Dwolla-Topic"), body("topic")},
		Docs:      "https://developers.dwolla.com/docs/balance/webhooks",
	},
	{
		Name:      "fastspring",
		Scheme:    bodyB64("X-FS-Signature"),
		EventType: []Field{body("events.0.type")},
		Docs:      "https://developer.fastspring.com/reference/message-security",
	},
	{
		Name: "front",
		// Application webhooks: base64 HMAC-SHA256 of "<ms>:" + body with
		// the app's signing key. Front's own connector docs reject after
		// five minutes; rule webhooks (another key and content, no
		// timestamp header) are not this row and are refused for lack
		// of X-Front-Request-Timestamp. The signed x-front-challenge
		// request sent when the webhook is saved passes to the upstream,
		// which answers it.
		Scheme: &HMAC{
			Header: []string{"X-Front-Signature"}, Encoding: Base64,
			TimestampHeader: []string{"X-Front-Request-Timestamp"}, TimestampFormat: TimestampUnixMilli,
			Content: "{timestamp}:{body}",
		},
		Tolerance: 5 * time.Minute,
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://dev.frontapp.com/docs/application-webhooks",
	},
	{
		Name:   "gocardless",
		Scheme: bodyHex("Webhook-Signature"),
		// A batch of up to 250 events: the first one's id stands for
		// the delivery.
		EventID:   []Field{body("events.0.id")},
		EventType: []Field{body("events.0.resource_type")},
		Docs:      "https://developer.gocardless.com/getting-started/staying-up-to-date-with-webhooks",
	},
	{
		Name:    "heroku",
		Scheme:  bodyB64("Heroku-Webhook-Hmac-SHA256"),
		EventID: []Field{hdr("Heroku-Webhook-Id")},
		Docs:    "https://devcenter.heroku.com/articles/app-webhooks",
	},
	{
		Name:    "incident_io",
		Aliases: []string{"incidentio"},
		// Delivered through Svix under the webhook-* header names, the
		// Standard Webhooks layout; failed deliveries are retried for 24
		// hours.
		Scheme:  standardWebhooksOnly(),
		EventID: []Field{hdr("Webhook-Id")},
		Docs:    "https://docs.incident.io/api-reference/webhooks",
	},
	{
		Name: "klaviyo",
		// System webhooks: hex HMAC-SHA256 of the body followed by the
		// Klaviyo-Timestamp header. The header is signed but its format
		// is not documented, so it is covered as text and no freshness
		// is checked; the first event's external_id refuses a replay.
		Scheme:    &HMAC{Header: []string{"Klaviyo-Signature"}, Content: "{body}{header.Klaviyo-Timestamp}"},
		EventID:   []Field{body("data.0.external_id")},
		EventType: []Field{body("data.0.topic")},
		Docs:      "https://developers.klaviyo.com/en/docs/working_with_system_webhooks",
	},
	{
		Name:      "launch_darkly",
		Aliases:   []string{"launchdarkly"},
		Scheme:    bodyHex("X-LD-Signature"),
		EventID:   []Field{body("_id")},
		EventType: []Field{body("kind")},
		Docs:      "https://launchdarkly.com/docs/home/infrastructure/webhooks",
	},
	{
		Name: "lithic",
		// lithic-go's VerifySignature allows five minutes either way.
		Scheme:    standardWebhooksOnly(),
		Tolerance: 5 * time.Minute,
		EventID:   []Field{hdr("Webhook-Id")},
		EventType: []Field{body("event_type")},
		Docs:      "https://docs.lithic.com/docs/events-api",
	},
	{
		Name:   "modern_treasury",
		Scheme: bodyHex("X-Signature"),
		Docs:   "https://docs.moderntreasury.com/docs/verifying-webhooks",
	},
	{
		Name: "mollie",
		// Next-gen webhooks: hex HMAC-SHA256 of the body. Mollie's docs
		// compare the bare hex; its PHP SDK strips a "sha256=" first when
		// there is one, so both forms are read. Legacy webhooks (a form
		// body with an id, unsigned) are refused for the missing header.
		Scheme: &HMAC{Header: []string{"X-Mollie-Signature"}, Prefix: "sha256=", PrefixOptional: true},
		Docs:   "https://docs.mollie.com/reference/webhooks-best-practices",
	},
	{
		Name:    "mongodb",
		Aliases: []string{"mongodb_atlas"},
		// Atlas alerts: the body's id names an alert, not a delivery
		// (one alert opens, updates and closes), so none is set.
		Scheme:    &HMAC{Header: []string{"X-MMS-Signature"}, Algorithm: SHA1, Encoding: Base64},
		EventType: []Field{hdr("X-MMS-Event")},
		Docs:      "https://www.mongodb.com/docs/atlas/tutorial/webhook-integration/",
	},
	{
		Name: "openai",
		// openai-python's verify_signature: tolerance 300 s both ways.
		// Its whsec_ secret is base64 after the prefix, as the standard
		// says; give it with its prefix.
		Scheme:    standardWebhooksOnly(),
		Tolerance: 5 * time.Minute,
		EventID:   []Field{hdr("Webhook-Id")},
		EventType: []Field{body("type")},
		Docs:      "https://platform.openai.com/docs/guides/webhooks",
	},
	{
		Name: "orb",
		// X-Orb-Timestamp is an ISO 8601 time without a zone, UTC.
		// orb-billing's verifySignature allows five minutes either way.
		Scheme: &HMAC{
			Header: []string{"X-Orb-Signature"}, SignatureKey: "v1", PairSeparator: " ",
			TimestampHeader: []string{"X-Orb-Timestamp"}, TimestampFormat: TimestampRFC3339,
			Content: "v1:{timestamp}:{body}",
		},
		Tolerance: 5 * time.Minute,
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		Docs:      "https://github.com/orbcorp/orb-node/blob/main/src/resources/webhooks.ts",
	},
	{
		Name: "polar",
		// Standard Webhooks for endpoints whose secret was generated on or
		// after 2026-09-08 (Polar signs older ones with the UTF-8 bytes of
		// the whole secret, which this row does not read: regenerate).
		Scheme:    standardWebhooksOnly(),
		EventID:   []Field{hdr("Webhook-Id")},
		EventType: []Field{body("type")},
		Docs:      "https://polar.sh/docs/integrate/webhooks/delivery",
	},
	{
		Name: "pinwheel",
		// x-pinwheel-signature: v2=<hex> of "v2:" + x-timestamp + ":" +
		// body, keyed with the API secret. The x-timestamp header is
		// signed but its unit is not stated, so it is covered as text
		// and no freshness is checked.
		Scheme: &HMAC{Header: []string{"X-Pinwheel-Signature"}, Prefix: "v2=", Content: "v2:{header.X-Timestamp}:{body}"},
		Docs:   "https://docs.pinwheelapi.com/docs/webhook-signature-verification",
	},
	{
		Name: "pusher",
		// X-Pusher-Key names the app whose secret signed; the route's
		// secret is that app's.
		Scheme: bodyHex("X-Pusher-Signature"),
		Docs:   "https://pusher.com/docs/channels/server_api/webhooks/",
	},
	{
		Name: "recurly",
		// recurly-signature: <ms>,<sig>[,<sig>]; after a key is
		// regenerated the old and new keys both sign for 24 hours.
		// recurly-client-ruby allows five minutes either way and Recurly's
		// docs verify with that default, so its retries (up to 10 over
		// about two days) must be signed afresh.
		Scheme: &HMAC{
			Header: []string{"Recurly-Signature"}, TimestampFirst: true,
			TimestampFormat: TimestampUnixMilli, Content: "{timestamp}.{body}",
		},
		Tolerance: 5 * time.Minute,
		// The body's id is the object's (an account's is the same on its
		// created, updated and closed notices): no dedup key.
		EventType: []Field{body("object_type")},
		Docs:      "https://docs.recurly.com/recurly-subscriptions/docs/signature-verification",
	},
	{
		Name:      "render",
		Scheme:    standardWebhooksOnly(),
		EventID:   []Field{hdr("Webhook-Id")},
		EventType: []Field{body("type")},
		Docs:      "https://render.com/docs/webhooks",
	},
	{
		Name: "replicate",
		// Replicate signs each attempt anew ("when the webhook attempt
		// occurred"), so a retry is fresh and the id, the same on every
		// retry, stops a replay.
		Scheme:  standardWebhooksOnly(),
		EventID: []Field{hdr("Webhook-Id")},
		Docs:    "https://replicate.com/docs/topics/webhooks/verify-webhook",
	},
	{
		Name: "revenuecat",
		// The optional authorization header value set on the webhook,
		// sent as it is with each POST.
		Scheme:    &Token{Header: "Authorization"},
		EventID:   []Field{body("event.id")},
		EventType: []Field{body("event.type")},
		Docs:      "https://www.revenuecat.com/docs/integrations/webhooks",
	},
	{
		Name:    "signal_sciences",
		Aliases: []string{"sigsci"},
		// Generic webhooks: hex HMAC-SHA256 of the payload with the key
		// generated for the integration.
		Scheme:    bodyHex("X-SigSci-Signature"),
		EventType: []Field{body("type")},
		Docs:      "https://docs.fastly.com/signalsciences/integrations/generic-webhooks/",
	},
	{
		Name: "sinch_conversation",
		// Conversation API callbacks: base64 HMAC-SHA256 of body + "." +
		// nonce + "." + timestamp. The SDKs support HmacSHA256 alone and
		// check no time; Sinch's docs ask for a small window and a
		// unique nonce, which is the dedup key here.
		Scheme: &HMAC{
			Header: []string{"X-Sinch-Webhook-Signature"}, Encoding: Base64,
			TimestampHeader: []string{"X-Sinch-Webhook-Signature-Timestamp"},
			IDHeader:        []string{"X-Sinch-Webhook-Signature-Nonce"},
			Content:         "{body}.{id}.{timestamp}",
		},
		EventID: []Field{hdr("X-Sinch-Webhook-Signature-Nonce")},
		Docs:    "https://developers.sinch.com/sdk/sinch-sdk-node/1.5.0/variables/validateWebhookSignature.html",
	},
	{
		Name: "sinch_numbers",
		// Numbers callbacks: hex HMAC-SHA1 of the body with the callback
		// secret set on the number.
		Scheme:    &HMAC{Header: []string{"X-Sinch-Signature"}, Algorithm: SHA1},
		EventID:   []Field{body("eventId")},
		EventType: []Field{body("eventType")},
		Docs:      "https://developers.sinch.com/sdk/sinch-sdk-node/1.5.0/variables/validateSignatureHeader.html",
	},
	{
		Name:    "sonatype",
		Aliases: []string{"sonatype_nexus", "nexus"},
		Scheme:  &HMAC{Header: []string{"X-Nexus-Webhook-Signature"}, Algorithm: SHA1},
		// X-Nexus-Webhook-Delivery is "a unique UUID identifying the
		// event"; X-Nexus-Webhook-Id names the event type.
		EventID:   []Field{hdr("X-Nexus-Webhook-Delivery")},
		EventType: []Field{hdr("X-Nexus-Webhook-Id")},
		Docs:      "https://help.sonatype.com/repomanager3/integrations/webhooks/enabling-a-repository-webhook-capability",
	},
	{
		Name: "stytch",
		// Stytch delivers its webhooks through Svix.
		Scheme:  standardWebhooks("svix", "webhook"),
		EventID: []Field{body("event_id"), hdr("Svix-Id")},
		Docs:    "https://stytch.com/docs/b2b/guides/webhooks",
	},
	{
		Name:      "tally",
		Scheme:    bodyB64("Tally-Signature"),
		EventID:   []Field{body("eventId")},
		EventType: []Field{body("eventType")},
		Docs:      "https://tally.so/help/webhooks",
	},
	{
		Name: "webex",
		// The body's id is the webhook's, the same on every event.
		Scheme:    &HMAC{Header: []string{"X-Spark-Signature"}, Algorithm: SHA1},
		EventType: []Field{body("event")},
		Docs:      "https://developer.webex.com/docs/api/guides/webhooks",
	},
	{
		Name: "woocommerce",
		// WooCommerce keys the HMAC with wp_specialchars_decode(secret):
		// configure the secret as it was typed, with & < > " ' as such.
		// X-WC-Webhook-Delivery-ID is new on each attempt, so it is no
		// dedup key.
		Scheme:    bodyB64("X-WC-Webhook-Signature"),
		EventType: []Field{hdr("X-WC-Webhook-Topic")},
		Docs:      "https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks",
	},
	{
		Name: "workos",
		// WorkOS-Signature: t=<ms>, v1=<hex>; the SDKs' default tolerance
		// is 180 s, and since WorkOS's own SDKs refuse older ones its
		// retries must be signed afresh.
		Scheme: &HMAC{
			Header: []string{"WorkOS-Signature"}, TimestampKey: "t", SignatureKey: "v1",
			TimestampFormat: TimestampUnixMilli, Content: "{timestamp}.{body}",
		},
		Tolerance: 180 * time.Second,
		EventID:   []Field{body("id")},
		EventType: []Field{body("event")},
		Docs:      "https://workos.com/docs/events/data-syncing/webhooks",
	},
}
