package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"runtime"
	"testing"
)

// request is a POST carrying body, with a declared length.
func request(body []byte, declared int64) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "https://gateway.test/hook", bytes.NewReader(body))
	r.ContentLength = declared
	return r
}

// TestBodyBufferSize checks the capacity each body ends in: bytes are
// received before room is made for them, and a body of the limit's size
// fits a buffer of the limit's size.
func TestBodyBufferSize(t *testing.T) {
	cases := []struct {
		name            string
		limit, size     int
		declared        int64
		wantCap         int
		wantErrTooLarge bool
	}{
		{"declared_1MiB_sends_59", 1 << 20, 59, 1 << 20, minBuffer, false},
		{"exactly_1MiB", 1 << 20, 1 << 20, 1 << 20, 1 << 20, false},
		{"exactly_1MiB_undeclared", 1 << 20, 1 << 20, -1, 1 << 20, false},
		{"just_over_512KiB", 1 << 20, 512<<10 + 1, -1, 1 << 20, false},
		{"exactly_minBuffer", 1 << 20, minBuffer, -1, minBuffer, false},
		{"limit_not_a_power_of_two", 1536 << 10, 1536 << 10, -1, 1536 << 10, false},
		{"limit_below_minBuffer", 100, 100, -1, minBuffer, false},
		{"exactly_4MiB", 4 << 20, 4 << 20, -1, 4 << 20, false},
		{"undeclared_over_limit", 1 << 20, 1<<20 + 1, -1, 0, true},
		{"declared_over_limit", 1 << 20, 10, 1<<20 + 1, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Two collections empty the pools, so the capacity is the
			// one readBody chose, not that of a buffer another test left.
			runtime.GC()
			runtime.GC()
			want := bytes.Repeat([]byte("x"), c.size)
			b, err := readBody(request(want, c.declared), int64(c.limit))
			if c.wantErrTooLarge {
				if !errors.Is(err, errBodyTooLarge) {
					t.Fatalf("err %v, want errBodyTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.release()
			if !bytes.Equal(b.bytes(), want) {
				t.Fatalf("read %d bytes, want the %d sent", len(b.bytes()), len(want))
			}
			if got := cap(b.bytes()); got != c.wantCap {
				t.Errorf("buffer capacity %d, want %d", got, c.wantCap)
			}
		})
	}
}

// TestGetBodyReaderOutlivesHandler: a transport may rewind the body
// through GetBody and read it after the handler has returned and closed
// the request's Body. Meanwhile other requests take buffers from the
// pool; the rewound reader must still see its own bytes.
func TestGetBodyReaderOutlivesHandler(t *testing.T) {
	const size = 3000
	for attempt := range 20 {
		original := bytes.Repeat([]byte("o"), size)
		r := request(original, size)
		b, err := readBody(r, defaultMaxBody)
		if err != nil {
			t.Fatal(err)
		}
		restoreBody(r, b)
		rewound, err := r.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		b.release() // the handler has returned

		done := make(chan []byte)
		go func() {
			// Other deliveries reuse whatever the pool holds.
			for range 4 {
				other, err := readBody(request(bytes.Repeat([]byte("X"), size), size), defaultMaxBody)
				if err == nil {
					other.release()
				}
			}
			got, _ := io.ReadAll(rewound)
			rewound.Close()
			done <- got
		}()
		if got := <-done; !bytes.Equal(got, original) {
			t.Fatalf("attempt %d: the rewound body read %q…, want the original bytes", attempt, got[:min(len(got), 16)])
		}
	}
}

// TestBodyReleased: once every holder has let go, GetBody refuses and a
// closed reader reads nothing, since the buffer may hold another
// request's bytes by then.
func TestBodyReleased(t *testing.T) {
	cases := []struct {
		name string
		want error
		use  func(t *testing.T, r *http.Request, b *body) error
	}{
		{"get_body_after_release", errBodyReleased, func(t *testing.T, r *http.Request, b *body) error {
			r.Body.Close()
			b.release()
			_, err := r.GetBody()
			return err
		}},
		{"read_after_close", http.ErrBodyReadAfterClose, func(t *testing.T, r *http.Request, b *body) error {
			defer b.release()
			r.Body.Close()
			_, err := r.Body.Read(make([]byte, 8))
			return err
		}},
		{"double_close_releases_once", nil, func(t *testing.T, r *http.Request, b *body) error {
			rd, err := r.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			rd.Close()
			rd.Close()
			r.Body.Close()
			// The handler still holds the body: a rewind must work.
			again, err := r.GetBody()
			if err != nil {
				return err
			}
			got, _ := io.ReadAll(again)
			again.Close()
			b.release()
			if string(got) != "payload" {
				t.Errorf("rewound %q, want %q", got, "payload")
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request([]byte("payload"), 7)
			b, err := readBody(r, defaultMaxBody)
			if err != nil {
				t.Fatal(err)
			}
			restoreBody(r, b)
			if err := c.use(t, r, b); !errors.Is(err, c.want) {
				t.Errorf("err %v, want %v", err, c.want)
			}
		})
	}
}
