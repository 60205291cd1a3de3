package redisstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// DefaultKeyPrefix starts every key the gateway writes, so its keys are
// easy to find and to keep apart from an application's.
const DefaultKeyPrefix = "whgw"

// Config says how to reach Redis. It is meant to be embedded in the
// gateway's Caddy app config, hence the JSON tags and caddy.Duration.
//
// Exactly one of URL and Addresses names the server(s). The topology is
// always explicit: a single node unless Cluster or SentinelMaster says
// otherwise, never guessed from how many addresses are listed.
type Config struct {
	// URL is redis://[[user]:password@]host[:port][/db] or rediss://
	// for TLS. Port defaults to 6379. Username, Password, DB and TLS,
	// when set, override what the URL says.
	URL string `json:"url,omitempty"`

	// Addresses lists host:port pairs: the server, the cluster's seed
	// nodes, or the sentinels.
	Addresses []string `json:"addresses,omitempty"`

	// Username for Redis 6+ ACLs; empty means the default user.
	Username string `json:"username,omitempty"`

	// Password; give it as a {env.X} or {file./path} placeholder.
	Password string `json:"password,omitempty"`

	// DB is the database number, 0 by default; must be 0 with Cluster.
	DB int `json:"db,omitempty"`

	// TLS, when present (even empty), turns TLS on.
	TLS *TLSConfig `json:"tls,omitempty"`

	// Cluster selects Redis Cluster.
	Cluster bool `json:"cluster,omitempty"`

	// SentinelMaster selects Sentinel: the name of the monitored
	// master, with Addresses (or URL) naming the sentinels.
	SentinelMaster string `json:"sentinel_master,omitempty"`

	// KeyPrefix starts every key; default "whgw". It may not contain
	// braces, which would change the Cluster hash tag.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// DialTimeout bounds connecting; default 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// ReadTimeout bounds waiting for a reply; default 5s. A request's
	// own deadline, when shorter, applies too.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`

	// WriteTimeout bounds sending a command; default ReadTimeout.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// PoolSize is the number of connections per node; default 10 per
	// CPU (GOMAXPROCS).
	PoolSize int `json:"pool_size,omitempty"`
}

// TLSConfig holds the TLS settings; see Config.TLS.
type TLSConfig struct {
	// ServerName is the name the server's certificate must carry;
	// default the host dialled (each node's own, in a cluster).
	ServerName string `json:"server_name,omitempty"`

	// CAFile is a PEM file of the CA certificate(s) to trust instead
	// of the system's, for a server whose certificate a private CA
	// signed. It is read when the config is validated and the client
	// made; a client shared across reloads keeps what it read.
	CAFile string `json:"ca,omitempty"`

	// InsecureSkipVerify accepts any certificate. For tests only: it
	// leaves the connection open to interception.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Resolve returns c with resolve applied to every field that names a
// server or holds a credential, so that {env.*} and {file.*}
// placeholders there are expanded before c is validated. resolve gets
// the Caddyfile name of the field and its raw value.
func (c Config) Resolve(resolve func(option, raw string) (string, error)) (Config, error) {
	type field struct {
		name  string
		value *string
	}
	fields := []field{{"url", &c.URL}, {"username", &c.Username}, {"password", &c.Password}, {"sentinel_master", &c.SentinelMaster}}
	if c.TLS != nil {
		tls := *c.TLS
		c.TLS = &tls
		fields = append(fields, field{"tls", &tls.ServerName}, field{"tls_ca", &tls.CAFile})
	}
	c.Addresses = append([]string(nil), c.Addresses...)
	for i := range c.Addresses {
		fields = append(fields, field{fmt.Sprintf("addresses #%d", i+1), &c.Addresses[i]})
	}
	for _, f := range fields {
		v, err := resolve(f.name, *f.value)
		if err != nil {
			return Config{}, err
		}
		*f.value = v
	}
	return c, nil
}

// Validate reports the first invalid field, as Options would.
func (c Config) Validate() error {
	_, err := c.Options()
	return err
}

// Options validates c and builds go-redis options from it. Errors name
// the offending field and never echo the URL or password.
func (c Config) Options() (*redis.UniversalOptions, error) {
	opts := &redis.UniversalOptions{
		Username:     c.Username,
		Password:     c.Password,
		DB:           c.DB,
		MasterName:   c.SentinelMaster,
		PoolSize:     c.PoolSize,
		DialTimeout:  time.Duration(c.DialTimeout),
		ReadTimeout:  time.Duration(c.ReadTimeout),
		WriteTimeout: time.Duration(c.WriteTimeout),
		// Honour the request's deadline, so a slow Redis cannot hold a
		// webhook longer than the handler allows.
		ContextTimeoutEnabled: true,
		IsClusterMode:         c.Cluster,
	}
	useTLS, err := c.applyServers(opts)
	if err != nil {
		return nil, err
	}
	if err := c.validate(opts); err != nil {
		return nil, err
	}
	if useTLS || c.TLS != nil {
		if opts.TLSConfig, err = c.tlsConfig(); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// applyServers fills the addresses, from URL or Addresses, and reports
// whether the URL asked for TLS.
func (c Config) applyServers(opts *redis.UniversalOptions) (bool, error) {
	switch {
	case c.URL != "" && len(c.Addresses) > 0:
		return false, errors.New("url and addresses are mutually exclusive")
	case c.URL == "" && len(c.Addresses) == 0:
		return false, errors.New("url or addresses is required")
	case len(c.Addresses) > 0:
		for i, a := range c.Addresses {
			if err := checkAddress(a); err != nil {
				return false, fmt.Errorf("addresses[%d]: %w", i, err)
			}
		}
		opts.Addrs = append([]string(nil), c.Addresses...)
		return false, nil
	}
	u, err := parseURL(c.URL)
	if err != nil {
		return false, fmt.Errorf("url: %w", err)
	}
	opts.Addrs = []string{u.addr}
	if opts.Username == "" {
		opts.Username = u.username
	}
	if opts.Password == "" {
		opts.Password = u.password
	}
	if opts.DB == 0 {
		opts.DB = u.db
	}
	return u.tls, nil
}

func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return errors.New("want host:port")
	case host == "":
		return errors.New("missing host")
	case port == "":
		return errors.New("missing port")
	}
	return nil
}

// validate checks the fields that do not depend on where servers came
// from.
func (c Config) validate(opts *redis.UniversalOptions) error {
	switch {
	case c.Cluster && c.SentinelMaster != "":
		return errors.New("cluster and sentinel_master are mutually exclusive")
	case len(opts.Addrs) > 1 && !c.Cluster && c.SentinelMaster == "":
		return errors.New("addresses: several addresses need cluster or sentinel_master")
	case opts.DB < 0:
		return errors.New("db: must not be negative")
	case c.Cluster && opts.DB != 0:
		return errors.New("db: must be 0 with cluster")
	case strings.ContainsAny(c.KeyPrefix, "{}"):
		return errors.New("key_prefix: must not contain braces")
	case c.DialTimeout < 0:
		return errors.New("dial_timeout: must not be negative")
	case c.ReadTimeout < 0:
		return errors.New("read_timeout: must not be negative")
	case c.WriteTimeout < 0:
		return errors.New("write_timeout: must not be negative")
	case c.PoolSize < 0:
		return errors.New("pool_size: must not be negative")
	}
	return nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS == nil {
		return cfg, nil
	}
	cfg.ServerName = c.TLS.ServerName
	cfg.InsecureSkipVerify = c.TLS.InsecureSkipVerify
	if c.TLS.CAFile != "" {
		pool, err := loadCA(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// loadCA reads a PEM file into a pool of its own, so the system's roots
// are not trusted alongside it.
func loadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		// A key or a DER file here is a common slip; say what was
		// expected rather than failing later at the handshake.
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// keyPrefix is the prefix in effect.
func (c Config) keyPrefix() string {
	if c.KeyPrefix == "" {
		return DefaultKeyPrefix
	}
	return c.KeyPrefix
}
