package queue

import (
	"net/url"
	"testing"
)

// TestHeaderSafe checks the encoding of the event id and type headers.
func TestHeaderSafe(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "evt_1", "evt_1"},
		{"crlf_nul", "evt\r\n\x00x", "evt%0D%0A%00x"},
		{"percent", "50%", "50%25"},
		{"tab_del", "a\tb\x7f", "a%09b%7F"},
		{"edge_spaces", " a b ", "%20a b%20"},
		{"utf8", "évènement", "évènement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := HeaderSafe(c.in)
			if got != c.want {
				t.Errorf("HeaderSafe(%q) = %q, want %q", c.in, got, c.want)
			}
			if back, err := url.PathUnescape(got); err != nil || back != c.in {
				t.Errorf("url.PathUnescape(%q) = %q, %v; want %q", got, back, err, c.in)
			}
		})
	}
}
