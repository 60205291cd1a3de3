package keyfetch

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// admit checks a request's URL against its rules and the allow list
// before anything is dialed. The URL may come from the message (SNS's
// SigningCertURL), so every part that could lead elsewhere is refused:
// another scheme, user information (https://sns…@evil), a port, a host
// that neither the provider nor the config names, a path without the
// required suffix. It returns the URL to fetch.
func (a allowList) admit(req provider.KeyRequest) (*url.URL, error) {
	if m := req.Method; m != "" && m != http.MethodGet && m != http.MethodPost {
		return nil, notAllowed("key fetch method %q is not supported", m)
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, notAllowed("the key URL is not an absolute URL")
	}
	if u.Scheme != "https" {
		return nil, notAllowed("the key URL must use https")
	}
	if u.User != nil {
		return nil, notAllowed("the key URL must not carry user information")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if !validHost(host) {
		return nil, notAllowed("the key URL's host is not a host name or an IP address")
	}
	if strings.HasSuffix(u.Host, ":") {
		// "host:" is host on 443 to net/http but names no port: refused
		// like any other port spelling.
		return nil, notAllowed("the key URL must not name a port")
	}
	if port != "" {
		if !a.exact[net.JoinHostPort(host, port)] {
			return nil, notAllowed("the key URL's port %s is not allowed for host %q (only an allow entry naming that host:port admits one)", port, host)
		}
	} else if !a.hostAllowed(req, host) {
		return nil, notAllowed("the key URL's host %q is not allowed", host)
	}
	if req.PathSuffix != "" && !strings.HasSuffix(u.Path, req.PathSuffix) {
		return nil, notAllowed("the key URL's path must end in %q", req.PathSuffix)
	}
	if req.HostPattern != nil && !plainPath(u) {
		return nil, notAllowed("the key URL's path must be written plainly: no needless escapes, no empty or dot segments")
	}
	// One spelling per document, so that it has one cache entry: the
	// host in lower case, no fragment (never sent) and no empty "?".
	u.Host = strings.ToLower(u.Host)
	u.Fragment, u.RawFragment, u.ForceQuery = "", "", false
	return u, nil
}

// hostAllowed admits a host on port 443: named by the provider, matching
// its pattern, or allowed by the config. A request with a pattern names
// a URL the message chose (SNS's SigningCertURL): a config's host entry,
// meant for the key locations the config names (keys_url), does not
// widen it, or any .pem file on that host would sign messages; only an
// exact host:port entry does.
func (a allowList) hostAllowed(req provider.KeyRequest, host string) bool {
	if a.exact[net.JoinHostPort(host, "443")] {
		return true
	}
	if slices.ContainsFunc(req.Hosts, func(h string) bool { return strings.EqualFold(h, host) }) {
		return true
	}
	if req.HostPattern != nil {
		return req.HostPattern.MatchString(host)
	}
	return a.hosts[host]
}

// plainPath says a path is spelled the one way of its document, as a URL
// a message names must be: spellings a server reads alike ("%6b" for
// "k", "/a/../", "//") would each be a cache entry and a fetch of their
// own, and a flood of them would fetch at will and evict the others.
func plainPath(u *url.URL) bool {
	return u.RawPath == "" && (u.Path == "" || path.Clean(u.Path) == u.Path)
}

// validHost accepts a DNS name of letters, digits, hyphens and dots, or
// an IP address: nothing that could be read two ways (percent-escapes,
// a trailing dot, an IPv6 zone).
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Zone() == ""
	}
	if h[0] == '.' || h[len(h)-1] == '.' || strings.Contains(h, "..") {
		return false
	}
	for _, c := range []byte(h) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
