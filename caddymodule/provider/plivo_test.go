package provider

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

// plivoVectorParams are the POST parameters of plivo-dotnet's V3
// signature tests (Plivo.Test TestSignature, TestSignatureV3Pass1/3).
var plivoVectorParams = url.Values{
	"Direction":       {"outbound"},
	"From":            {"19792014278"},
	"ALegUUID":        {"3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"},
	"SessionStart":    {"2020-04-08 11:34:33.238707"},
	"BillRate":        {"0.002"},
	"ParentAuthID":    {"MANWVLYTK4ZWU1YTY4QA"},
	"To":              {"sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com"},
	"RequestUUID":     {"3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"},
	"ALegRequestUUID": {"3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"},
	"CallUUID":        {"3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"},
	"SIP-H-To":        {"<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1"},
	"CallStatus":      {"in-progress"},
	"Event":           {"StartApp"},
}

// TestPlivoVectors checks Plivo's own V3 vectors (the POST ones of
// plivo-dotnet's tests; the gateway takes no GET deliveries) and the
// edges where the SDKs part.
func TestPlivoVectors(t *testing.T) {
	const (
		token = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4"
		nonce = "31627761595286130198"
	)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	cases := []struct {
		name, url, sig, body string
		want                 Reason
	}{
		{name: "pass1: query and form", url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d",
			sig: "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=", body: plivoVectorParams.Encode()},
		{name: "pass3: form only", url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml",
			sig: "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=", body: plivoVectorParams.Encode()},
		{name: "pass3 among others", url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml",
			sig: "bm90IGEgc2lnbmF0dXJlIG9mIDMyIGJ5dGVzIGF0IGFsbA==,iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=", body: plivoVectorParams.Encode()},
		{name: "pass3 with a parameter changed", url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml",
			sig: "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=", body: plivoVectorParams.Encode() + "&Extra=1", want: ReasonSignatureMismatch},
		{name: "pass3 at another URL", url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature04.xml",
			sig: "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=", body: plivoVectorParams.Encode(), want: ReasonSignatureMismatch},
		{name: "pass3 with a repeated parameter", url: "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml",
			sig: "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=", body: plivoVectorParams.Encode() + "&From=1", want: ReasonMalformedSignature},
	}
	v, err := mustLookup("plivo").NewVerifier(VerifierConfig{Secrets: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := form.Clone()
			h.Set("X-Plivo-Signature-V3", c.sig)
			h.Set("X-Plivo-Signature-V3-Nonce", nonce)
			got, err := v.Verify(&Request{Method: "POST", URL: c.url, Header: h, Body: []byte(c.body)})
			if c.want == "" {
				if err != nil {
					t.Fatalf("Plivo's vector refused: %v", err)
				}
				if got.Body != BodyParts {
					t.Fatalf("coverage %v, want the form's fields", got.Body)
				}
				return
			}
			var perr *Error
			if !errors.As(err, &perr) || perr.Reason != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
}

// TestPlivoQueryWithoutParameters: for a URL with a query and a POST
// without parameters plivo-go signs the query followed by "." and
// plivo-python without it; both are accepted, and nothing else.
func TestPlivoQueryWithoutParameters(t *testing.T) {
	const u = "https://hooks.example.com/plivo?b=2&a=1"
	v, _ := mustLookup("plivo").NewVerifier(VerifierConfig{Secrets: []string{"auth-token"}})
	for _, c := range []struct {
		name, content string
		ok            bool
	}{
		{"plivo-python", "https://hooks.example.com/plivo?a=1&b=2.n1", true},
		{"plivo-go", "https://hooks.example.com/plivo?a=1&b=2..n1", true},
		{"unsorted", "https://hooks.example.com/plivo?b=2&a=1.n1", false},
		{"no query", "https://hooks.example.com/plivo.n1", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"X-Plivo-Signature-V3": {crcAnswer("auth-token", c.content)}, "X-Plivo-Signature-V3-Nonce": {"n1"}}
			_, err := v.Verify(&Request{Method: "POST", URL: u, Header: h})
			if (err == nil) != c.ok {
				t.Fatalf("verify: %v, want ok=%v", err, c.ok)
			}
		})
	}
}
