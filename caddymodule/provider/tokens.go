package provider

import "time"

// The providers that sign with a JSON Web Token: keys fetched at run
// time (Google Pub/Sub push, Plaid), a body that is a token (Wix), an
// HS256 token with a signed time (Vonage). testdata/catalog.md gives
// every source.
func init() {
	for _, p := range tokenProviders {
		Register(p)
	}
}

var tokenProviders = []*Provider{
	{
		Name:    "google_pubsub",
		Aliases: []string{"pubsub", "gcp_pubsub"},
		Scheme:  &GooglePush{},
		// Pub/Sub reuses a token for up to an hour ("tokens … can be
		// up to one hour old"), so iat may be that old.
		Tolerance: time.Hour,
		// The push body's message id, which no signature covers.
		EventID:    []Field{body("message.messageId"), body("message.message_id")},
		Docs:       "https://docs.cloud.google.com/pubsub/docs/authenticate-push-subscriptions",
		Secretless: true,
		Options:    []string{"audience", "service_account", "keys_url"},
	},
	{
		Name:      "plaid",
		Scheme:    &Plaid{},
		Tolerance: 5 * time.Minute,
		// Plaid sends no event id; the body, which the token's hash
		// covers, is the idempotency key's material.
		EventType: []Field{body("webhook_code")},
		Docs:      "https://plaid.com/docs/api/webhooks/webhook-verification/",
		Options:   []string{"client_id", "keys_url"},
	},
	{
		Name: "vonage",
		// Messages and Dispatch API signed webhooks. payload_hash is
		// not checked: Vonage's own example hashes a re-serialisation
		// of the parsed query and body, not the bytes received, so the
		// body stays unsigned here.
		Scheme:    &JWT{Header: "Authorization", Prefix: "Bearer ", Issuer: "Vonage", IssuedAt: true},
		EventID:   []Field{body("message_uuid")},
		EventType: []Field{body("status"), body("message_type")},
		Docs:      "https://developer.vonage.com/en/messages/concepts/signed-webhooks",
	},
	{
		Name:   "wix",
		Scheme: &BodyJWT{},
		Docs:   "https://dev.wix.com/docs/build-apps/develop-your-app/frameworks/self-hosting/webhooks/handle-events-with-webhooks-for-self-hosting-without-the-java-script-sdk",
	},
}
