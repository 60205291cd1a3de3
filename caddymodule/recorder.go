package caddymodule

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// recorder notes the status and size of the upstream's answer as it
// streams through, for the delivery log line.
type recorder struct {
	*caddyhttp.ResponseWriterWrapper
	status int
	bytes  int64
}

func newRecorder(w http.ResponseWriter) *recorder {
	return &recorder{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

func (r *recorder) WriteHeader(status int) {
	// 1xx answers are interim; the final status comes later.
	if r.status == 0 && status >= 200 {
		r.status = status
	}
	r.ResponseWriterWrapper.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriterWrapper.Write(p)
	r.bytes += int64(n)
	return n, err
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
