package provider

import (
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// segmentKind says where a piece of the signed content comes from.
type segmentKind uint8

const (
	segLiteral segmentKind = iota
	segBody
	segTimestamp
	segID
	segMethod
	segURL
	segHeader
	segWebhookID
	segBodyCRC32
)

type segment struct {
	kind segmentKind
	text string // the literal, or the header name
}

// content is a compiled signed-content template such as
// "{timestamp}.{body}". Compiling at provision time lets the hot path feed
// the pieces straight into the MAC without building a string.
type content []segment

// compileContent parses a template. Known fields: {body}, {body.crc32}
// (the decimal CRC-32 PayPal signs), {timestamp}, {id}, {method}, {url},
// {webhook_id} (the route's configured id) and {header.Name}; "{{" and
// "}}" stand for braces, and \n, \r, \t and \\ for what they do in Go.
func compileContent(tmpl string) (content, error) {
	var out content
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, segment{kind: segLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '{' && strings.HasPrefix(tmpl[i:], "{{"), c == '}' && strings.HasPrefix(tmpl[i:], "}}"):
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("signed content %q: unclosed '{'", tmpl)
			}
			seg, err := parseField(tmpl[i+1 : i+end])
			if err != nil {
				return nil, fmt.Errorf("signed content %q: %w", tmpl, err)
			}
			flush()
			out = append(out, seg)
			i += end
		case c == '\\' && i+1 < len(tmpl) && strings.IndexByte(`nrt\\`, tmpl[i+1]) >= 0:
			// Caddyfile strings keep backslashes as they are, so the
			// escapes that signed contents need are read here.
			lit.WriteByte(map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', '\\': '\\'}[tmpl[i+1]])
			i++
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if len(out) == 0 {
		return nil, fmt.Errorf("signed content is empty")
	}
	return out, nil
}

func parseField(name string) (segment, error) {
	switch name {
	case "body":
		return segment{kind: segBody}, nil
	case "timestamp":
		return segment{kind: segTimestamp}, nil
	case "id":
		return segment{kind: segID}, nil
	case "method", "http.request.method":
		// The Caddyfile adapter expands {method} and {header.X} into
		// Caddy's long forms before we see them; both spellings work.
		return segment{kind: segMethod}, nil
	case "url":
		return segment{kind: segURL}, nil
	case "webhook_id":
		return segment{kind: segWebhookID}, nil
	case "body.crc32":
		return segment{kind: segBodyCRC32}, nil
	}
	for _, prefix := range []string{"header.", "http.request.header."} {
		if h, ok := strings.CutPrefix(name, prefix); ok && h != "" {
			return segment{kind: segHeader, text: http.CanonicalHeaderKey(h)}, nil
		}
	}
	return segment{}, fmt.Errorf("unknown field {%s} (known: body, body.crc32, timestamp, id, method, url, webhook_id, header.<name>)", name)
}

// uses reports whether the template refers to a field of the given kind.
func (c content) uses(kind segmentKind) bool {
	for _, s := range c {
		if s.kind == kind {
			return true
		}
	}
	return false
}

// contentValues are the per-request values a template is filled with.
type contentValues struct {
	body      []byte
	timestamp string
	id        string
	method    string
	url       string
	header    http.Header
	webhookID string
}

// scratchSize is the buffer that strings are copied through on their way
// into a MAC; longer ones go through in pieces.
const scratchSize = 256

// writeTo feeds the signed content to w (a MAC) piece by piece. Strings
// go through scratch, which the hot path takes from its pooled MAC so as
// not to allocate; nil makes it allocate instead.
func (c content) writeTo(w io.Writer, v *contentValues, scratch []byte) {
	for _, s := range c {
		switch s.kind {
		case segLiteral:
			writeString(w, s.text, scratch)
		case segBody:
			w.Write(v.body)
		case segTimestamp:
			writeString(w, v.timestamp, scratch)
		case segID:
			writeString(w, v.id, scratch)
		case segMethod:
			writeString(w, v.method, scratch)
		case segURL:
			writeString(w, v.url, scratch)
		case segHeader:
			writeString(w, headerValue(v.header, s.text), scratch)
		case segWebhookID:
			writeString(w, v.webhookID, scratch)
		case segBodyCRC32:
			writeString(w, strconv.FormatUint(uint64(crc32.ChecksumIEEE(v.body)), 10), scratch)
		}
	}
}

func writeString(w io.Writer, s string, scratch []byte) {
	if len(scratch) == 0 {
		io.WriteString(w, s)
		return
	}
	for s != "" {
		n := copy(scratch, s)
		w.Write(scratch[:n])
		s = s[n:]
	}
}

// headerValue reads a canonical header name without the allocation that
// http.Header.Get spends on canonicalising its argument.
func headerValue(h http.Header, canonical string) string {
	if vs := h[canonical]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
