package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/webrev/webhook-gateway/internal/providertest"
	"github.com/webrev/webhook-gateway/internal/vectors"
)

// The fuzz targets feed hostile input to each parser in front of a
// verifier keyed with fuzzSecret. Beyond not panicking, each checks that
// an accepted request signs exactly the genuine content: a parser that
// let anything else through would be accepting a forgery.

const fuzzSecret = "fuzz-secret"

var fuzzNow = time.Unix(1700000000, 0)

// fuzzGenuine signs body for a provider and returns the signed request.
func fuzzGenuine(f *testing.F, name, secret string, body []byte, hdr http.Header, url string) *Request {
	p, _ := Lookup(name)
	m := Message{Method: "POST", URL: url, ID: "msg_1", Timestamp: fuzzNow, Body: body, Header: hdr, WebhookID: "WH-1"}
	if err := p.Scheme.Sign(secret, &m); err != nil {
		f.Fatal(err)
	}
	return &Request{Method: "POST", URL: m.URL, Header: m.Header, Body: m.Body, Now: fuzzNow}
}

func fuzzVerifier(f *testing.F, name string) Verifier {
	p, _ := Lookup(name)
	v, err := p.NewVerifier(VerifierConfig{Secrets: []string{fuzzSecret}, WebhookID: "WH-1"})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

// vectorHeaders seeds a target with the vectors' values of a header.
func vectorHeaders(f *testing.F, names ...string) []string {
	vs, err := vectors.Load()
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		h := v.Header()
		for _, n := range names {
			if val := h.Get(n); val != "" {
				out = append(out, val)
			}
		}
	}
	return out
}

// FuzzHMACHeader fuzzes the signature header of the list layouts (Stripe
// key/value pairs, Standard Webhooks space lists, Paddle's ";" pairs,
// PagerDuty's repeated keys) and the body.
func FuzzHMACHeader(f *testing.F) {
	layouts := []struct{ provider, header string }{
		{"stripe", "Stripe-Signature"},
		{"standard_webhooks", "Webhook-Signature"},
		{"paddle", "Paddle-Signature"},
		{"pagerduty", "X-PagerDuty-Signature"},
		{"github", "X-Hub-Signature-256"},
	}
	body := []byte(`{"id":"evt_1"}`)
	var genuine []*Request
	var verifiers []Verifier
	for _, l := range layouts {
		secret := fuzzSecret
		if l.provider == "standard_webhooks" {
			secret = "whsec_ZnV6ei1zZWNyZXQ="
		}
		r := fuzzGenuine(f, l.provider, secret, body, http.Header{}, "")
		genuine = append(genuine, r)
		p, _ := Lookup(l.provider)
		v, err := p.NewVerifier(VerifierConfig{Secrets: []string{secret}})
		if err != nil {
			f.Fatal(err)
		}
		verifiers = append(verifiers, v)
		f.Add(uint8(len(genuine)-1), r.Header.Get(l.header), body)
	}
	for _, h := range vectorHeaders(f, "Stripe-Signature", "Webhook-Signature", "Paddle-Signature", "X-PagerDuty-Signature", "X-Hub-Signature-256") {
		f.Add(uint8(0), h, body)
	}
	f.Fuzz(func(t *testing.T, which uint8, header string, b []byte) {
		i := int(which) % len(layouts)
		r := *genuine[i]
		r.Header = r.Header.Clone()
		r.Header.Set(layouts[i].header, header)
		r.Body = b
		if _, err := verifiers[i].Verify(&r); err == nil && !bytes.Equal(b, body) {
			t.Fatalf("%s accepted a changed body %q with header %q", layouts[i].provider, b, header)
		}
	})
}

// FuzzSignatureSets fuzzes Persona's space-separated "t=…,v1=…" sets,
// each with its own timestamp.
func FuzzSignatureSets(f *testing.F) {
	body := []byte(`{"data":{"id":"inq_1"}}`)
	r := fuzzGenuine(f, "persona", fuzzSecret, body, http.Header{}, "")
	v := fuzzVerifier(f, "persona")
	sig := r.Header.Get("Persona-Signature")
	f.Add(sig, body)
	f.Add("t=1,v1=00 "+sig, body)
	f.Add(sig+" "+sig+" "+sig+" "+sig+" "+sig, body)
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		req := *r
		req.Header = http.Header{"Persona-Signature": {header}}
		req.Body = b
		if _, err := v.Verify(&req); err == nil && !bytes.Equal(b, body) {
			t.Fatalf("accepted a changed body %q with header %q", b, header)
		}
	})
}

// FuzzJWT fuzzes the token parser and Netlify's verifier.
func FuzzJWT(f *testing.F) {
	body := []byte(`{"id":"deploy_1"}`)
	r := fuzzGenuine(f, "netlify", fuzzSecret, body, http.Header{}, "")
	v := fuzzVerifier(f, "netlify")
	tok := r.Header.Get("X-Webhook-Signature")
	f.Add(tok, body)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJuZXRsaWZ5In0.", body)
	f.Add("a.b.c.d", body)
	genuineSigned := tok[:strings.LastIndex(tok, ".")]
	f.Fuzz(func(t *testing.T, token string, b []byte) {
		_, _ = parseJWT(token)
		req := Request{Header: http.Header{"X-Webhook-Signature": {token}}, Body: b, Now: fuzzNow}
		if _, err := v.Verify(&req); err == nil {
			signed := strings.TrimSpace(token)
			signed = signed[:strings.LastIndex(signed, ".")]
			if signed != genuineSigned || !bytes.Equal(b, body) {
				t.Fatalf("accepted a forged token %q for body %q", token, b)
			}
		}
	})
}

// FuzzForm fuzzes Twilio's form parsing, URL variants and body hash.
func FuzzForm(f *testing.F) {
	const url = "https://mycompany.com/myapp.php?foo=1&bar=2"
	body := []byte("CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309")
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	r := fuzzGenuine(f, "twilio", fuzzSecret, body, hdr, url)
	v := fuzzVerifier(f, "twilio")
	sig := r.Header.Get("X-Twilio-Signature")
	genuine := formContent(url, body)
	f.Add(url, sig, body)
	f.Add(url, sig, []byte("Digits=1234&From=%2B14158675309&CallSid=CA1234567890ABCDE"))
	f.Add("https://mycompany.com:443/myapp.php?foo=1&bar=2", sig, body)
	f.Add(url+"&bodySHA256=00", sig, []byte("{}"))
	vs, err := vectors.Load()
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range vs {
		if v.Provider == "twilio" || v.Provider == "mandrill" {
			f.Add(v.URL, v.Header().Get("X-Twilio-Signature")+v.Header().Get("X-Mandrill-Signature"), []byte(v.Body))
		}
	}
	f.Fuzz(func(t *testing.T, u, s string, b []byte) {
		req := Request{URL: u, Header: http.Header{"Content-Type": hdr["Content-Type"], "X-Twilio-Signature": {s}}, Body: b}
		if _, err := v.Verify(&req); err != nil {
			return
		}
		for _, variant := range portVariants(u) {
			if formContent(variant, b) == genuine {
				return
			}
		}
		t.Fatalf("accepted url %q body %q whose signed content differs", u, b)
	})
}

// formContent is what Twilio signs, or "" for a body that is no form.
func formContent(u string, body []byte) string {
	params, err := parseForm(body)
	if err != nil {
		return ""
	}
	var w contentRecorder
	writeFormContent(&w, u, params)
	return w.String()
}

// contentRecorder is a hash.Hash that keeps what it is fed.
type contentRecorder struct{ bytes.Buffer }

func (*contentRecorder) Sum(b []byte) []byte { return b }
func (*contentRecorder) Size() int           { return 0 }
func (*contentRecorder) BlockSize() int      { return 1 }

// FuzzBodySignature fuzzes signatures carried in the body: Adyen's
// batches and Braintree's form pairs.
func FuzzBodySignature(f *testing.F) {
	adyenBody := []byte(`{"notificationItems":[` + providertest.AdyenItem("evt_1") + `,` + providertest.AdyenItem("psp_2") + `]}`)
	adyen := fuzzGenuine(f, "adyen", "0011223344556677", adyenBody, nil, "")
	adyenV, _ := mustLookup("adyen").NewVerifier(VerifierConfig{Secrets: []string{"0011223344556677"}})
	bt := fuzzGenuine(f, "braintree", fuzzSecret, []byte("bt_payload=cGF5bG9hZA%3D%3D%0A&bt_signature="), nil, "")
	btV := fuzzVerifier(f, "braintree")
	f.Add(false, adyen.Body)
	f.Add(true, bt.Body)
	vs, _ := vectors.Load()
	for _, v := range vs {
		if v.Provider == "adyen-notification" || v.Provider == "mailgun" {
			f.Add(false, []byte(v.Body))
		}
	}
	adyenItems := adyenContents(adyen.Body)
	f.Fuzz(func(t *testing.T, form bool, b []byte) {
		req := Request{Header: http.Header{}, Body: b, Now: fuzzNow}
		if form {
			if _, err := btV.Verify(&req); err == nil {
				if vals, _ := parseForm(b); vals.Get("bt_payload") != "cGF5bG9hZA==\n" {
					t.Fatalf("accepted a forged payload %q", vals.Get("bt_payload"))
				}
			}
			return
		}
		if _, err := adyenV.Verify(&req); err == nil {
			for c := range adyenContents(b) {
				if !adyenItems[c] {
					t.Fatalf("accepted a forged item %q", c)
				}
			}
		}
	})
}

func mustLookup(name string) *Provider {
	p, ok := Lookup(name)
	if !ok {
		panic("no provider " + name)
	}
	return p
}

// adyenContents is the set of signed strings of a batch.
func adyenContents(body []byte) map[string]bool {
	items, err := adyenNotification.items(body)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, it := range items {
		out[adyenNotification.content(it)] = true
	}
	return out
}

// FuzzContentful fuzzes the URL, the signed-headers list, the timestamp
// and the body of a Contentful delivery. Besides signing the genuine
// canonical request, an accepted one must have the genuine body, query
// and timestamp, and its list must name exactly the genuine headers
// among those present (the unsigned X-Extra included).
func FuzzContentful(f *testing.F) {
	const url = "https://hooks.example.com/in?x=1"
	const list = "x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"
	secret := strings.Repeat("f", 64)
	body := []byte(`{"sys":{"id":"e1"}}`)
	r := fuzzGenuine(f, "contentful", secret, body, http.Header{"X-Contentful-Topic": {"t"}}, url)
	r.Header.Set("X-Extra", "e")
	p, _ := Lookup("contentful")
	v, err := p.NewVerifier(VerifierConfig{Secrets: []string{secret}})
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := contentfulContent(r)
	if err != nil {
		f.Fatal(err)
	}
	ts := r.Header.Get("X-Contentful-Timestamp")
	if r.Header.Get("X-Contentful-Signed-Headers") != list {
		f.Fatalf("signed list %q", r.Header.Get("X-Contentful-Signed-Headers"))
	}
	f.Add(url, list, ts, body)
	f.Add(url+"?evil=1", list, ts, body)
	f.Add(url, list+",x-extra", ts, body)
	f.Add(url, list+",x-absent", "0"+ts, body)
	f.Add("/in?x=1", "x-contentful-topic,X-Contentful-Timestamp, x-contentful-signed-headers", "+"+ts, body)
	f.Fuzz(func(t *testing.T, u, l, stamp string, b []byte) {
		req := *r
		req.URL = u
		req.Header = r.Header.Clone()
		req.Header.Set("X-Contentful-Signed-Headers", l)
		req.Header.Set("X-Contentful-Timestamp", stamp)
		req.Body = b
		if _, err := v.Verify(&req); err != nil {
			return
		}
		if got, err := contentfulContent(&req); err != nil || got != genuine {
			t.Fatalf("accepted url %q list %q ts %q body %q, which sign %q", u, l, stamp, b, got)
		}
		if !bytes.Equal(b, body) || !strings.HasSuffix(u, "/in?x=1") || strings.Count(u, "?") != 1 {
			t.Fatalf("accepted a changed url %q or body %q", u, b)
		}
		if n, err := strconv.ParseInt(jsTrim(stamp), 10, 64); err != nil || strconv.FormatInt(n, 10) != ts {
			t.Fatalf("accepted a changed timestamp %q", stamp)
		}
		named := map[string]bool{}
		for _, name := range strings.Split(l, ",") {
			if name == "x-extra" || name == "x-contentful-topic" || name == "x-contentful-signature" {
				named[name] = true
			}
		}
		if !named["x-contentful-topic"] || named["x-extra"] || named["x-contentful-signature"] {
			t.Fatalf("accepted list %q, which does not name exactly the signed headers", l)
		}
	})
}

// FuzzJSONDuplicateKey checks the repeated-key detector against a
// reference built from other parsers: encoding/json's decoded maps, whose
// case-folded key sets must be as large as the member count gjson reads
// from the raw object, at every depth.
func FuzzJSONDuplicateKey(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"A":2}`, `{"a":{"b":1},"c":[{"b":1,"B":2}]}`, `{"merchant\u0052eference":1,"merchantReference":2}`,
		`{"k":1,"\u212a":2}`, `{"s":1,"\u017f":2}`, `[1,{"x":[]},{"x":{}}]`, `"s"`, `{}`, `{"a":1}{}`, ``, `{"a":1,}`,
		`{"\ud800":1,"\udbff":2}`, "{\"\xff\":1,\"\xfe\":2}", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	vs, err := vectors.Load()
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range vs {
		if v.Provider == "adyen-notification" || v.Provider == "mailgun" {
			f.Add([]byte(v.Body))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		key, found, err := jsonDuplicateKey(b)
		if err != nil {
			if json.Valid(b) && !strings.Contains(err.Error(), "nested") {
				t.Fatalf("refused valid JSON %q: %v", b, err)
			}
			return
		}
		// Numbers are read as json.Number: one past float64's range
		// (1E700) is valid JSON, and no concern of a key detector.
		var decoded any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&decoded); err != nil || dec.More() {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", b, err)
		}
		want, ok := referenceDuplicate(gjson.ParseBytes(b), decoded)
		if ok && found != want {
			t.Fatalf("%q: detector found %q (%v), reference says repeated=%v", b, key, found, want)
		}
	})
}

// referenceDuplicate reports whether an object under raw, as gjson reads
// it, has more members than encoding/json's decoding of it has
// case-folded keys. ok is false where the two parsers decode a key
// differently (invalid UTF-8, lone surrogates), which leaves no verdict.
func referenceDuplicate(raw gjson.Result, decoded any) (repeated, ok bool) {
	ok = true
	switch d := decoded.(type) {
	case map[string]any:
		folded := map[string]bool{}
		for k := range d {
			folded[strings.ToUpper(strings.ToLower(k))] = true
		}
		members := 0
		raw.ForEach(func(_, _ gjson.Result) bool { members++; return true })
		if members != len(folded) {
			return true, true
		}
		raw.ForEach(func(k, v gjson.Result) bool {
			sub, found := d[k.String()]
			if !found {
				ok = false
				return false
			}
			repeated, ok = referenceDuplicate(v, sub)
			return ok && !repeated
		})
	case []any:
		i := 0
		raw.ForEach(func(_, v gjson.Result) bool {
			if i >= len(d) {
				ok = false
				return false
			}
			repeated, ok = referenceDuplicate(v, d[i])
			i++
			return ok && !repeated
		})
	}
	return repeated, ok
}

// FuzzFormRepeatedFields wraps a genuine Braintree form in fuzzed fields:
// whatever is accepted must leave one bt_payload, the signed one, for
// every reader: Go's first value, PHP's and Rails' last, ASP.NET's
// case-insensitive lookup, PHP's renamed and bracketed names.
func FuzzFormRepeatedFields(f *testing.F) {
	genuine := fuzzGenuine(f, "braintree", fuzzSecret, []byte("bt_payload=cGF5bG9hZA%3D%3D%0A&bt_signature="), nil, "")
	v := fuzzVerifier(f, "braintree")
	for _, s := range [][2]string{
		{"", ""}, {"", "&bt_payload=FORGED"}, {"BT_PAYLOAD=x&", ""}, {"", "&bt.payload=x"}, {"", "&bt+payload=x"},
		{"", "&bt_payload[]=x"}, {"", "&bt_payload[a]=x"}, {"%20bt_payload=x&", ""}, {"", "&bt[payload=x"}, {"", "&other=1"},
		{"", "&bt_payload=cGF5bG9hZA%3D%3D%0A"}, {"", "&bt_signature=x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		body := prefix + string(genuine.Body) + suffix
		if _, err := v.Verify(&Request{Header: http.Header{}, Body: []byte(body), Now: fuzzNow}); err != nil {
			return
		}
		vals, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", body, err)
		}
		for name, values := range vals {
			if readsAs(name, "bt_payload") && (name != "bt_payload" || len(values) != 1 || values[0] != "cGF5bG9hZA==\n") {
				t.Fatalf("accepted %q: a reader may take %q=%q for bt_payload", body, name, values)
			}
		}
	})
}

// readsAs reports whether some framework could read form field name as
// want: case folded, PHP's spaces, dots and brackets.
func readsAs(name, want string) bool {
	php := strings.TrimLeft(name, " ")
	if open := strings.IndexByte(php, '['); open >= 0 {
		if strings.Contains(php[open:], "]") {
			php = php[:open]
		} else {
			php = php[:open] + "_" + php[open+1:]
		}
	}
	php = strings.NewReplacer(" ", "_", ".", "_").Replace(php)
	return strings.EqualFold(name, want) || strings.EqualFold(php, want)
}

// FuzzTwilioSettings fuzzes the signature settings header of a genuine
// SharedKey delivery. The parser must accept exactly the strict grammar,
// and the verifier only a header naming the hash that signed.
func FuzzTwilioSettings(f *testing.F) {
	const u = "https://hooks.example.com/sms?x=1"
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Webhooks-Signature-Settings": {"key=KS1,algorithm=HMAC_SHA256"}}
	r := fuzzGenuine(f, "twilio", fuzzSecret, []byte("A=1&B=2"), hdr, u)
	v := fuzzVerifier(f, "twilio")
	for _, s := range []string{
		"key=KS1,algorithm=HMAC_SHA256", "algorithm=HMAC_SHA256,key=KS1", " key=KS1 ,\talgorithm=HMAC_SHA1", "key=KS1,algorithm=HMAC_SHA512",
		"key=KS1", "key=KS1,key=KS2", "key=,algorithm=HMAC_SHA256", "key=K S,algorithm=HMAC_SHA256", "key=KS1,algorithm=HMAC_SHA256,", "",
		"key=KS1;algorithm=HMAC_SHA256", "KEY=KS1,ALGORITHM=HMAC_SHA256", "key==,algorithm=HMAC_SHA256",
	} {
		f.Add(s)
	}
	grammar := regexp.MustCompile(`^[ \t]*(key=[A-Za-z0-9_-]{1,64}|algorithm=HMAC_SHA(?:1|256))[ \t]*,[ \t]*(key=[A-Za-z0-9_-]{1,64}|algorithm=HMAC_SHA(?:1|256))[ \t]*$`)
	f.Fuzz(func(t *testing.T, settings string) {
		alg, err := parseSignatureSettings(settings)
		m := grammar.FindStringSubmatch(settings)
		strict := m != nil && m[1][0] != m[2][0]
		if (err == nil) != strict {
			t.Fatalf("settings %q: parsed %q, %v; the grammar says %v", settings, alg, err, strict)
		}
		req := *r
		req.Header = r.Header.Clone()
		req.Header.Set("X-Twilio-Webhooks-Signature-Settings", settings)
		if _, err := v.Verify(&req); err == nil && alg != SHA256 {
			t.Fatalf("a SHA-256 signature verified under settings %q", settings)
		}
	})
}

// FuzzAdyenAppReads inserts fuzzed members into a genuine Adyen item, next
// to the fields it signs. Whatever is accepted, a Go app decoding the
// body with encoding/json (last value wins, case-insensitive names) must
// read the signed reference and amount.
func FuzzAdyenAppReads(f *testing.F) {
	const secret = "0011223344556677"
	genuine := fuzzGenuine(f, "adyen", secret, []byte(`{"notificationItems":[`+providertest.AdyenItem("psp_1")+`]}`), nil, "")
	v, err := mustLookup("adyen").NewVerifier(VerifierConfig{Secrets: []string{secret}})
	if err != nil {
		f.Fatal(err)
	}
	at := bytes.Index(genuine.Body, []byte(`,"eventCode"`))
	for _, s := range []string{
		``, `,"merchantReference":"order-X","amount":{"value":99999999}`, `,"MERCHANTREFERENCE":"order-X"`,
		`,"merchant\u0052eference":"order-X"`, `,"amount":{"value":1000,"VALUE":5}`, `,"other":{"merchantReference":"x"}`,
	} {
		f.Add(s)
	}
	type app struct {
		NotificationItems []struct {
			NotificationRequestItem struct {
				MerchantReference string
				Amount            struct{ Value int64 }
			}
		}
	}
	f.Fuzz(func(t *testing.T, extra string) {
		body := slices.Concat(genuine.Body[:at], []byte(extra), genuine.Body[at:])
		if _, err := v.Verify(&Request{Header: http.Header{}, Body: body, Now: fuzzNow}); err != nil {
			return
		}
		var got app
		if err := json.Unmarshal(body, &got); err != nil {
			return
		}
		if len(got.NotificationItems) != 1 {
			t.Fatalf("accepted %q, which a Go app reads as %d items", body, len(got.NotificationItems))
		}
		if it := got.NotificationItems[0].NotificationRequestItem; it.MerchantReference != "r" || it.Amount.Value != 1000 {
			t.Fatalf("accepted %q, which a Go app reads as reference %q amount %d", body, it.MerchantReference, it.Amount.Value)
		}
	})
}
