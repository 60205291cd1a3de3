package keyfetch

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// FuzzAdmit checks that whatever URL a message names, an admitted one is
// https, carries no user information, names a port only where an exact
// allow entry does, has a host the rules admit, and ends in the suffix.
func FuzzAdmit(f *testing.F) {
	for _, s := range []string{
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
		"https://sns.us-east-1.amazonaws.com.cn/x.pem",
		"https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
		"https://sns.us-east-1.amazonaws.com:443/x.pem",
		"https://sns.evil.example/x.pem",
		"http://sns.us-east-1.amazonaws.com/x.pem",
		"https://127.0.0.1:8443/keys.pem",
		"https://[::1]:8443/keys.pem",
		"https://keys.example.com/jwks.pem",
		"https://files.example.com/x.pem",
		"https://www.googleapis.com/oauth2/v3/certs.pem",
		"https://SNS.US-EAST-1.AMAZONAWS.COM/x.pem",
		"https://sns.us-east-1.amazonaws.com%2f@x/x.pem",
		"https://sns.us-east-1.amazonaws.com:/x.pem",
		"//sns.us-east-1.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com/%53x.pem",
		"https://sns.us-east-1.amazonaws.com/a/../x.pem",
		"https://sns.us-east-1.amazonaws.com//x.pem",
		"https://sns.us-east-1.amazonaws.com/x.pem#a",
		"https://sns.us-east-1.amazonaws.com/x.pem?",
	} {
		f.Add(s)
	}
	allow, err := parseAllow([]string{"127.0.0.1:8443", "[::1]:8443", "keys.example.com", "files.example.com:443"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		req := provider.KeyRequest{URL: raw, Hosts: []string{"www.googleapis.com"}, HostPattern: snsHosts, PathSuffix: ".pem"}
		u, err := allow.admit(req)
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.User != nil || u.Opaque != "" || !strings.HasSuffix(u.Path, ".pem") {
			t.Fatalf("admitted %q", raw)
		}
		host, port := strings.ToLower(u.Hostname()), u.Port()
		if port != "" && !allow.exact[net.JoinHostPort(host, port)] {
			t.Fatalf("admitted port %q of %q", port, raw)
		}
		// The URL may come from the message (a HostPattern says so): a
		// host entry does not admit it, only the rules or an exact entry.
		if port == "" && !allow.exact[net.JoinHostPort(host, "443")] && host != "www.googleapis.com" && !snsHosts.MatchString(host) {
			t.Fatalf("admitted host %q of %q", host, raw)
		}
		// One spelling per document: nothing that is not sent, and a
		// path a server could not read as another spelling of it.
		if u.Fragment != "" || u.ForceQuery || u.RawPath != "" {
			t.Fatalf("admitted %q as %q, which has another spelling", raw, u)
		}
		for i, seg := range strings.Split(u.Path, "/") {
			if i > 0 && (seg == "" || seg == "." || seg == "..") {
				t.Fatalf("admitted %q with path %q", raw, u.Path)
			}
		}
		// What net/http will dial is what was checked.
		hr, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			t.Fatalf("admitted %q that net/http cannot request: %v", raw, err)
		}
		if again, _ := url.Parse(hr.URL.String()); again == nil || !strings.EqualFold(again.Host, u.Host) {
			t.Fatalf("admitted %q, but the request goes to %q", raw, hr.URL.Host)
		}
	})
}

// FuzzTTL checks that whatever Cache-Control and Age a server sends, a
// document is kept within [MinTTL, MaxTTL].
func FuzzTTL(f *testing.F) {
	for _, s := range [][2]string{
		{"public, max-age=120", ""},
		{"max-age=300", "200"},
		{"max-age=\"60\"", "x"},
		{"no-store", ""},
		{"max-age=99999999999999999999999", ""},
		{"max-age=-5, max-age=9", "-1"},
		{"MAX-AGE = 10", "9223372036854775807"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, cacheControl, age string) {
		h := http.Header{"Cache-Control": {cacheControl}, "Age": {age}}
		if d := ttl(h); d < MinTTL || d > MaxTTL {
			t.Fatalf("ttl %s for Cache-Control %q, Age %q", d, cacheControl, age)
		}
	})
}

func TestTTL(t *testing.T) {
	cases := []struct {
		name, cacheControl, age string
		want                    int64 // seconds
	}{
		{"absent", "", "", 3600},
		{"max-age", "public, max-age=600, must-revalidate", "", 600},
		{"quoted", `max-age="600"`, "", 600},
		{"upper case", "MAX-AGE=600", "", 600},
		{"age subtracted", "max-age=600", "100", 500},
		{"age beyond max-age", "max-age=600", "6000", 60},
		{"malformed age ignored", "max-age=600", "soon", 600},
		{"first max-age wins", "max-age=600, max-age=6000", "", 600},
		{"malformed max-age", "max-age=soon", "", 60},
		{"no-cache", "no-cache, max-age=600", "", 60},
		{"huge", "max-age=99999999999999999999", "", 86400},
		{"several header lines", "public", "", 3600},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.cacheControl != "" {
				h.Set("Cache-Control", tc.cacheControl)
			}
			if tc.age != "" {
				h.Set("Age", tc.age)
			}
			if got := ttl(h); got.Seconds() != float64(tc.want) {
				t.Fatalf("ttl %s, want %ds", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"defaults", Config{}, ""},
		{"entries", Config{Allow: []string{"keys.example.com", "127.0.0.1:8443", "[::1]:8443", "[2001:db8::1]"}}, ""},
		{"scheme", Config{Allow: []string{"https://keys.example.com"}}, "bad port"},
		{"path", Config{Allow: []string{"keys.example.com/x"}}, "want a host"},
		{"port zero", Config{Allow: []string{"keys.example.com:0"}}, "bad port"},
		{"port padded", Config{Allow: []string{"keys.example.com:0443"}}, "bad port"},
		{"wildcard", Config{Allow: []string{"*.example.com"}}, "want a host"},
		{"timeout short", Config{Timeout: durationOf(time.Second)}, "outside"},
		{"timeout long", Config{Timeout: durationOf(6 * time.Second)}, "outside"},
		{"max_bytes", Config{MaxBytes: 2 << 20}, "max_bytes"},
		{"cache_entries", Config{CacheEntries: -1}, "cache_entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPublic(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
		"0.0.0.0", "255.255.255.255", "224.0.0.1", "::1", "::", "fc00::1", "fd12::1", "fe80::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::7f00:1", "64:ff9b::a00:1", "2002:a00:1::1",
		"::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe", "3fff::1"} {
		if public(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as public", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "52.94.0.1", "2600:1f18::1", "::ffff:8.8.8.8"} {
		if !public(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as not public", a)
		}
	}
}
