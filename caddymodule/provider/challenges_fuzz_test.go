package provider

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// FuzzClientState feeds hostile bodies to Microsoft Graph's notification
// reader: an accepted body must, read by encoding/json as an app would
// (last copy of a key wins, names matched in any case), hold at least
// one notification and only notifications with the configured state.
func FuzzClientState(f *testing.F) {
	for _, seed := range []string{
		`{"value":[{"clientState":"fuzz-secret","changeType":"created"}]}`,
		`{"value":[{"clientState":"fuzz-secret"},{"clientState":"fuzz-secret","lifecycleEvent":"missed"}]}`,
		`{"value":[{"clientState":"x","clientState":"fuzz-secret"}]}`,
		`{"value":[{"clientState":"fuzz-secret","ClientState":"x"}]}`,
		`{"Value":[{"clientState":"x"}],"value":[{"clientState":"fuzz-secret"}]}`,
		`{"value":[{"clientState":"fuzz-secret"}]}{"value":[]}`,
		`{"value":[{"clientState":"fuzz\u002dsecret"}]}`,
	} {
		f.Add([]byte(seed))
	}
	v := fuzzVerifier(f, "microsoft_graph")
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := v.Verify(&Request{Method: "POST", Header: http.Header{}, Body: body, Now: fuzzNow}); err != nil {
			return
		}
		var batch struct {
			Value []struct {
				ClientState *string `json:"clientState"`
			} `json:"value"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		if len(batch.Value) == 0 {
			t.Fatal("accepted a batch without notifications")
		}
		for i, n := range batch.Value {
			if n.ClientState == nil || *n.ClientState != fuzzSecret {
				t.Fatalf("accepted notification %d whose client state an app reads as %v", i, n.ClientState)
			}
		}
	})
}

// FuzzCRCToken feeds hostile queries to X's CRC: an answered challenge
// must be for a short token that cannot be a JSON object, its answer the
// HMAC of exactly that token, and that answer must not verify the token
// posted as a delivery.
func FuzzCRCToken(f *testing.F) {
	for _, seed := range []string{
		"crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553",
		"crc_token=NDQ3MjM0NzAtZmY0OS00ODE1LWFlYjAtMWJhYWZkOTdhMmY5",
		"crc_token=%7B%22a%22%3A1%7D",
		"crc_token=a+b",
		"crc_token=a%2Bb%2F%3D",
		"crc_token=a&crc_token=b",
		"crc_token=%zz",
		"x=1&crc_token=" + strings.Repeat("A", 129),
	} {
		f.Add(seed)
	}
	// A limit of its own, wide enough that pacing never hides an answer.
	h := &CRC{Param: "crc_token", Shape: crcToken, Limit: store.Limit{Count: 1_000_000, Period: time.Second}}
	cfg := HandshakeConfig{Secrets: []string{fuzzSecret}}
	v := fuzzVerifier(f, "twitter")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &Request{Method: "GET", URL: "https://hooks.example.com/in?" + rawQuery, Now: fuzzNow}
		ans, ok := h.BeforeVerify(r, cfg)
		if !ok || ans.Status != http.StatusOK {
			return
		}
		tokens := query(r.URL)["crc_token"]
		if len(tokens) != 1 {
			t.Fatalf("answered a query with %d crc_tokens", len(tokens))
		}
		token := tokens[0]
		if token == "" || len(token) > 128 || strings.ContainsAny(token, "{}[]\" \t\r\n") {
			t.Fatalf("answered crc_token %q", token)
		}
		answer := gjson.GetBytes(ans.Body, "response_token").String()
		if want := "sha256=" + crcAnswer(fuzzSecret, token); answer != want {
			t.Fatalf("response_token %s, want %s", answer, want)
		}
		delivery := &Request{Method: "POST", URL: "https://hooks.example.com/in", Header: http.Header{"X-Twitter-Webhooks-Signature": {answer}}, Body: []byte(token), Now: fuzzNow}
		if _, err := v.Verify(delivery); err == nil {
			t.Fatalf("the answer to crc_token %q verified as a delivery of that body", token)
		}
	})
}

// FuzzPlivo feeds hostile URLs, bodies and signature lists to Plivo's
// verifier, keyed with the secret that signed one genuine delivery: an
// accepted request must carry that delivery's query and parameters.
func FuzzPlivo(f *testing.F) {
	const genuineURL = "https://hooks.example.com/plivo?b=2&a=1"
	genuineBody := "CallUUID=evt_1&From=%2B14158675309&To=%2B14158675310"
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	good := fuzzGenuine(f, "plivo", fuzzSecret, []byte(genuineBody), hdr, genuineURL)
	sig := good.Header.Get("X-Plivo-Signature-V3")
	f.Add(genuineURL, genuineBody, sig)
	f.Add(genuineURL, genuineBody+"&From=1", sig)
	f.Add(genuineURL+"&a=1", genuineBody, sig)
	f.Add("https://hooks.example.com/plivo?a=1&b=2", "To=%2B14158675310&CallUUID=evt_1&From=%2B14158675309", "x,"+sig)
	f.Add(genuineURL, "CallUUID=evt_1&From=+14158675309&To=%2B14158675310", sig+",")
	v := fuzzVerifier(f, "plivo")
	want := func(rawURL, body string) string {
		u, _ := url.Parse(rawURL)
		form, _ := url.ParseQuery(body)
		return u.Scheme + "://" + u.Host + u.EscapedPath() + "?" + u.Query().Encode() + "|" + form.Encode()
	}
	genuine := want(genuineURL, genuineBody)
	f.Fuzz(func(t *testing.T, rawURL, body, sigs string) {
		h := good.Header.Clone()
		h.Set("X-Plivo-Signature-V3", sigs)
		if _, err := v.Verify(&Request{Method: "POST", URL: rawURL, Header: h, Body: []byte(body), Now: fuzzNow}); err != nil {
			return
		}
		if got := want(rawURL, body); got != genuine {
			t.Fatalf("accepted %s, signed was %s", got, genuine)
		}
	})
}
