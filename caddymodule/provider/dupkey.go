package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
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
//
// It runs on bodies nobody has authenticated yet, so it walks the bytes
// itself once encoding/json has found them valid: reading them with
// encoding/json's Decoder.Token would box every number and string, some
// fifty times the body's size in garbage. Only keys are decoded, with
// encoding/json itself where they hold escapes or invalid UTF-8.
func jsonDuplicateKey(body []byte) (key string, found bool, err error) {
	if !json.Valid(body) {
		return "", false, errors.New("not one valid JSON value")
	}
	w := jsonWalker{b: body}
	return w.value(0)
}

// jsonWalker reads a document that json.Valid accepted.
type jsonWalker struct {
	b []byte
	i int
}

// value reads the value at w.i, open containers deep, and reports the
// first repeated key in it.
func (w *jsonWalker) value(open int) (key string, found bool, err error) {
	w.space()
	switch w.b[w.i] {
	case '{', '[':
		if open == maxJSONDepth {
			return "", false, errors.New("too deeply nested")
		}
		return w.container(open + 1)
	case '"':
		w.str()
	default:
		// A number, true, false or null: up to the next delimiter.
		for w.i < len(w.b) && !isJSONDelimiter(w.b[w.i]) {
			w.i++
		}
	}
	return "", false, nil
}

// container reads the object or array at w.i.
func (w *jsonWalker) container(open int) (key string, found bool, err error) {
	object := w.b[w.i] == '{'
	w.i++
	var seen map[string]bool
	for {
		w.space()
		if c := w.b[w.i]; c == '}' || c == ']' {
			w.i++
			return key, found, nil
		}
		if object {
			name := decodeJSONKey(w.str())
			folded := foldJSONKey(name)
			if seen == nil {
				seen = map[string]bool{}
			}
			if seen[folded] && !found {
				key, found = name, true
			}
			seen[folded] = true
			w.space()
			w.i++ // the colon
		}
		k, f, err := w.value(open)
		if err != nil {
			return "", false, err
		}
		if f && !found {
			key, found = k, true
		}
		w.space()
		if w.b[w.i] == ',' {
			w.i++
		}
	}
}

// str reads the string at w.i and returns it with its quotes.
func (w *jsonWalker) str() []byte {
	start := w.i
	for w.i++; w.b[w.i] != '"'; w.i++ {
		if w.b[w.i] == '\\' {
			w.i++
		}
	}
	w.i++
	return w.b[start:w.i]
}

func (w *jsonWalker) space() {
	for w.i < len(w.b) && isJSONSpace(w.b[w.i]) {
		w.i++
	}
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isJSONDelimiter reports whether c ends a number or a literal.
func isJSONDelimiter(c byte) bool { return c == ',' || c == ']' || c == '}' || isJSONSpace(c) }

// decodeJSONKey decodes a quoted key as encoding/json does: directly when
// it holds no escape and is valid UTF-8, else by encoding/json itself
// (which turns invalid bytes and lone surrogates into U+FFFD).
func decodeJSONKey(quoted []byte) string {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var name string
	json.Unmarshal(quoted, &name)
	return name
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
