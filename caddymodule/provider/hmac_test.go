package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCustomHMACEncodings: a generic `scheme hmac` verifies every hash in
// every written form a provider may use, padded base64 of SHA-512
// (whose padding once counted as two bytes too many) included.
func TestCustomHMACEncodings(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	forms := []struct {
		name     string
		encoding Encoding
		write    func([]byte) string
	}{
		{"hex", Hex, hex.EncodeToString},
		{"hex upper", Hex, func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }},
		{"base64 padded", Base64, base64.StdEncoding.EncodeToString},
		{"base64 unpadded", Base64, base64.RawStdEncoding.EncodeToString},
	}
	for _, alg := range []Algorithm{SHA1, SHA256, SHA512} {
		for _, f := range forms {
			t.Run(string(alg)+"/"+f.name, func(t *testing.T) {
				s := &HMAC{Header: []string{"X-Sig"}, Algorithm: alg, Encoding: f.encoding}
				newHash, _ := alg.new()
				mac := hmac.New(newHash, []byte("s3cret"))
				mac.Write(body)
				sig := f.write(mac.Sum(nil))
				v, err := s.NewVerifier(VerifierConfig{Secrets: []string{"s3cret"}})
				if err != nil {
					t.Fatal(err)
				}
				r := &Request{Method: "POST", Header: http.Header{"X-Sig": {sig}}, Body: body, Now: testNow}
				if _, err := v.Verify(r); err != nil {
					t.Fatalf("genuine %s refused: %v", sig, err)
				}
				if f.encoding != Base64 {
					return
				}
				// Wrong padding is not a signature.
				for _, bad := range []string{strings.TrimRight(sig, "=") + "===", sig + "===="} {
					r.Header.Set("X-Sig", bad)
					if _, err := v.Verify(r); err == nil {
						t.Fatalf("badly padded %q verified", bad)
					}
				}
			})
		}
	}
}

// TestTimestampFirstList: a keyless "<ts>,<sig>[,<sig>]" list (Recurly's
// layout) verifies when any signature matches and refuses, with its own
// reason, each way the list can be wrong.
func TestTimestampFirstList(t *testing.T) {
	s := &HMAC{Header: []string{"X-Sig"}, TimestampFirst: true, TimestampFormat: TimestampUnixMilli, Content: "{timestamp}.{body}"}
	body := []byte(`{"id":"evt_1"}`)
	ts := strconv.FormatInt(testNow.UnixMilli(), 10)
	sig := func(key, ts string) string {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(ts + "." + string(body)))
		return hex.EncodeToString(mac.Sum(nil))
	}
	good := sig("s3cret", ts)
	v, err := s.NewVerifier(VerifierConfig{Secrets: []string{"s3cret"}, Tolerance: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		header string
		want   Reason
	}{
		{"one signature", ts + "," + good, ""},
		{"matching signature second", ts + "," + sig("old", ts) + "," + good, ""},
		{"short junk before the match", ts + ",de1ec7ab1e," + good, ""},
		{"spaces around elements", ts + ", " + good + " ", ""},
		{"other key only", ts + "," + sig("old", ts), ReasonSignatureMismatch},
		{"timestamp changed", strconv.FormatInt(testNow.UnixMilli()+1, 10) + "," + good, ReasonSignatureMismatch},
		{"signature where the timestamp belongs", good + "," + ts, ReasonMalformedTimestamp},
		{"no signature", ts + ",", ReasonMalformedSignature},
		{"timestamp alone", ts, ReasonMalformedSignature},
		{"no timestamp", "," + good, ReasonMissingTimestamp},
		{"keyed pairs", "t=" + ts + ",v1=" + good, ReasonMalformedTimestamp},
		{"stale", strconv.FormatInt(testNow.Add(-6*time.Minute).UnixMilli(), 10) + "," + good, ReasonTimestampTooOld},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(&Request{Method: "POST", Header: http.Header{"X-Sig": {c.header}}, Body: body, Now: testNow})
			checkReason(t, err, c.want)
		})
	}
	t.Run("sign writes the list", func(t *testing.T) {
		m := &Message{Timestamp: testNow, Body: body}
		if err := s.Sign("s3cret", m); err != nil {
			t.Fatal(err)
		}
		if got, want := m.Header.Get("X-Sig"), ts+","+good; got != want {
			t.Fatalf("signed %q, want %q", got, want)
		}
	})
	for _, bad := range []*HMAC{
		{Header: []string{"X-Sig"}, TimestampFirst: true, SignatureKey: "v1", Content: "{timestamp}.{body}"},
		{Header: []string{"X-Sig"}, TimestampFirst: true, TimestampHeader: []string{"X-Ts"}, Content: "{timestamp}.{body}"},
		{Header: []string{"X-Sig"}, TimestampFirst: true, TimestampJSON: "ts"},
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "timestamp_first") {
			t.Errorf("%+v: want an error naming timestamp_first, got %v", bad, err)
		}
	}
}

// TestPrefixOptional: with prefix_optional the signature verifies with or
// without its prefix, and nothing else about the header is loosened.
func TestPrefixOptional(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(body)
	sig := hex.EncodeToString(mac.Sum(nil))
	optional := &HMAC{Header: []string{"X-Sig"}, Prefix: "sha256=", PrefixOptional: true}
	required := &HMAC{Header: []string{"X-Sig"}, Prefix: "sha256="}
	for _, c := range []struct {
		name   string
		scheme *HMAC
		header string
		want   Reason
	}{
		{"optional, with prefix", optional, "sha256=" + sig, ""},
		{"optional, bare", optional, sig, ""},
		{"optional, other prefix", optional, "sha1=" + sig, ReasonMalformedSignature},
		{"optional, prefix twice", optional, "sha256=sha256=" + sig, ReasonMalformedSignature},
		{"required, bare", required, sig, ReasonMalformedSignature},
		{"required, with prefix", required, "sha256=" + sig, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := c.scheme.NewVerifier(VerifierConfig{Secrets: []string{"s3cret"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(&Request{Method: "POST", Header: http.Header{"X-Sig": {c.header}}, Body: body, Now: testNow})
			checkReason(t, err, c.want)
		})
	}
	if err := (&HMAC{Header: []string{"X-Sig"}, PrefixOptional: true}).Validate(); err == nil || !strings.Contains(err.Error(), "prefix_optional") {
		t.Fatalf("prefix_optional without prefix: want an error naming it, got %v", err)
	}
}

// checkReason fails t unless err is nil when want is empty, or a refusal
// for want otherwise.
func checkReason(t *testing.T, err error, want Reason) {
	t.Helper()
	var perr *Error
	switch {
	case want == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case want != "" && (!errors.As(err, &perr) || perr.Reason != want):
		t.Fatalf("got %v, want %s", err, want)
	}
}
