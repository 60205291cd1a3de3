package providertest

import (
	"bytes"
	"fmt"
	"net/http"
	"time"
)

// Marker sits in the signed content of every Shape body: a test changes
// it to change a signed byte.
const Marker = "evt_1"

// Shape is a provider's delivery before signing, as it sends one at a
// time: its header (a form's Content-Type) and body, with Marker always
// in signed content. A provider without a special shape sends JSON.
func Shape(name string, at time.Time) (http.Header, []byte) {
	h := http.Header{}
	body := fmt.Appendf(nil, `{"id":"evt_1","type":"test.event","webhookTimestamp":%d}`, at.UnixMilli())
	switch name {
	case "mailgun":
		body = fmt.Appendf(nil, `{"signature":{"token":"evt_1-token","timestamp":"%d","signature":""},"event-data":{"id":"e1","event":"delivered"}}`, at.Unix())
	case "adyen":
		body = []byte(`{"live":"false","notificationItems":[` + AdyenItem("evt_1") + `,` + AdyenItem("psp_2") + `]}`)
	case "braintree":
		body = []byte("bt_payload=PG5vdGlmaWNhdGlvbj5evt_1%0A&bt_signature=")
	case "microsoft_graph":
		body = []byte(`{"value":[{"subscriptionId":"evt_1","changeType":"created","clientState":"","resource":"me/messages"},{"subscriptionId":"s2","changeType":"updated","clientState":""}]}`)
	case "twilio", "mandrill", "plivo":
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		body = []byte("CallSid=evt_1&Digits=1234&From=%2B14158675309")
	}
	return h, body
}

// AdyenItem is one of Adyen's notification items, its HMAC to be filled.
func AdyenItem(psp string) string {
	return `{"NotificationRequestItem":{"pspReference":"` + psp + `","merchantAccountCode":"M","merchantReference":"r","amount":{"currency":"EUR","value":1000},"eventCode":"AUTHORISATION","success":"true","additionalData":{"hmacSignature":""}}}`
}

// Delivery is what signing may change in a delivery.
type Delivery struct {
	URL    string
	Header http.Header
	Body   []byte
	// Removed names what Stripped took away.
	Removed string
}

// Clone is a deep copy of d.
func (d Delivery) Clone() Delivery {
	return Delivery{URL: d.URL, Header: d.Header.Clone(), Body: bytes.Clone(d.Body)}
}

// Stripped are the signed delivery without each piece its signer added
// (each header, the body's signature, the URL's): every one must be
// refused. It is empty only when signing changed nothing.
func Stripped(unsigned, signed Delivery) []Delivery {
	var out []Delivery
	for name := range signed.Header {
		if _, before := unsigned.Header[name]; !before {
			d := signed.Clone()
			d.Header.Del(name)
			d.Removed = "header " + name
			out = append(out, d)
		}
	}
	if !bytes.Equal(signed.Body, unsigned.Body) {
		d := signed.Clone()
		d.Body = bytes.Clone(unsigned.Body)
		d.Removed = "body signature"
		out = append(out, d)
	}
	if signed.URL != unsigned.URL {
		d := signed.Clone()
		d.URL = unsigned.URL
		d.Removed = "URL signature"
		out = append(out, d)
	}
	return out
}

// ChangedBody is the signed body with one signed byte changed: Marker
// becomes evt_2, or, where the signer rewrote the body (a token in it),
// a byte of what it wrote flips. ok is false when the body lacks both.
func ChangedBody(unsigned, signed Delivery) (body []byte, ok bool) {
	body = bytes.Replace(signed.Body, []byte(Marker), []byte("evt_2"), 1)
	if bytes.Equal(body, signed.Body) && !bytes.Equal(signed.Body, unsigned.Body) {
		body[len(body)/3] ^= 1
	}
	return body, !bytes.Equal(body, signed.Body)
}
