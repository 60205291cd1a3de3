package provider

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/tidwall/gjson"
)

// Provider is a named webhook sender: a scheme plus the defaults that
// make it work out of the box.
type Provider struct {
	// Name is the config name: lowercase snake_case, as ngrok spells it
	// where ngrok has one.
	Name string
	// Aliases are other names users know the provider by.
	Aliases []string
	Scheme  Scheme
	// Tolerance is the provider's documented bound on timestamp skew;
	// zero where it documents none (DefaultTolerance then applies to a
	// scheme that signs a time) or signs no time.
	Tolerance time.Duration
	// EventID and EventType say where the event's id (the deduplication
	// key) and type are found; the first non-empty source wins.
	EventID   []Field
	EventType []Field
	// RefusalStatus is the status for a failed verification when the
	// provider requires a particular one. Zero means 401.
	RefusalStatus int
	// Handshake answers the provider's endpoint challenges; nil for
	// providers without one.
	Handshake Handshake
	// Docs points at the provider's own description of its signatures.
	Docs string
	// AnswerMatters, where set, says why the provider acts on the body
	// of the answer (a reply shown to a user, instructions for a call):
	// such a delivery cannot be queued and answered on the app's behalf.
	AnswerMatters string
	// Secretless says the provider needs no configured secret: its
	// signatures are checked with keys fetched at run time (AWS SNS,
	// Google Pub/Sub push).
	Secretless bool
	// Options names the route options of VerifierConfig's key-fetch
	// group that the provider reads ("topics", "audience",
	// "service_account", "client_id", "keys_url"); a route that sets one
	// its provider does not read is refused at config time.
	Options []string
}

// DefaultTolerance is the largest skew, when the config sets none,
// between a signed time and now: the provider's documented value, else
// DefaultTolerance for any scheme whose signature covers a time, so that
// no signed time goes unchecked unless a route says `tolerance off`.
func (p *Provider) DefaultTolerance() time.Duration {
	if p.Tolerance != 0 {
		return p.Tolerance
	}
	switch p.Scheme.Describe().Replay {
	case ReplayTimestamp, ReplayTimestampAndID:
		return DefaultTolerance
	}
	return 0
}

// DefaultTolerance bounds a signed time where the provider documents no
// bound of its own.
const DefaultTolerance = 5 * time.Minute

// NewVerifier builds a verifier with the provider's default tolerance
// unless cfg overrides it; a negative cfg.Tolerance disables the check.
func (p *Provider) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	switch {
	case cfg.Tolerance == 0:
		cfg.Tolerance = p.DefaultTolerance()
	case cfg.Tolerance < 0:
		cfg.Tolerance = 0
	}
	if len(cfg.Secrets) == 0 && p.SecretByHandshake() {
		return awaitingSecret{header: p.Handshake.(HeaderChallenge).Header}, nil
	}
	v, err := p.Scheme.NewVerifier(cfg)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	if o, ok := p.Handshake.(oracle); ok {
		v = o.guard(v)
	}
	return v, nil
}

// Field is one place an event property can be read from.
type Field struct {
	// Header names a request header.
	Header string `json:"header,omitempty"`
	// JSON is a path into a JSON body (gjson syntax, e.g. "data.id").
	JSON string `json:"json,omitempty"`
}

// Extract returns the first non-empty value among fields.
func Extract(fields []Field, h http.Header, body []byte) string {
	for _, f := range fields {
		if v := f.read(h, body); v != "" {
			return v
		}
	}
	return ""
}

// read returns the field's value, empty when absent.
func (f Field) read(h http.Header, body []byte) string {
	if f.Header != "" {
		if v := h.Get(f.Header); v != "" {
			return v
		}
	}
	if f.JSON != "" {
		if v := gjson.GetBytes(body, f.JSON); v.Exists() && v.Type != gjson.JSON && v.Type != gjson.Null {
			return v.String()
		}
	}
	return ""
}

// covered says whether the signature covers where the field's value was
// found: a header it signed, or a path into a body it signed whole.
func (f Field) covered(h http.Header, v Verified) bool {
	if f.Header != "" && h.Get(f.Header) != "" {
		return slices.Contains(v.Headers, http.CanonicalHeaderKey(f.Header))
	}
	return f.JSON != "" && v.Body == BodyWhole
}

// Identify returns the event id and whether the signature covers it: the
// id the scheme signed, else the value of Read.
func Identify(fields []Field, r *Request, v Verified) (id string, signed bool) {
	if v.ID != "" {
		return v.ID, true
	}
	return Read(fields, r, v)
}

// Read returns the first value among fields that the signature covers,
// else the first found that it does not, and whether it is covered. An
// uncovered value is fine for a log line, never for a deduplication key
// or a header the app trusts: whoever replays a captured delivery can
// vary it.
func Read(fields []Field, r *Request, v Verified) (value string, signed bool) {
	for _, f := range fields {
		val := f.read(r.Header, r.Body)
		if val == "" {
			continue
		}
		if f.covered(r.Header, v) {
			return val, true
		}
		if value == "" {
			value = val
		}
	}
	return value, false
}

var registry = map[string]*Provider{}

// Register adds a provider under its name and aliases. It panics on a
// duplicate, which is a programming error caught by any test run.
func Register(p *Provider) {
	for _, name := range append([]string{p.Name}, p.Aliases...) {
		if _, dup := registry[name]; dup {
			panic("provider: duplicate name " + name)
		}
		registry[name] = p
	}
}

// Lookup finds a provider by name or alias.
func Lookup(name string) (*Provider, bool) {
	p, ok := registry[name]
	return p, ok
}

// All returns every provider once, sorted by name.
func All() []*Provider {
	var out []*Provider
	for name, p := range registry {
		if name == p.Name {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns every accepted name, aliases included, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
