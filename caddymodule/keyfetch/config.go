// Package keyfetch fetches the documents that some providers' signatures
// are checked with (AWS SNS certificates, Google's JWKS, Plaid's keys):
// the one provider.KeySource of the gateway. It answers from a bounded
// cache, runs one fetch per document however many deliveries wait for it,
// bounds every fetch in time and size, keeps failures for a while, paces
// each provider's fetches (refreshes of documents fetched before apart
// from new ones, which anyone may name), serves a document for a while
// past its expiry when its refetch is refused or fails, and reaches
// only https URLs on hosts the request's rules or the config
// admit, dialing only public addresses unless an allow entry names the
// exact host and port.
package keyfetch

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Bounds and defaults of Config.
const (
	DefaultTimeout      = 3 * time.Second
	MinTimeout          = 2 * time.Second
	MaxTimeout          = 5 * time.Second
	DefaultMaxBytes     = 64 << 10
	MaxMaxBytes         = 1 << 20
	DefaultCacheEntries = 256
)

// Config is the key_fetch block of the webhook_gateway app.
type Config struct {
	// Allow admits hosts beyond those each provider names itself
	// (Google's JWKS host, Plaid's API hosts, the SNS host pattern): a
	// route's keys_url must name one. "host" admits that host on port
	// 443 for the key locations the config names, never for one a
	// message names (SNS's SigningCertURL). "host:port" admits exactly
	// that host and port for every provider, and is the only way to
	// reach a loopback, private or link-local address (a key server
	// inside your network, a test server). Default: none.
	Allow []string `json:"allow,omitempty"`

	// Timeout bounds each fetch, from dialing to the last byte of the
	// body; from 2s to 5s. Default: 3s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MaxBytes caps a fetched document; a larger one is refused after
	// reading one byte past the cap. At most 1 MiB. Default: 65536
	// (64 KiB).
	MaxBytes int64 `json:"max_bytes,omitempty"`

	// CacheEntries bounds the cached documents, and apart from them the
	// cached failures, so that failures cannot evict good keys; the
	// least recently used go first. Default: 256.
	CacheEntries int `json:"cache_entries,omitempty"`

	// TLSCA is a PEM file of CA certificates trusted besides the
	// system's, for a key server whose certificate a private CA issued.
	// Certificates are always verified: there is no switch to skip it.
	TLSCA string `json:"tls_ca,omitempty"`
}

// Validate checks the config without reading files.
func (c Config) Validate() error {
	if _, err := parseAllow(c.Allow); err != nil {
		return err
	}
	if t := time.Duration(c.Timeout); t != 0 && (t < MinTimeout || t > MaxTimeout) {
		return fmt.Errorf("timeout %s is outside %s..%s", t, MinTimeout, MaxTimeout)
	}
	if c.MaxBytes < 0 || c.MaxBytes > MaxMaxBytes {
		return fmt.Errorf("max_bytes %d is outside 1..%d", c.MaxBytes, MaxMaxBytes)
	}
	if c.CacheEntries < 0 {
		return fmt.Errorf("cache_entries must not be negative")
	}
	return nil
}

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return time.Duration(c.Timeout)
}

func (c Config) maxBytes() int64 {
	if c.MaxBytes == 0 {
		return DefaultMaxBytes
	}
	return c.MaxBytes
}

func (c Config) cacheEntries() int {
	if c.CacheEntries == 0 {
		return DefaultCacheEntries
	}
	return c.CacheEntries
}

// rootCAs is the system's roots plus TLSCA's certificates.
func (c Config) rootCAs() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		// No system roots (a scratch container): only TLSCA is trusted.
		pool = x509.NewCertPool()
	}
	if c.TLSCA == "" {
		return pool, nil
	}
	b, err := os.ReadFile(c.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("tls_ca: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls_ca %s: no PEM certificate in it", c.TLSCA)
	}
	return pool, nil
}

// allowList is Config.Allow parsed: hosts admitted on port 443, and exact
// host:port pairs (the dial guard lets these reach any address).
type allowList struct {
	hosts map[string]bool // "host"
	exact map[string]bool // "host:port", as net.JoinHostPort writes it
}

func parseAllow(entries []string) (allowList, error) {
	a := allowList{hosts: map[string]bool{}, exact: map[string]bool{}}
	for _, e := range entries {
		host, port, err := splitAllow(e)
		if err != nil {
			return a, fmt.Errorf("allow %q: %w", e, err)
		}
		if port == "" {
			a.hosts[host] = true
		} else {
			a.exact[net.JoinHostPort(host, port)] = true
		}
	}
	return a, nil
}

// splitAllow reads "host", "host:port", "[v6]" or "[v6]:port".
func splitAllow(e string) (host, port string, err error) {
	e = strings.ToLower(e)
	host = e
	if strings.HasSuffix(e, "]") {
		host = strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")
	} else if strings.Contains(e, ":") {
		if host, port, err = net.SplitHostPort(e); err != nil {
			return "", "", fmt.Errorf("want host or host:port")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
			return "", "", fmt.Errorf("bad port %q", port)
		}
	}
	if !validHost(host) {
		return "", "", fmt.Errorf("want a host name or an IP address, with no scheme or path")
	}
	return host, port, nil
}
