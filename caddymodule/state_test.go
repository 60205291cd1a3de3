package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

func TestReplayWritesTheStoredAnswer(t *testing.T) {
	cases := []struct {
		name   string
		stored store.Response
		length string
	}{
		{"ok_with_body", store.Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("done")}, "4"},
		{"accepted_empty", store.Response{Status: 202}, "0"},
		{"no_content", store.Response{Status: 204}, ""},
		{"not_modified", store.Response{Status: 304}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			d := &delivery{}
			new(Handler).replay(w, d, &c.stored)
			if w.Code != c.stored.Status || w.Header().Get(HeaderReplay) != "true" || w.Body.String() != string(c.stored.Body) {
				t.Fatalf("wrote %d %q (replay %q), want %d %q", w.Code, w.Body, w.Header().Get(HeaderReplay), c.stored.Status, c.stored.Body)
			}
			if got := w.Header().Get("Content-Length"); got != c.length {
				t.Errorf("Content-Length %q, want %q", got, c.length)
			}
			if ct := c.stored.Header.Get("Content-Type"); w.Header().Get("Content-Type") != ct {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), ct)
			}
			if d.outcome != "replayed" || d.status != c.stored.Status {
				t.Errorf("delivery logged as %s/%d", d.outcome, d.status)
			}
		})
	}
}

func TestShouldRelease(t *testing.T) {
	widened, err := parseStatusSet([]string{"409", "4xx", "301"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		status int
		err    error
		stored statusSet
		want   bool
	}{
		{"ok", 200, nil, nil, false},
		{"no_content", 204, nil, nil, false},
		{"not_found_during_deploy", 404, nil, nil, true},
		{"unauthorized_during_deploy", 401, nil, nil, true},
		{"conflict_by_default", 409, nil, nil, true},
		{"redirect_by_default", 301, nil, nil, true},
		{"server_error", 500, nil, nil, true},
		{"bad_gateway", 502, nil, nil, true},
		{"too_many_requests", 429, nil, nil, true},
		{"request_timeout", 408, nil, nil, true},
		{"no_answer", 0, nil, nil, true},
		{"proxy_error", 200, http.ErrHandlerTimeout, nil, true},
		{"widened_code", 409, nil, widened, false},
		{"widened_class", 404, nil, widened, false},
		{"widened_redirect", 301, nil, widened, false},
		{"widened_other_redirect", 302, nil, widened, true},
		{"class_keeps_429_released", 429, nil, widened, true},
		{"class_keeps_408_released", 408, nil, widened, true},
		{"widened_still_releases_5xx", 503, nil, widened, true},
		{"widened_still_releases_errors", 409, http.ErrAbortHandler, widened, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := shouldRelease(c.status, c.err, c.stored); got != c.want {
				t.Errorf("shouldRelease(%d, %v, %v) = %v, want %v", c.status, c.err, c.stored, got, c.want)
			}
		})
	}
}

func TestParseStatusSet(t *testing.T) {
	cases := []struct {
		name  string
		specs []string
		want  string // "" when valid
	}{
		{"codes_and_classes", []string{"2xx", "409", "422", "3XX"}, ""},
		{"server_error_class", []string{"5xx"}, "only 2xx, 3xx and 4xx"},
		{"server_error_code", []string{"503"}, "always release"},
		{"too_many_requests", []string{"429"}, "always release"},
		{"request_timeout", []string{"408"}, "always release"},
		{"informational", []string{"101"}, "not final"},
		{"informational_class", []string{"1xx"}, "only 2xx, 3xx and 4xx"},
		{"not_a_code", []string{"404s"}, "want a status code"},
		{"range_syntax", []string{"400-499"}, "want a status code"},
		{"letters", []string{"4x4"}, "want a status code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseStatusSet(c.specs)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("parseStatusSet(%q) = %v, want %q", c.specs, err, c.want)
			}
		})
	}
}
