package caddymodule

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
)

// defaultMaxBody is the body cap when max_body is not set: far above any
// provider's event size, far below what would hurt the gateway.
const defaultMaxBody = 1 << 20

// Buffer sizes. A body is read into a minBuffer buffer that doubles as
// bytes arrive, never past the route's limit: a declared Content-Length
// reserves nothing, so a client that declares 1 MiB and sends a few bytes
// holds 4 KiB. Pools are kept per power of two up to maxPooledBuffer;
// larger buffers are left to the garbage collector so that one big
// delivery does not pin its buffer.
const (
	minBufferShift     = 12 // 4 KiB
	maxPooledShift     = 22 // 4 MiB
	minBuffer          = 1 << minBufferShift
	maxPooledBuffer    = 1 << maxPooledShift
	bufferClassesCount = maxPooledShift - minBufferShift + 1
)

// bufPools[i] holds buffers whose capacity is at least minBuffer<<i and
// less than minBuffer<<(i+1). A buffer sized to a route's limit that is
// not a power of two sits in the class below its size.
var bufPools [bufferClassesCount]sync.Pool

var errBodyTooLarge = errors.New("body too large")

// errBodyReleased: GetBody was called after every holder let go of the
// buffer, which may already carry another request's bytes.
var errBodyReleased = errors.New("request body already released")

// readBody reads at most limit bytes. A declared Content-Length over the
// limit is refused before a byte is read; an undeclared one is refused as
// soon as the limit is passed, so an oversized body is never read whole.
// The caller holds the returned body and must release it.
func readBody(r *http.Request, limit int64) (*body, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	buf, err := readLimited(r.Body, limit)
	if err != nil {
		putBuffer(buf)
		return nil, err
	}
	b := &body{buf: buf}
	b.refs.Store(1)
	return b, nil
}

// readLimited reads src to its end into a pooled buffer that grows only
// when it is full and more bytes have arrived.
func readLimited(src io.Reader, limit int64) ([]byte, error) {
	buf := getBuffer(minBuffer)
	for {
		if len(buf) == cap(buf) || int64(len(buf)) == limit {
			// Full: learn whether more is coming before making room.
			var probe [1]byte
			if n, err := io.ReadFull(src, probe[:]); n == 0 {
				return buf, readError(err)
			}
			if int64(len(buf)) == limit {
				return buf, errBodyTooLarge
			}
			buf = append(grow(buf, limit), probe[0])
			continue
		}
		n, err := src.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, readError(err)
		}
	}
}

func readError(err error) error {
	var maxErr *http.MaxBytesError
	switch {
	case err == io.EOF:
		return nil
	case errors.As(err, &maxErr):
		return errBodyTooLarge
	}
	return fmt.Errorf("reading request body: %w", err)
}

// grow moves buf into a buffer twice its size, or the limit's size when
// that is smaller, so that a body of exactly the limit never doubles past
// it.
func grow(buf []byte, limit int64) []byte {
	size := 2 * cap(buf)
	if int64(size) > limit {
		size = int(limit)
	}
	bigger := append(getBuffer(size), buf...)
	putBuffer(buf)
	return bigger
}

// bufferClass is the pool of a buffer of capacity c, or -1 if none.
func bufferClass(c int) int {
	if c < minBuffer || c > maxPooledBuffer {
		return -1
	}
	return bits.Len(uint(c)) - 1 - minBufferShift
}

// getBuffer returns an empty buffer of capacity at least size, taken
// from the class of size: for a power of two every buffer there fits;
// otherwise those sized to a limit like this one do.
func getBuffer(size int) []byte {
	size = max(size, minBuffer)
	if i := bufferClass(size); i >= 0 {
		if p, _ := bufPools[i].Get().(*[]byte); p != nil {
			if cap(*p) >= size {
				return (*p)[:0]
			}
			bufPools[i].Put(p)
		}
	}
	return make([]byte, 0, size)
}

func putBuffer(buf []byte) {
	if i := bufferClass(cap(buf)); i >= 0 {
		bufPools[i].Put(&buf)
	}
}

// body is a request body read into a pooled buffer and shared by the
// handler and every reader handed to the next handler (the request's
// Body and each GetBody): the buffer goes back to the pool only when the
// last of them has let go. An HTTP transport may still read a request
// body after RoundTrip returns, and may rewind it through GetBody; a
// reader that is never closed keeps the buffer out of the pool, and the
// garbage collector has it.
type body struct {
	buf  []byte
	refs atomic.Int32
}

func (b *body) bytes() []byte { return b.buf }

// reader returns a new hold on the bytes, or an error once every holder
// has let go.
func (b *body) reader() (io.ReadCloser, error) {
	for {
		n := b.refs.Load()
		if n <= 0 {
			return nil, errBodyReleased
		}
		if b.refs.CompareAndSwap(n, n+1) {
			return &bodyReader{owner: b, r: bytes.NewReader(b.buf)}, nil
		}
	}
}

// release lets go of one hold; the last one returns the buffer.
func (b *body) release() {
	if b.refs.Add(-1) == 0 {
		buf := b.buf
		b.buf = nil
		putBuffer(buf)
	}
}

// restoreBody makes r carry the exact bytes received, with the length
// and GetBody that a reverse proxy needs to forward and retry them.
func restoreBody(r *http.Request, b *body) {
	// b is held by the caller, so reader cannot fail here.
	r.Body, _ = b.reader()
	r.ContentLength = int64(len(b.buf))
	r.GetBody = b.reader
}

// bodyReader is one hold on a body. Once closed it reads nothing, since
// the buffer may be carrying another request's bytes.
type bodyReader struct {
	mu    sync.Mutex
	owner *body // nil once closed
	r     *bytes.Reader
}

func (br *bodyReader) Read(p []byte) (int, error) {
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.owner == nil {
		return 0, http.ErrBodyReadAfterClose
	}
	return br.r.Read(p)
}

// Close releases the hold; closing again does nothing.
func (br *bodyReader) Close() error {
	br.mu.Lock()
	owner := br.owner
	br.owner = nil
	br.mu.Unlock()
	if owner != nil {
		owner.release()
	}
	return nil
}

// Interface guards
var _ io.ReadCloser = (*bodyReader)(nil)
