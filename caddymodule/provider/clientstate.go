package provider

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/tidwall/gjson"
)

// maxNotifications bounds the items read from one batch; Microsoft Graph
// batches far fewer.
const maxNotifications = 1000

// ClientState is the scheme of Microsoft Graph change notifications: no
// signature, but every notification in the batch {"value": [...]} carries
// the clientState the subscription was created with, a secret shared
// with the app. It proves the sender knows that secret, nothing more: no
// byte of the body is authenticated (anyone who saw one delivery can
// send any body with its clientState), so its coverage is BodyNone and
// nothing stops a replay. Rich notifications' validationTokens JWTs,
// which do sign, are not checked.
type ClientState struct {
	// Items is the key, in the body's top object, of the array of
	// notifications.
	Items string
	// Field is the name of the secret in each notification.
	Field string
}

// Describe implements Scheme.
func (s *ClientState) Describe() Description {
	return Description{
		Kind:        "client_state",
		Replay:      ReplayNone,
		Body:        BodyNone,
		Credentials: Credentials{BodyFields: []string{s.Items + ".#." + s.Field}},
	}
}

// NewVerifier implements Scheme.
func (s *ClientState) NewVerifier(cfg VerifierConfig) (Verifier, error) {
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("no client state configured")
	}
	v := &clientStateVerifier{s: s}
	for i, secret := range cfg.Secrets {
		if secret == "" {
			return nil, fmt.Errorf("secret #%d: secret is empty", i+1)
		}
		v.digests = append(v.digests, sha256.Sum256([]byte(secret)))
	}
	return v, nil
}

// Sign implements Scheme: it sets the client state of every notification
// of the body. The body is re-encoded, its keys sorted.
func (s *ClientState) Sign(secret string, m *Message) error {
	if secret == "" {
		return fmt.Errorf("secret is empty")
	}
	var batch map[string]json.RawMessage
	if err := json.Unmarshal(m.Body, &batch); err != nil {
		return fmt.Errorf("client state scheme: body is not a JSON object: %w", err)
	}
	var items []map[string]any
	if err := json.Unmarshal(batch[s.Items], &items); err != nil || len(items) == 0 {
		return fmt.Errorf("client state scheme: body has no %s array of notifications", s.Items)
	}
	for _, item := range items {
		item[s.Field] = secret
	}
	var err error
	if batch[s.Items], err = json.Marshal(items); err != nil {
		return err
	}
	m.Body, err = json.Marshal(batch)
	return err
}

type clientStateVerifier struct {
	s       *ClientState
	digests [][sha256.Size]byte
}

// Verify wants every notification to carry a configured client state: a
// batch that mixed in one without would pass that one off as Graph's.
func (v *clientStateVerifier) Verify(r *Request) (Verified, error) {
	items, err := v.s.items(r.Body)
	if err != nil {
		return Verified{}, err
	}
	first := 0
	for i, item := range items {
		state := item.Get(v.s.Field)
		if state.Type != gjson.String || state.Str == "" {
			return Verified{}, refuse(ReasonMissingSignature, "notification %d has no %s", i, v.s.Field)
		}
		secret, ok := matchDigest(state.Str, v.digests)
		if !ok {
			return Verified{}, refuse(ReasonSignatureMismatch, "the %s of notification %d does not match a configured secret", v.s.Field, i)
		}
		if i == 0 {
			first = secret
		}
	}
	return Verified{Body: BodyNone, Secret: first}, nil
}

// items reads the notifications of a batch, refusing a body that is not
// one JSON object, that holds no notification or too many, or that
// repeats a key anywhere (a parser taking the other copy would see
// another client state or another notification). The count comes
// first and stops at the bound: nobody has authenticated the body yet,
// and reading a megabyte of empty objects whole would cost hundreds of
// megabytes.
func (s *ClientState) items(body []byte) ([]gjson.Result, error) {
	if !gjson.ValidBytes(body) {
		return nil, refuse(ReasonMalformedSignature, "body is not valid JSON")
	}
	list := gjson.GetBytes(body, s.Items)
	if !list.IsArray() {
		return nil, refuse(ReasonMissingSignature, "body has no %s array of notifications", s.Items)
	}
	var items []gjson.Result
	tooMany := false
	list.ForEach(func(_, item gjson.Result) bool {
		tooMany = len(items) == maxNotifications
		if !tooMany {
			items = append(items, item)
		}
		return !tooMany
	})
	switch {
	case tooMany:
		return nil, refuse(ReasonMalformedSignature, "body has more than %d notifications", maxNotifications)
	case len(items) == 0:
		return nil, refuse(ReasonMissingSignature, "body has no notification")
	}
	key, found, err := jsonDuplicateKey(body)
	if err != nil {
		return nil, refuse(ReasonMalformedSignature, "body is not valid JSON")
	}
	if found {
		return nil, refuse(ReasonMalformedSignature, "body repeats key %.64q in one object", key)
	}
	for i, item := range items {
		if !item.IsObject() {
			return nil, refuse(ReasonMalformedSignature, "notification %d is not an object", i)
		}
	}
	return items, nil
}

// Interface guards
var (
	_ Scheme   = (*ClientState)(nil)
	_ Verifier = (*clientStateVerifier)(nil)
)
