package redisstore

import (
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		resp store.Response
	}{
		{"status only", store.Response{Status: 204}},
		{"headers and body", store.Response{
			Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}, "X-Many": {"1", "", "3"}},
			Body:   []byte(`{"ok":true}`),
		}},
		{"binary body", store.Response{Status: 500, Body: []byte{0, 0xff, '\r', '\n', 0x80}}},
		{"large body", store.Response{Status: 200, Body: bytes.Repeat([]byte("x"), 1<<20)}},
		{"long header value", store.Response{Status: 200, Header: http.Header{"A": {strings.Repeat("v", 300)}}}},
		{"header without values", store.Response{Status: 200, Header: http.Header{"A": {}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeResponse(tt.resp)
			got, err := decodeResponse(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.resp) {
				t.Errorf("decoded %+v, want %+v", got, tt.resp)
			}
			if !bytes.Equal(encodeResponse(got), b) {
				t.Error("re-encoding differs")
			}
		})
	}
}

func TestCodecCompact(t *testing.T) {
	r := store.Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("ok")}
	content := len("Content-Type") + len("text/plain") + len("ok")
	if n := len(encodeResponse(r)); n > content+8 {
		t.Errorf("encoded %d bytes for %d bytes of content", n, content)
	}
}

func TestCodecRejectsCorruption(t *testing.T) {
	valid := encodeResponse(store.Response{
		Status: 200,
		Header: http.Header{"A": {"b", "c"}, "D": {"e"}},
		Body:   []byte("body"),
	})
	// Every strict prefix is a cut-off entry.
	for n := range len(valid) {
		if _, err := decodeResponse(valid[:n]); err == nil {
			t.Errorf("prefix of %d/%d bytes decoded", n, len(valid))
		}
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"trailing bytes", append(append([]byte{}, valid...), 'x')},
		{"unknown version", append([]byte{9}, valid[1:]...)},
		{"status out of range", []byte{codecVersion, 0xe8, 0x07, 0, 0}},
		{"huge header count", []byte{codecVersion, 200, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"huge body length", []byte{codecVersion, 200, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeResponse(tt.b); err == nil {
				t.Error("decoded")
			}
		})
	}
}
