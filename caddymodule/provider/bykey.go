package provider

import (
	"errors"
	"strings"
)

// byKeyPrefix lets one provider carry a symmetric and a public-key scheme
// side by side, chosen per secret by its prefix: Standard Webhooks signs
// v1 with whsec_ secrets and v1a with whsk_/whpk_ keys in the same header.
type byKeyPrefix struct {
	Scheme   // secrets without one of the prefixes
	prefixes []string
	alt      Scheme
}

func (s *byKeyPrefix) isAlt(secret string) bool {
	for _, p := range s.prefixes {
		if strings.HasPrefix(secret, p) {
			return true
		}
	}
	return false
}

// Describe implements Scheme.
func (s *byKeyPrefix) Describe() Description {
	d := s.Scheme.Describe()
	d.Kind += " or " + s.alt.Describe().Kind
	return d
}

// NewVerifier implements Scheme.
func (s *byKeyPrefix) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	var mine, alt []string
	for _, secret := range cfg.Secrets {
		if s.isAlt(secret) {
			alt = append(alt, secret)
		} else {
			mine = append(mine, secret)
		}
	}
	var vs anyVerifier
	for _, part := range []struct {
		scheme  Scheme
		secrets []string
	}{{s.Scheme, mine}, {s.alt, alt}} {
		if len(part.secrets) == 0 {
			continue
		}
		c := cfg
		c.Secrets = part.secrets
		v, err := part.scheme.NewVerifier(c)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, errors.New("no secret configured")
	}
	return vs, nil
}

// Sign implements Scheme.
func (s *byKeyPrefix) Sign(secret string, m *Message) error {
	if s.isAlt(secret) {
		return s.alt.Sign(secret, m)
	}
	return s.Scheme.Sign(secret, m)
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
)
