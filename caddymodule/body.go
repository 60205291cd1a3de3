package caddymodule

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// defaultMaxBody is the body cap when max_body is not set: far above any
// provider's event size, far below what would hurt the gateway.
const defaultMaxBody = 1 << 20

// maxPooledBuffer keeps a route with a huge max_body from pinning large
// buffers in the pool after one big delivery.
const maxPooledBuffer = 4 << 20

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var errBodyTooLarge = errors.New("body too large")

// readBody reads at most limit bytes. A declared Content-Length over the
// limit is refused before a byte is read; an undeclared one is refused as
// soon as the limit is passed, so an oversized body is never read whole.
func readBody(r *http.Request, limit int64) (*bytes.Buffer, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		err = errBodyTooLarge
	case err != nil:
		err = fmt.Errorf("reading request body: %w", err)
	case int64(buf.Len()) > limit:
		err = errBodyTooLarge
	}
	if err != nil {
		putBuffer(buf)
		return nil, err
	}
	return buf, nil
}

func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		bufPool.Put(buf)
	}
}

// replayBody hands the buffered bytes on to the next handler. The buffer
// goes back to the pool only when both the handler chain has returned and
// the body has been closed: an HTTP transport may still be reading a
// request body after RoundTrip returns.
type replayBody struct {
	*bytes.Reader
	buf  *bytes.Buffer
	refs atomic.Int32
	once sync.Once
}

// restoreBody makes r carry the exact bytes received, with the length
// and GetBody that a reverse proxy needs to forward and retry them.
func restoreBody(r *http.Request, buf *bytes.Buffer) *replayBody {
	b := &replayBody{Reader: bytes.NewReader(buf.Bytes()), buf: buf}
	b.refs.Store(2)
	r.Body = b
	r.ContentLength = int64(buf.Len())
	r.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}
	return b
}

// Close releases the transport's hold on the buffer.
func (b *replayBody) Close() error {
	b.once.Do(b.release)
	return nil
}

// done releases the handler's hold on the buffer.
func (b *replayBody) done() { b.release() }

func (b *replayBody) release() {
	if b.refs.Add(-1) == 0 {
		putBuffer(b.buf)
	}
}
