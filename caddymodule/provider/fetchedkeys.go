package provider

import (
	"bytes"
	"errors"
	"sync"
)

// keyRefusal turns a KeySource's error into a refusal: one the KeySource
// gave as a refusal (key_url_not_allowed, key_unavailable) stays as it
// is, anything else is key_unavailable, which asks the provider to retry.
func keyRefusal(err error) *Error {
	var perr *Error
	if errors.As(err, &perr) {
		return perr
	}
	return refuse(ReasonKeyUnavailable, "the signing key could not be fetched")
}

// maxParsedDocs bounds the parsed documents a verifier keeps.
const maxParsedDocs = 16

// parsedDocs keeps what was parsed from the last documents a KeySource
// returned, by name (a kid, a URL), so that a cached document is parsed
// once rather than on every delivery. A document whose bytes changed
// (the KeySource fetched it again) is parsed again.
type parsedDocs[T any] struct {
	parse func([]byte) (T, error)
	mu    sync.Mutex
	docs  map[string]parsedDoc[T]
}

type parsedDoc[T any] struct {
	raw []byte
	val T
}

func newParsedDocs[T any](parse func([]byte) (T, error)) *parsedDocs[T] {
	return &parsedDocs[T]{parse: parse, docs: map[string]parsedDoc[T]{}}
}

// get returns doc parsed. KeyDocument.Body is shared and never changed,
// so keeping it to compare is safe.
func (c *parsedDocs[T]) get(name string, body []byte) (T, error) {
	c.mu.Lock()
	p, ok := c.docs[name]
	c.mu.Unlock()
	if ok && bytes.Equal(p.raw, body) {
		return p.val, nil
	}
	val, err := c.parse(body)
	if err != nil {
		return val, err
	}
	c.mu.Lock()
	if len(c.docs) >= maxParsedDocs {
		clear(c.docs)
	}
	c.docs[name] = parsedDoc[T]{raw: body, val: val}
	c.mu.Unlock()
	return val, nil
}
