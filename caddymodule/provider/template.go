package provider

import (
	"fmt"
	"io"
	"net/http"
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
)

type segment struct {
	kind segmentKind
	text string // the literal, or the header name
}

// content is a compiled signed-content template such as
// "{timestamp}.{body}". Compiling at provision time lets the hot path feed
// the pieces straight into the MAC without building a string.
type content []segment

// compileContent parses a template. Known fields: {body}, {timestamp},
// {id}, {method}, {url} and {header.Name}; "{{" and "}}" stand for braces.
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
	case "method":
		return segment{kind: segMethod}, nil
	case "url":
		return segment{kind: segURL}, nil
	}
	if h, ok := strings.CutPrefix(name, "header."); ok && h != "" {
		return segment{kind: segHeader, text: http.CanonicalHeaderKey(h)}, nil
	}
	return segment{}, fmt.Errorf("unknown field {%s} (known: body, timestamp, id, method, url, header.<name>)", name)
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

// headers lists the request headers the template reads.
func (c content) headers() []string {
	var names []string
	for _, s := range c {
		if s.kind == segHeader {
			names = append(names, s.text)
		}
	}
	return names
}

// contentValues are the per-request values a template is filled with.
type contentValues struct {
	body      []byte
	timestamp string
	id        string
	method    string
	url       string
	header    http.Header
}

// writeTo feeds the signed content to w (a MAC) piece by piece.
func (c content) writeTo(w io.Writer, v *contentValues) {
	for _, s := range c {
		switch s.kind {
		case segLiteral:
			io.WriteString(w, s.text)
		case segBody:
			w.Write(v.body)
		case segTimestamp:
			io.WriteString(w, v.timestamp)
		case segID:
			io.WriteString(w, v.id)
		case segMethod:
			io.WriteString(w, v.method)
		case segURL:
			io.WriteString(w, v.url)
		case segHeader:
			io.WriteString(w, headerValue(v.header, s.text))
		}
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
