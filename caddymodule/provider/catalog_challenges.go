package provider

import (
	"net/http"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// The providers whose endpoints answer a challenge or whose signature
// sits outside a header (issue 9). testdata/catalog.md gives the
// sources.
func init() {
	for _, p := range challengeCatalog {
		Register(p)
	}
}

var challengeCatalog = []*Provider{
	{
		Name: "microsoft_graph",
		// Graph signs nothing: clientState is the subscription's
		// shared secret, repeated in every notification.
		Scheme: &ClientState{Items: "value", Field: "clientState"},
		// Notifications carry no id of their own (subscriptionId
		// names the subscription), so there is no event id.
		EventType: []Field{body("value.0.changeType"), body("value.0.lifecycleEvent")},
		// POST ?validationToken=…, answered within 10 s with the
		// decoded token as text/plain.
		Handshake: QueryChallenge{Method: http.MethodPost, Param: "validationToken"},
		Docs:      "https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks",
	},
	{
		Name:    "twitter",
		Aliases: []string{"x"},
		Scheme:  &HMAC{Header: []string{"X-Twitter-Webhooks-Signature"}, Encoding: Base64, Prefix: "sha256="},
		Handshake: &CRC{
			Param: "crc_token",
			Shape: crcToken,
			// X sends a CRC on registration, about once a day and
			// when the app asks: a few a minute is plenty.
			Limit: store.Limit{Count: 6, Period: time.Minute, Burst: 3},
		},
		Docs: "https://docs.x.com/x-api/webhooks/quickstart",
	},
	{
		Name:      "nylas",
		Scheme:    bodyHex("X-Nylas-Signature"),
		EventID:   []Field{body("id")},
		EventType: []Field{body("type")},
		// GET ?challenge=… when the webhook is created, echoed
		// within 10 s.
		Handshake: QueryChallenge{Param: "challenge"},
		Docs:      "https://developer.nylas.com/docs/developer-guide/v3-webhooks",
	},
	{
		Name: "telnyx",
		// The route's secret is the account's public key (base64,
		// 32 bytes).
		Scheme: &PublicKey{Algorithm: Ed25519, Layout: HMAC{
			Header:          []string{"Telnyx-Signature-Ed25519"},
			Encoding:        Base64,
			TimestampHeader: []string{"Telnyx-Timestamp"},
			Content:         "{timestamp}|{body}",
		}},
		// The SDKs' tolerance (300 s); a failed delivery goes to the
		// failover URL rather than being re-sent later.
		Tolerance: 5 * time.Minute,
		EventID:   []Field{body("data.id")},
		EventType: []Field{body("data.event_type")},
		Docs:      "https://developers.telnyx.com/docs/development/api-fundamentals/webhooks",
	},
	{
		Name: "plivo",
		// The URL signs like Twilio's: the route must see the public URL
		// Plivo calls (see the gateway's public_url).
		Scheme: &PlivoV3{Header: "X-Plivo-Signature-V3", NonceHeader: "X-Plivo-Signature-V3-Nonce"},
		Docs:   "https://www.plivo.com/docs/voice/concepts/signature-validation",
	},
	{
		Name:   "pandadoc",
		Scheme: &QuerySignature{Param: "signature", Layout: HMAC{}},
		Docs:   "https://developers.pandadoc.com/docs/webhook-verification",
	},
	{
		Name: "sanity",
		// t is in milliseconds; @sanity/webhook checks no age, but
		// Sanity retries twice, 30 s apart, so the default 5 minutes
		// covers every retry that keeps its t.
		Scheme: &HMAC{
			Header: []string{"Sanity-Webhook-Signature"}, Encoding: Base64URL,
			SignatureKey: "v1", TimestampKey: "t", TimestampFormat: TimestampUnixMilli,
			Content: "{timestamp}.{body}",
		},
		Docs: "https://www.sanity.io/docs/webhooks",
	},
}
