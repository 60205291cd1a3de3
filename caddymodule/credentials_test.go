package caddymodule

import "testing"

func TestRedactBody(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		fields                  []string
		want                    string
		ok                      bool
	}{
		{"json_path", "application/json", `{"signature":{"token":"t","signature":"abc"},"x":1}`, []string{"signature.signature", "signature.parent-signature"},
			`{"signature":{"token":"t","signature":"[REDACTED]"},"x":1}`, true},
		{"json_every_item", "", `{"items":[{"s":"a"},{"s":"b"},{"t":1}]}`, []string{"items.#.s"},
			`{"items":[{"s":"[REDACTED]"},{"s":"[REDACTED]"},{"t":1}]}`, true},
		{"json_nested_inside_redacted", "", `{"a":{"b":"x"}}`, []string{"a.b", "a"}, `{"a":"[REDACTED]"}`, true},
		{"json_non_string", "", `{"sig":123}`, []string{"sig"}, `{"sig":"[REDACTED]"}`, true},
		{"json_absent", "", `{"x":1}`, []string{"sig", "list.#.sig"}, `{"x":1}`, true},
		{"form", "application/x-www-form-urlencoded", "bt_payload=p&bt_signature=k%7Cs", []string{"bt_signature"},
			"bt_payload=p&bt_signature=[REDACTED]", true},
		{"form_escaped_name", "", "bt%5Fsignature=k%7Cs&x=1", []string{"bt_signature"}, "bt%5Fsignature=[REDACTED]&x=1", true},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\n", []string{"signature"}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := redactBody([]byte(c.body), c.contentType, c.fields)
			if ok != c.ok || string(got) != c.want {
				t.Errorf("redactBody = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestScrubPairsDropsOnlyTheNamedPairs(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"middle", "a=1&secret=s&b=%2F", "a=1&b=%2F"},
		{"only", "secret=s", ""},
		{"repeated_and_encoded", "secret=1&s%65cret=2&secretive=3", "secretive=3"},
		{"bad_escape_kept_as_is", "a=%zz&secret=s", "a=%zz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := scrubPairs(c.in, []string{"secret"}, ""); got != c.want {
				t.Errorf("scrubPairs(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
