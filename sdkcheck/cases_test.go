package sdkcheck

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	paddle "github.com/PaddleHQ/paddle-go-sdk/v4"
	"github.com/PagerDuty/go-pagerduty/webhookv3"
	"github.com/bwmarrin/discordgo"
	"github.com/google/go-github/v72/github"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/openai/openai-go/v3/option"
	openaiwebhooks "github.com/openai/openai-go/v3/webhooks"
	"github.com/razorpay/razorpay-go/utils"
	"github.com/resend/resend-go/v2"
	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	"github.com/slack-go/slack"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v82"
	stripewebhook "github.com/stripe/stripe-go/v82/webhook"
	svix "github.com/svix/svix-webhooks/go"
	twilio "github.com/twilio/twilio-go/client"
)

// sdkCase is one provider's official Go SDK (where the provider has
// none: the most used one, or for Standard Webhooks senders the spec's
// reference library), checked against the gateway's route for that
// provider at /<name>.
type sdkCase struct {
	name     string // the SDK and, where it needs one, what of it is checked
	provider string // the gateway's provider
	// secret is the route's secret: the signing secret, or the public
	// key for providers that sign with a private one (signKey).
	secret, signKey string
	// wrong is a key that did not sign: the SDK must refuse with it.
	// wrongSignKey is its private half, where wrong is a public key
	// and the SDK signs.
	wrong, wrongSignKey string
	// published: the provider publishes its keys, which the route
	// fetches. The route has no secret: the gateway gets secret (the
	// key set) from a local TLS server at keys_url, allowed by the
	// global key_fetch option, as it would from the provider's.
	published bool
	// options are further lines of the route's webhook_gateway block.
	options string
	// header is sent beside the signature (set before signing).
	header http.Header
	body   string
	// query is what the provider adds to the URL it signs.
	query func(body []byte) string
	// bodyUnsigned: the signature covers no body byte (Mailgun signs a
	// timestamp and a token), so a changed body is no forgery.
	bodyUnsigned bool
	// bodyRewritten: the provider signs inside the body, so what
	// arrives is the signed body, not the one given to the signer.
	bodyRewritten bool

	// sign signs a delivery to url with the SDK: the headers to send.
	// Nil for SDKs that only verify.
	sign func(key, url string, body []byte, at time.Time, id string) (http.Header, error)
	// verify checks a delivery with the SDK as the app behind the
	// gateway would, with the key the route is configured with.
	verify func(d delivery, key string) error
}

func (c sdkCase) signingKey() string {
	if c.signKey != "" {
		return c.signKey
	}
	return c.secret
}

// wrongSigningKey signs as the key wrong names.
func (c sdkCase) wrongSigningKey() string {
	if c.wrongSignKey != "" {
		return c.wrongSignKey
	}
	return c.wrong
}

// errRefused is what an SDK whose verifier returns a bool said.
var errRefused = errors.New("the SDK refused the delivery")

func refusedUnless(ok bool) error {
	if !ok {
		return errRefused
	}
	return nil
}

const (
	whsec      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	wrongWhsec = "whsec_d3Jvbmcgc2VjcmV0IGtleSBieXRlcw=="
)

// Keys of the providers that sign with a private key, made per run.
var (
	discordPublic, discordSeed      = ed25519Keys()
	otherDiscordPublic, _           = ed25519Keys()
	sendgridPrivate, sendgridPublic = ecdsaKeys()
	_, otherSendgridPublic          = ecdsaKeys()
)

// ed25519Keys returns a key pair as Discord shows a public key (hex) and
// as `webhook-gateway sign` takes the private one (the hex seed).
func ed25519Keys() (public, seed string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(pub), hex.EncodeToString(priv.Seed())
}

// ecdsaKeys returns a P-256 pair as base64 DER: PKCS#8 for the private
// key, PKIX for the public one, as SendGrid shows its verification key.
func ecdsaKeys() (private, public string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(priv), base64.StdEncoding.EncodeToString(pub)
}

// stripeBody is an event of the API version the SDK expects, which its
// ConstructEvent insists on.
var stripeBody = fmt.Sprintf(`{"id":"evt_sdk","object":"event","api_version":%q,"type":"invoice.paid","data":{"object":{"id":"in_1"}}}`, stripe.APIVersion)

// mailgunBody is a Mailgun event before its signature is filled in.
var mailgunBody = fmt.Sprintf(`{"signature":{"timestamp":"%d","token":"a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0","signature":""},"event-data":{"event":"delivered","id":"ev1","recipient":"a@example.com"}}`,
	time.Now().Unix())

var cases = []sdkCase{
	{
		name: "stripe-go", provider: "stripe", secret: "whsec_sdk_stripe", wrong: "whsec_sdk_other",
		body: stripeBody,
		sign: func(key, _ string, body []byte, at time.Time, _ string) (http.Header, error) {
			p := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: key, Timestamp: at})
			return http.Header{"Stripe-Signature": {p.Header}}, nil
		},
		verify: func(d delivery, key string) error {
			e, err := stripewebhook.ConstructEvent(d.Body, d.Header.Get("Stripe-Signature"), key)
			if err == nil && e.ID != "evt_sdk" {
				err = fmt.Errorf("event id %q", e.ID)
			}
			return err
		},
	},
	standardCase(sdkCase{
		name: "svix", provider: "svix", secret: whsec, wrong: wrongWhsec,
		body: `{"type":"invoice.paid","data":{"id":1}}`,
	}, svix.NewWebhook, "svix-"),
	standardCase(sdkCase{
		name: "standard-webhooks", provider: "standard_webhooks", secret: whsec, wrong: wrongWhsec,
		body: `{"type":"user.created","data":{"id":1}}`,
	}, standardwebhooks.NewWebhook, "webhook-"),
	// Providers that follow Standard Webhooks without a Go SDK here
	// (lithic-go and replicate-go are not on the module proxy; Brex has
	// none): the spec's reference library signs and verifies for them.
	standardCase(sdkCase{
		name: "standard-webhooks_lithic", provider: "lithic", secret: whsec, wrong: wrongWhsec,
		body: `{"event_type":"card_transaction.updated","payload":{"token":"t1"}}`,
	}, standardwebhooks.NewWebhook, "webhook-"),
	standardCase(sdkCase{
		name: "standard-webhooks_replicate", provider: "replicate", secret: whsec, wrong: wrongWhsec,
		body: `{"id":"ufawqhfynnddngldkgtslldrkq","status":"succeeded"}`,
	}, standardwebhooks.NewWebhook, "webhook-"),
	standardCase(sdkCase{
		// Brex gives its secret as bare base64.
		name: "standard-webhooks_brex", provider: "brex", secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wrong: "d3Jvbmcgc2VjcmV0IGtleSBieXRlcw==",
		body: `{"event_type":"EXPENSE_PAYMENT_UPDATED","expense_id":"e1"}`,
	}, standardwebhooks.NewWebhook, "webhook-"),
	{
		name: "openai-go", provider: "openai", secret: whsec, wrong: wrongWhsec,
		body: `{"id":"evt_685343a1381c819085d44c354e1b330e","object":"event","created_at":1750287018,"type":"response.completed","data":{"id":"resp_abc123"}}`,
		verify: func(d delivery, key string) error {
			wh := openaiwebhooks.NewWebhookService(option.WithWebhookSecret(key))
			e, err := wh.Unwrap(d.Body, d.Header)
			if err == nil && e.Type != "response.completed" {
				err = fmt.Errorf("unwrapped a %q event", e.Type)
			}
			return err
		},
	},
	{
		// Resend sends through Svix; its SDK verifies on its own.
		name: "resend-go", provider: "resend", secret: whsec, wrong: wrongWhsec,
		body: `{"type":"email.sent","data":{"email_id":"e1"}}`,
		verify: func(d delivery, key string) error {
			return resend.NewClient("re_unused").Webhooks.Verify(&resend.VerifyWebhookOptions{
				Payload: string(d.Body), WebhookSecret: key,
				Headers: resend.WebhookHeaders{Id: d.Header.Get("Svix-Id"), Timestamp: d.Header.Get("Svix-Timestamp"), Signature: d.Header.Get("Svix-Signature")},
			})
		},
	},
	{
		name: "go-github", provider: "github", secret: "sdk github secret", wrong: "other secret",
		header: http.Header{"X-Github-Event": {"push"}},
		body:   `{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}`,
		verify: func(d delivery, key string) error {
			r := d.request()
			payload, err := github.ValidatePayload(r, []byte(key))
			if err != nil {
				return err
			}
			event, err := github.ParseWebHook(github.WebHookType(r), payload)
			if _, ok := event.(*github.PushEvent); err == nil && !ok {
				err = fmt.Errorf("parsed a %T", event)
			}
			return err
		},
	},
	{
		name: "slack-go", provider: "slack", secret: "8f742231b10e8888abcd99yyyzzz85a5", wrong: "8f742231b10e8888abcd99yyyzzz85a6",
		body: `{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}`,
		verify: func(d delivery, key string) error {
			v, err := slack.NewSecretsVerifier(d.Header, key)
			if err != nil {
				return err
			}
			if _, err := v.Write(d.Body); err != nil {
				return err
			}
			return v.Ensure()
		},
	},
	{
		name: "twilio-go_form", provider: "twilio", secret: "sdk-twilio-auth-token", wrong: "other-auth-token",
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		body:   "AccountSid=AC1&CallSid=CA1&Digits=1234&From=%2B14155550100",
		verify: func(d delivery, key string) error {
			form, err := url.ParseQuery(string(d.Body))
			if err != nil {
				return err
			}
			params := map[string]string{}
			for k := range form {
				params[k] = form.Get(k)
			}
			rv := twilio.NewRequestValidator(key)
			return refusedUnless(rv.Validate(d.URL, params, d.Header.Get("X-Twilio-Signature")))
		},
	},
	{
		// A JSON body is signed by its hash in the URL (bodySHA256).
		name: "twilio-go_json", provider: "twilio", secret: "sdk-twilio-auth-token", wrong: "other-auth-token",
		body: `{"CallSid":"CA1","CallStatus":"completed"}`,
		query: func(body []byte) string {
			sum := sha256.Sum256(body)
			return "?bodySHA256=" + hex.EncodeToString(sum[:])
		},
		verify: func(d delivery, key string) error {
			rv := twilio.NewRequestValidator(key)
			return refusedUnless(rv.ValidateBody(d.URL, d.Body, d.Header.Get("X-Twilio-Signature")))
		},
	},
	{
		name: "sendgrid-go", provider: "sendgrid", secret: sendgridPublic, signKey: sendgridPrivate, wrong: otherSendgridPublic,
		body: `[{"email":"a@example.com","event":"delivered","sg_event_id":"sg1","timestamp":1700000000}]`,
		verify: func(d delivery, key string) error {
			pub, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(key)
			if err != nil {
				return err
			}
			ok, err := eventwebhook.VerifySignature(pub, d.Body,
				d.Header.Get(eventwebhook.VerificationHTTPHeader), d.Header.Get(eventwebhook.TimestampHTTPHeader))
			if err != nil {
				return err
			}
			return refusedUnless(ok)
		},
	},
	{
		// Discord has no Go SDK of its own; discordgo is the one used.
		name: "discordgo", provider: "discord", secret: discordPublic, signKey: discordSeed, wrong: otherDiscordPublic,
		body: `{"type":2,"id":"1234567890","application_id":"42","data":{"name":"ping"}}`,
		verify: func(d delivery, key string) error {
			pub, err := hex.DecodeString(key)
			if err != nil {
				return err
			}
			return refusedUnless(discordgo.VerifyInteraction(d.request(), ed25519.PublicKey(pub)))
		},
	},
	{
		name: "razorpay-go", provider: "razorpay", secret: "sdk razorpay secret", wrong: "other secret",
		body: `{"entity":"event","event":"payment.captured","payload":{}}`,
		verify: func(d delivery, key string) error {
			return refusedUnless(utils.VerifyWebhookSignature(string(d.Body), d.Header.Get("X-Razorpay-Signature"), key))
		},
	},
	{
		name: "line-bot-sdk-go", provider: "line", secret: "sdk line channel secret", wrong: "other secret",
		body: `{"destination":"U0123456789abcdef","events":[]}`,
		verify: func(d delivery, key string) error {
			_, err := webhook.ParseRequest(key, d.request())
			return err
		},
	},
	{
		name: "mailgun-go", provider: "mailgun", secret: "sdk-mailgun-signing-key", wrong: "other-signing-key",
		// Mailgun signs inside the body: sign fills in the signature.
		body:         mailgunBody,
		bodyUnsigned: true, bodyRewritten: true,
		verify: func(d delivery, key string) error {
			var p mailgun.WebhookPayload
			if err := json.Unmarshal(d.Body, &p); err != nil {
				return err
			}
			mg := mailgun.NewMailgun("example.com", "unused")
			mg.SetWebhookSigningKey(key)
			ok, err := mg.VerifyWebhookSignature(p.Signature)
			if err != nil {
				return err
			}
			return refusedUnless(ok)
		},
	},
	{
		name: "go-pagerduty", provider: "pagerduty", secret: "sdk pagerduty secret", wrong: "other secret",
		body: `{"event":{"id":"01DEN0","event_type":"incident.triggered","data":{}}}`,
		verify: func(d delivery, key string) error {
			return webhookv3.VerifySignature(d.request(), key)
		},
	},
	{
		name: "paddle-go-sdk", provider: "paddle", secret: "pdl_ntfset_sdk_secret", wrong: "pdl_ntfset_other",
		// Paddle's default bound, 5 s, would make the check hang on the
		// machine's speed; it is about the signature, not the bound.
		options: "tolerance 1m",
		body:    `{"event_id":"evt_01","event_type":"transaction.completed","data":{}}`,
		verify: func(d delivery, key string) error {
			ok, err := paddle.NewWebhookVerifier(key, paddle.VerifierWithTimestampTolerance(time.Minute)).Verify(d.request())
			if err != nil {
				return err
			}
			return refusedUnless(ok)
		},
	},
	googleCase(),
}

// standardSDK is what Svix's SDK and the Standard Webhooks library
// share.
type standardSDK interface {
	Sign(id string, at time.Time, body []byte) (string, error)
	Verify(body []byte, h http.Header) error
}

// standardCase signs and verifies c with either SDK of the Standard
// Webhooks family, whose headers start with prefix.
func standardCase[W standardSDK](c sdkCase, newWebhook func(secret string) (W, error), prefix string) sdkCase {
	c.sign = func(key, _ string, body []byte, at time.Time, id string) (http.Header, error) {
		wh, err := newWebhook(key)
		if err != nil {
			return nil, err
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return nil, err
		}
		h := http.Header{}
		h.Set(prefix+"id", id)
		h.Set(prefix+"timestamp", strconv.FormatInt(at.Unix(), 10))
		h.Set(prefix+"signature", sig)
		return h, nil
	}
	c.verify = func(d delivery, key string) error {
		wh, err := newWebhook(key)
		if err != nil {
			return err
		}
		return wh.Verify(d.Body, d.Header)
	}
	return c
}
