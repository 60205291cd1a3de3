package caddymodule

import (
	"bytes"
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// recorder notes the status and size of the upstream's answer as it
// streams through, for the delivery log line, and keeps a copy of a
// small answer when it is to be stored for replays.
type recorder struct {
	*caddyhttp.ResponseWriterWrapper
	status int
	bytes  int64

	// keep is how many body bytes to copy; 0 copies none.
	keep     int64
	body     bytes.Buffer
	overflow bool
	header   http.Header // the answer's headers, as sent
}

func newRecorder(w http.ResponseWriter, keep int64) *recorder {
	return &recorder{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, keep: keep}
}

func (r *recorder) WriteHeader(status int) {
	// 1xx answers are interim; the final status comes later.
	if r.status == 0 && status >= 200 {
		r.status = status
		if r.keep > 0 {
			r.header = keptHeaders(r.Header())
		}
	}
	r.ResponseWriterWrapper.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriterWrapper.Write(p)
	r.bytes += int64(n)
	if r.keep > 0 && !r.overflow {
		if int64(r.body.Len()+n) > r.keep {
			r.overflow = true
			r.body = bytes.Buffer{}
		} else {
			r.body.Write(p[:n])
		}
	}
	return n, err
}

// keptHeaders copies the headers worth replaying, not the whole set: a
// stored answer needs its type and location, not its Date or Server.
func keptHeaders(h http.Header) http.Header {
	kept := make(http.Header, len(replayedHeaders))
	for _, name := range replayedHeaders {
		if vs := h[name]; len(vs) > 0 {
			kept[name] = append([]string(nil), vs...)
		}
	}
	return kept
}

// ReadFrom goes through Write so that nothing escapes the count; the
// wrapped writer's ReadFrom would bypass it.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	return io.Copy(writerOnly{r}, src)
}

// writerOnly hides ReadFrom from io.Copy, which would otherwise recurse.
type writerOnly struct{ io.Writer }

// Interface guards
var (
	_ http.ResponseWriter = (*recorder)(nil)
	_ io.ReaderFrom       = (*recorder)(nil)
)
