package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/webrev/webhook-gateway/caddymodule/store"
)

// codecVersion leads every encoded answer, so the format can change
// while old entries are still being replayed.
const codecVersion = 1

// encodeResponse writes an answer compactly: version, status, header
// count, then for each header (sorted, so equal answers encode equally)
// its name and values, then the body, all strings length-prefixed.
// Lengths are uvarints, so a typical answer costs a handful of bytes
// beyond its content, nothing is escaped, and a cut-off entry is
// detected rather than replayed short.
func encodeResponse(r store.Response) []byte {
	b := make([]byte, 0, 8+binary.MaxVarintLen64+len(r.Body)+headerSize(r.Header))
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(r.Status))
	b = appendHeader(b, r.Header)
	b = binary.AppendUvarint(b, uint64(len(r.Body)))
	return append(b, r.Body...)
}

// headerSize bounds what appendHeader adds.
func headerSize(h http.Header) int {
	size := binary.MaxVarintLen32
	for name, values := range h {
		size += len(name) + 2*binary.MaxVarintLen32
		for _, v := range values {
			size += len(v) + binary.MaxVarintLen32
		}
	}
	return size
}

// appendHeader writes the header count, then for each header (sorted,
// so equal headers encode equally) its name and values.
func appendHeader(b []byte, h http.Header) []byte {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = appendString(b, name)
		values := h[name]
		b = binary.AppendUvarint(b, uint64(len(values)))
		for _, v := range values {
			b = appendString(b, v)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("truncated or corrupt")

// decodeResponse reads what encodeResponse wrote.
func decodeResponse(b []byte) (store.Response, error) {
	d := decoder{b: b}
	if v := d.byte(); v != codecVersion {
		return store.Response{}, fmt.Errorf("decoding stored response: unknown version %d", v)
	}
	status := d.uvarint()
	if status > 999 {
		d.err = errCorrupt
	}
	r := store.Response{Status: int(status), Header: d.header()}
	if n := d.count(); n > 0 {
		r.Body = d.b[:n:n]
		d.b = d.b[n:]
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return store.Response{}, fmt.Errorf("decoding stored response: %w", d.err)
	}
	return r, nil
}

// decoder consumes b, remembering the first error so callers can check
// once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length and rejects one the remaining bytes cannot hold,
// so a corrupt entry cannot make us allocate gigabytes.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

// header reads what appendHeader wrote; nil for no headers.
func (d *decoder) header() http.Header {
	n := d.count()
	if n == 0 {
		return nil
	}
	h := make(http.Header, n)
	for range n {
		name := d.string()
		values := make([]string, d.count())
		for i := range values {
			values[i] = d.string()
		}
		h[name] = values
	}
	return h
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
