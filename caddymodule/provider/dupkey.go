package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"unicode"
)

// maxJSONDepth bounds the nesting of a body whose keys are checked; the
// in-body signature schemes send a few levels.
const maxJSONDepth = 64

// A scheme that signs only some fields of a body is safe only if the
// gateway and the app read the same value for each of them. Parsers
// disagree about a repeated key: gjson and Go's url.Values.Get take the
// first, JavaScript, PHP, Rails and Go's encoding/json the last, and
// encoding/json and ASP.NET also match a key that differs only in case.
// A body with such a repeat is refused outright, so no parser can pick a
// value the signature did not cover.

// jsonDuplicateKey returns a key that appears twice in one object of a
// JSON document, at any depth, after decoding its escapes and folding
// its case as encoding/json matches field names, and whether there is
// one (the empty key can be repeated too). It returns an error for a
// document that is not one valid JSON value or nests deeper than
// maxJSONDepth.
func jsonDuplicateKey(body []byte) (key string, found bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	// One set of folded keys per open container; nil for an array.
	var open []map[string]bool
	expectKey, empty := false, true
	// The whole document is read even after a repeat, so that the
	// answer for one that is not JSON is always the error.
	for {
		tok, err := dec.Token()
		if err == io.EOF && (empty || len(open) > 0) {
			return "", false, io.ErrUnexpectedEOF
		}
		if err == io.EOF {
			return key, found, nil
		}
		if err != nil {
			return "", false, err
		}
		empty = false
		switch {
		case expectKey && tok != json.Delim('}'):
			name, ok := tok.(string)
			if !ok {
				return "", false, errors.New("object key is not a string")
			}
			folded := foldJSONKey(name)
			if open[len(open)-1][folded] && !found {
				key, found = name, true
			}
			open[len(open)-1][folded] = true
			expectKey = false
			continue
		case tok == json.Delim('{') || tok == json.Delim('['):
			if len(open) == maxJSONDepth {
				return "", false, errors.New("too deeply nested")
			}
			var keys map[string]bool
			if tok == json.Delim('{') {
				keys = map[string]bool{}
			}
			open = append(open, keys)
		case tok == json.Delim('}') || tok == json.Delim(']'):
			open = open[:len(open)-1]
		}
		// After a value, or on opening an object, an enclosing object
		// expects its next key.
		expectKey = len(open) > 0 && open[len(open)-1] != nil
		if len(open) == 0 && dec.More() {
			return "", false, errors.New("more than one value")
		}
	}
}

// foldJSONKey folds a key as encoding/json does when it matches a field
// name: each rune lowered then uppered, so that "K", "k" and the Kelvin
// sign, or "S" and the long s, are one key.
func foldJSONKey(key string) string {
	return strings.Map(func(r rune) rune { return unicode.ToUpper(unicode.ToLower(r)) }, key)
}

// formDuplicateKey returns a field name of a urlencoded form that is
// repeated, or that another field's name matches once read as common
// frameworks read names: case folded (ASP.NET), leading spaces dropped,
// spaces and dots made underscores and an unclosed bracket too (PHP),
// and everything from a closed bracket on dropped, which PHP and Rails
// turn into an array or a hash under the same name. It reports whether
// there is one, since the empty name can be repeated too.
func formDuplicateKey(vals url.Values) (string, bool) {
	seen := make(map[string]bool, len(vals))
	for name, v := range vals {
		k := formKey(name)
		if len(v) > 1 || seen[k] {
			return name, true
		}
		seen[k] = true
	}
	return "", false
}

func formKey(name string) string {
	name = strings.TrimLeft(name, " ")
	if i := strings.IndexByte(name, '['); i >= 0 {
		if strings.IndexByte(name[i:], ']') >= 0 {
			name = name[:i]
		} else {
			name = name[:i] + "_" + name[i+1:]
		}
	}
	name = strings.Map(func(r rune) rune {
		if r == ' ' || r == '.' {
			return '_'
		}
		return r
	}, name)
	return foldJSONKey(name)
}
