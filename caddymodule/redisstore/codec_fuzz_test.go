package redisstore

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// FuzzDecodeResponse feeds the decoder what Redis could hand back after
// a bug, a manual edit or a truncated write: it must never panic, and
// whatever it accepts must encode back to the same bytes.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(encodeResponse(store.Response{Status: 200}))
	f.Add(encodeResponse(store.Response{
		Status: 202,
		Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/a", "/b"}},
		Body:   []byte(`{"ok":true}`),
	}))
	f.Add([]byte{codecVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err != nil {
			return
		}
		again, err := decodeResponse(encodeResponse(r))
		if err != nil {
			t.Fatalf("re-encoded answer does not decode: %v", err)
		}
		if again.Status != r.Status || !bytes.Equal(again.Body, r.Body) || !sameHeader(again.Header, r.Header) {
			t.Fatalf("round trip changed the answer: %+v -> %+v", r, again)
		}
	})
}

func sameHeader(a, b http.Header) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
