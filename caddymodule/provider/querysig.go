package provider

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// QuerySignature is an HMAC whose signature travels in a query parameter
// of the public URL instead of a header (PandaDoc's ?signature=). The
// parameter is a signature, not a secret: it is forwarded, for an app
// that verifies too, and redacted where the gateway shows a URL.
type QuerySignature struct {
	// Param names the query parameter holding the signature. Required.
	Param string `json:"param"`

	// Layout describes the signature and the signed content with the
	// fields of the HMAC scheme; its header is not used, the parameter
	// standing in for it.
	Layout HMAC `json:"layout"`
}

// querySignatureHeader is where the parameter's value is handed to the
// HMAC scheme, in a copy of the request's headers from which any header
// of that name the client sent is removed first.
const querySignatureHeader = "Webhook-Gateway-Query-Signature"

// hmac is the layout reading the signature from the stand-in header.
func (s *QuerySignature) hmac() (*HMAC, error) {
	if s.Param == "" {
		return nil, fmt.Errorf("query signature scheme: param is required")
	}
	h := s.Layout
	h.Header = []string{querySignatureHeader}
	h.EveryHeader, h.Numbered = false, false
	return &h, nil
}

// Describe implements Scheme.
func (s *QuerySignature) Describe() Description {
	h, err := s.hmac()
	if err != nil {
		return Description{Kind: "hmac/query", Replay: ReplayNone}
	}
	d := h.Describe()
	d.Kind += "/query:" + s.Param
	d.Headers = slices.DeleteFunc(d.Headers, func(name string) bool { return name == querySignatureHeader })
	d.Credentials.SignatureHeaders = nil
	d.Credentials.SignatureQuery = []string{s.Param}
	return d
}

// NewVerifier implements Scheme.
func (s *QuerySignature) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	h, err := s.hmac()
	if err != nil {
		return nil, err
	}
	inner, err := h.NewVerifier(cfg)
	if err != nil {
		return nil, err
	}
	return &querySignatureVerifier{param: s.Param, inner: inner}, nil
}

// Sign implements Scheme: the signature goes into m.URL's query.
func (s *QuerySignature) Sign(secret string, m *Message) error {
	h, err := s.hmac()
	if err != nil {
		return err
	}
	u, err := url.Parse(m.URL)
	if err != nil {
		return fmt.Errorf("query signature scheme: url: %w", err)
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if err := h.Sign(secret, m); err != nil {
		return err
	}
	q := u.Query()
	q.Set(s.Param, m.Header.Get(querySignatureHeader))
	m.Header.Del(querySignatureHeader)
	u.RawQuery = q.Encode()
	m.URL = u.String()
	return nil
}

type querySignatureVerifier struct {
	param string
	inner Verifier
}

// Verify hands the parameter to the HMAC verifier as its header. A
// parameter given twice is refused: which one an app would read is
// anyone's guess.
func (v *querySignatureVerifier) Verify(r *Request) (Verified, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return Verified{}, refuse(ReasonMissingSignature, "query parameter %s is missing", v.param)
	}
	values := u.Query()[v.param]
	switch {
	case len(values) == 0 || values[0] == "":
		return Verified{}, refuse(ReasonMissingSignature, "query parameter %s is missing", v.param)
	case len(values) > 1:
		return Verified{}, refuse(ReasonMalformedSignature, "query parameter %s is repeated", v.param)
	}
	in := *r
	in.Header = r.Header.Clone()
	if in.Header == nil {
		in.Header = http.Header{}
	}
	in.Header[querySignatureHeader] = values
	verified, err := v.inner.Verify(&in)
	return verified, renamed(err, querySignatureHeader, "query parameter "+v.param)
}

// renamed makes a refusal about the stand-in header name the parameter.
func renamed(err error, from, to string) error {
	var perr *Error
	if !errors.As(err, &perr) {
		return err
	}
	return refuse(perr.Reason, "%s", strings.ReplaceAll(perr.Detail, "header "+from, to))
}

// Interface guards
var (
	_ Scheme   = (*QuerySignature)(nil)
	_ Verifier = (*querySignatureVerifier)(nil)
)
