package caddymodule

import (
	"bytes"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
)

// redacted replaces a credential's value wherever the gateway shows a
// request.
const redacted = "[REDACTED]"

// dropCredentials removes the static shared tokens a scheme verified
// (X-Gitlab-Token, Mailchimp's ?secret=) from the request before it is
// forwarded, unless the route keeps them for an app that checks them
// itself. Signatures stay: they reveal no secret, and an app may verify
// them too.
func (h *Handler) dropCredentials(r *http.Request) {
	if h.KeepCredentials {
		return
	}
	for _, name := range h.credentials.TokenHeaders {
		r.Header.Del(name)
	}
	if len(h.credentials.TokenQuery) == 0 || r.URL.RawQuery == "" {
		return
	}
	query := scrubPairs(r.URL.RawQuery, h.credentials.TokenQuery, "")
	if query != r.URL.RawQuery {
		r.URL.RawQuery = query
		r.RequestURI = r.URL.RequestURI()
	}
}

// loggedBody is the log_body prefix of a delivery, with the signatures a
// scheme carries in the body redacted before the cut, so that a cut never
// leaves part of one. A body whose signatures cannot be located
// (multipart) is not logged.
func (h *Handler) loggedBody(r *http.Request, body []byte) []byte {
	if fields := h.credentials.BodyFields; len(fields) > 0 {
		var ok bool
		if body, ok = redactBody(body, r.Header.Get("Content-Type"), fields); !ok {
			return nil
		}
	}
	// A copy: the buffer goes back to the pool before the line is
	// written.
	return append([]byte{}, body[:min(int64(len(body)), h.LogBody)]...)
}

// redactBody redacts fields (gjson paths in a JSON body, names in a form)
// and reports whether it could.
func redactBody(body []byte, contentType string, fields []string) ([]byte, bool) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch trimmed := bytes.TrimLeft(body, " \t\r\n"); {
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
		return redactJSON(body, fields)
	case strings.HasPrefix(mediaType, "multipart/"):
		return nil, false
	}
	return []byte(scrubPairs(string(body), fields, redacted)), true
}

// redactJSON replaces the values at paths with a redacted string. It
// fails when gjson cannot say where a value lies.
func redactJSON(body []byte, paths []string) ([]byte, bool) {
	type span struct{ at, end int }
	var spans []span
	add := func(at int, raw string) bool {
		end := at + len(raw)
		if at <= 0 || end > len(body) || string(body[at:end]) != raw {
			return false
		}
		spans = append(spans, span{at, end})
		return true
	}
	for _, path := range paths {
		res := gjson.GetBytes(body, path)
		if !res.Exists() {
			continue
		}
		if !strings.Contains(path, "#") {
			if !add(res.Index, res.Raw) {
				return nil, false
			}
			continue
		}
		// A query over an array: one position per matching element.
		values := res.Array()
		if len(values) != len(res.Indexes) {
			return nil, false
		}
		for i, v := range values {
			if !add(res.Indexes[i], v.Raw) {
				return nil, false
			}
		}
	}
	if len(spans) == 0 {
		return body, true
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].at < spans[j].at })
	out := make([]byte, 0, len(body))
	last := 0
	for _, s := range spans {
		if s.at < last {
			continue // inside a value already redacted
		}
		out = append(out, body[last:s.at]...)
		out = append(out, `"`+redacted+`"`...)
		last = s.end
	}
	return append(out, body[last:]...), true
}

// scrubPairs rewrites the pairs of a URL-encoded string (a query or a
// form body) whose unescaped name is one of names: their value becomes
// replacement, or, when it is empty, the pair is dropped. Every other
// byte stays as it was, so that an app verifying the rest sees what the
// provider sent.
func scrubPairs(s string, names []string, replacement string) string {
	pairs := strings.Split(s, "&")
	kept := pairs[:0]
	for _, pair := range pairs {
		name, _, _ := strings.Cut(pair, "=")
		unescaped, err := url.QueryUnescape(name)
		if err != nil {
			unescaped = name
		}
		if slices.Contains(names, unescaped) {
			if replacement == "" {
				continue
			}
			pair = name + "=" + replacement
		}
		kept = append(kept, pair)
	}
	return strings.Join(kept, "&")
}
