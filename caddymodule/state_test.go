package caddymodule

import (
	"net/http"
	"net/http/httptest"
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
	cases := []struct {
		name   string
		status int
		err    error
		want   bool
	}{
		{"ok", 200, nil, false},
		{"client_error_is_an_answer", 400, nil, false},
		{"server_error", 500, nil, true},
		{"bad_gateway", 502, nil, true},
		{"too_many_requests", 429, nil, true},
		{"request_timeout", 408, nil, true},
		{"no_answer", 0, nil, true},
		{"proxy_error", 200, http.ErrHandlerTimeout, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := shouldRelease(c.status, c.err); got != c.want {
				t.Errorf("shouldRelease(%d, %v) = %v, want %v", c.status, c.err, got, c.want)
			}
		})
	}
}
