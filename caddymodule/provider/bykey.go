package provider

import (
	"errors"
	"fmt"
	"strings"
)

// byKeyPrefix lets one provider carry a symmetric and a public-key scheme
// side by side, chosen per secret by its prefix: Standard Webhooks signs
// v1 with whsec_ secrets and v1a with whsk_/whpk_ keys in the same header.
type byKeyPrefix struct {
	Scheme   // secrets without one of the prefixes
	prefixes []string
	alt      Scheme
	// mine is the prefix that marks a secret of Scheme (whsec_). A
	// secret with neither prefix that alt also reads as a key is
	// refused: a public key pasted without its prefix would otherwise
	// become an HMAC secret, with which anyone holding the public key
	// could sign.
	mine string
	// altKey reports whether alt would read a secret as a key.
	altKey func(secret string) bool
}

func (s *byKeyPrefix) isAlt(secret string) bool {
	for _, p := range s.prefixes {
		if strings.HasPrefix(secret, p) {
			return true
		}
	}
	return false
}

// ambiguous reports a secret without any prefix that both schemes read.
func (s *byKeyPrefix) ambiguous(secret string) bool {
	return s.altKey != nil && !strings.HasPrefix(secret, s.mine) && !s.isAlt(secret) && s.altKey(secret)
}

// Describe implements Scheme.
func (s *byKeyPrefix) Describe() Description {
	d := s.Scheme.Describe()
	d.Kind += " or " + s.alt.Describe().Kind
	return d
}

// NewVerifier implements Scheme.
func (s *byKeyPrefix) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	var mine, alt part
	mine.scheme, alt.scheme = s.Scheme, s.alt
	for i, secret := range cfg.Secrets {
		p := &mine
		switch {
		case s.ambiguous(secret):
			return nil, fmt.Errorf("secret #%d has neither a %s nor a %s prefix and reads as a public key as well as a shared secret: write %s… for a shared secret, %s… for a public key",
				i+1, s.mine, strings.Join(s.prefixes, " or "), s.mine, s.prefixes[0])
		case s.isAlt(secret):
			p = &alt
		}
		p.secrets = append(p.secrets, secret)
		p.positions = append(p.positions, i)
	}
	var vs anyVerifier
	for _, p := range []*part{&mine, &alt} {
		if len(p.secrets) == 0 {
			continue
		}
		c := cfg
		c.Secrets = p.secrets
		v, err := p.scheme.NewVerifier(c)
		if err != nil {
			return nil, err
		}
		vs = append(vs, positioned{Verifier: v, positions: p.positions})
	}
	if len(vs) == 0 {
		return nil, errors.New("no secret configured")
	}
	return vs, nil
}

// part is the share of a route's secrets that one scheme verifies with.
type part struct {
	scheme    Scheme
	secrets   []string
	positions []int // each secret's position in the route's list
}

// Schemes are the schemes a secret's prefix chooses between, the
// prefixless one first: tests make key material for each.
func (s *byKeyPrefix) Schemes() []Scheme { return []Scheme{s.Scheme, s.alt} }

// Sign implements Scheme.
func (s *byKeyPrefix) Sign(secret string, m *Message) error {
	if s.isAlt(secret) {
		return s.alt.Sign(secret, m)
	}
	return s.Scheme.Sign(secret, m)
}

// positioned is a verifier over some of a route's secrets; it reports
// Verified.Secret as a position in the route's whole list.
type positioned struct {
	Verifier
	positions []int
}

func (p positioned) Verify(r *Request) (Verified, error) {
	out, err := p.Verifier.Verify(r)
	if err == nil {
		out.Secret = p.positions[out.Secret]
	}
	return out, err
}

// anyVerifier accepts what any of its verifiers accepts; the first
// refusal is the one reported.
type anyVerifier []Verifier

func (vs anyVerifier) Verify(r *Request) (Verified, error) {
	var first error
	for _, v := range vs {
		out, err := v.Verify(r)
		if err == nil {
			return out, nil
		}
		if first == nil {
			first = err
		}
	}
	return Verified{}, first
}

// Interface guards
var (
	_ Scheme   = (*byKeyPrefix)(nil)
	_ Verifier = anyVerifier(nil)
	_ Verifier = positioned{}
)
