package redisstore

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, o *redis.UniversalOptions)
	}{
		{"url with everything", Config{URL: "redis://user:p%40ss@cache.internal:6380/3"}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "addrs", strings.Join(o.Addrs, ","), "cache.internal:6380")
			want(t, "username", o.Username, "user")
			want(t, "password", o.Password, "p@ss")
			want(t, "db", o.DB, 3)
			want(t, "tls", o.TLSConfig == nil, true)
			want(t, "cluster", o.IsClusterMode, false)
		}},
		{"url defaults", Config{URL: "redis://localhost"}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "addrs", strings.Join(o.Addrs, ","), "localhost:6379")
			want(t, "db", o.DB, 0)
		}},
		{"password only", Config{URL: "redis://:secret@h:1/0"}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "username", o.Username, "")
			want(t, "password", o.Password, "secret")
		}},
		{"ipv6", Config{URL: "redis://[::1]:7000"}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "addrs", strings.Join(o.Addrs, ","), "[::1]:7000")
		}},
		{"rediss enables tls", Config{URL: "rediss://h:1"}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "tls", o.TLSConfig != nil, true)
			want(t, "server name", o.TLSConfig.ServerName, "")
			want(t, "min version", o.TLSConfig.MinVersion, uint16(0x0303))
		}},
		{"fields override url", Config{URL: "redis://u:p@h:1/2", Username: "v", Password: "q", DB: 5}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "username", o.Username, "v")
			want(t, "password", o.Password, "q")
			want(t, "db", o.DB, 5)
		}},
		{"tls block", Config{Addresses: []string{"h:1"}, TLS: &TLSConfig{ServerName: "redis.example", InsecureSkipVerify: true}}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "server name", o.TLSConfig.ServerName, "redis.example")
			want(t, "insecure", o.TLSConfig.InsecureSkipVerify, true)
		}},
		{"cluster with one seed", Config{Addresses: []string{"h:1"}, Cluster: true}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "cluster", o.IsClusterMode, true)
		}},
		{"sentinel", Config{Addresses: []string{"s1:26379", "s2:26379"}, SentinelMaster: "mymaster", DB: 1}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "master", o.MasterName, "mymaster")
			want(t, "addrs", len(o.Addrs), 2)
			want(t, "db", o.DB, 1)
		}},
		{"timeouts and pool", Config{URL: "redis://h", DialTimeout: caddy.Duration(time.Second), ReadTimeout: caddy.Duration(2 * time.Second), WriteTimeout: caddy.Duration(3 * time.Second), PoolSize: 7}, func(t *testing.T, o *redis.UniversalOptions) {
			want(t, "dial", o.DialTimeout, time.Second)
			want(t, "read", o.ReadTimeout, 2*time.Second)
			want(t, "write", o.WriteTimeout, 3*time.Second)
			want(t, "pool", o.PoolSize, 7)
			want(t, "context timeouts", o.ContextTimeoutEnabled, true)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.cfg.Options()
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestOptionsErrors(t *testing.T) {
	// A key where the CA belongs is the likely slip: PEM, but no
	// certificate.
	dir := t.TempDir()
	keyOnly := filepath.Join(dir, "key.pem")
	notPEM := filepath.Join(dir, "ca.der")
	if err := os.WriteFile(keyOnly, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPEM, []byte{0x30, 0x82, 0x01, 0x0a}, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing", Config{}, "url or addresses is required"},
		{"both", Config{URL: "redis://h", Addresses: []string{"h:1"}}, "url and addresses are mutually exclusive"},
		{"bad scheme", Config{URL: "http://h"}, `url: scheme "http" is not redis or rediss`},
		{"unparseable", Config{URL: "redis://user:hunter2@h:port"}, "url: not a valid URL"},
		{"no host", Config{URL: "redis:///0"}, "url: missing host"},
		{"bad db", Config{URL: "redis://h/x"}, "url: path must be a database number"},
		{"query", Config{URL: "redis://h?dial_timeout=1s"}, "url: query and fragment are not supported"},
		{"address without port", Config{Addresses: []string{"h:1", "h"}, Cluster: true}, "addresses[1]: want host:port"},
		{"address without host", Config{Addresses: []string{":1"}}, "addresses[0]: missing host"},
		{"several without topology", Config{Addresses: []string{"a:1", "b:1"}}, "addresses: several addresses need cluster or sentinel_master"},
		{"cluster and sentinel", Config{Addresses: []string{"a:1"}, Cluster: true, SentinelMaster: "m"}, "cluster and sentinel_master are mutually exclusive"},
		{"cluster db", Config{URL: "redis://h/2", Cluster: true}, "db: must be 0 with cluster"},
		{"negative db", Config{URL: "redis://h", DB: -1}, "db: must not be negative"},
		{"braces in prefix", Config{URL: "redis://h", KeyPrefix: "a{b}"}, "key_prefix: must not contain braces"},
		{"negative dial", Config{URL: "redis://h", DialTimeout: -1}, "dial_timeout: must not be negative"},
		{"negative read", Config{URL: "redis://h", ReadTimeout: -1}, "read_timeout: must not be negative"},
		{"negative write", Config{URL: "redis://h", WriteTimeout: -1}, "write_timeout: must not be negative"},
		{"negative pool", Config{URL: "redis://h", PoolSize: -1}, "pool_size: must not be negative"},
		{"missing ca file", Config{URL: "rediss://h", TLS: &TLSConfig{CAFile: filepath.Join(dir, "missing.pem")}}, "tls.ca: reading CA file: open "},
		{"ca file is a directory", Config{URL: "rediss://h", TLS: &TLSConfig{CAFile: dir}}, "tls.ca: reading CA file: "},
		{"ca file without certificate", Config{URL: "rediss://h", TLS: &TLSConfig{CAFile: keyOnly}}, "tls.ca: no PEM certificate in " + keyOnly},
		{"ca file not pem", Config{Addresses: []string{"h:1"}, TLS: &TLSConfig{CAFile: notPEM}}, "tls.ca: no PEM certificate in " + notPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.Options()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
			if tt.cfg.Validate() == nil {
				t.Error("Validate accepted what Options refused")
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	var cfg Config
	in := `{"url":"rediss://h","tls":{"server_name":"n","ca":"/etc/redis/ca.pem"},"cluster":true,"key_prefix":"p","dial_timeout":"2s","read_timeout":"1d","pool_size":3}`
	if err := json.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	want(t, "dial", time.Duration(cfg.DialTimeout), 2*time.Second)
	want(t, "read", time.Duration(cfg.ReadTimeout), 24*time.Hour)
	want(t, "tls", cfg.TLS != nil && cfg.TLS.ServerName == "n", true)
	want(t, "ca", cfg.TLS.CAFile, "/etc/redis/ca.pem")
	want(t, "cluster", cfg.Cluster, true)
	want(t, "prefix", cfg.keyPrefix(), "p")
	want(t, "default prefix", Config{}.keyPrefix(), DefaultKeyPrefix)
}

func TestClientKind(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		cluster bool
	}{
		{"single address is a single node", Config{Addresses: []string{"127.0.0.1:1"}}, false},
		{"cluster is explicit", Config{Addresses: []string{"127.0.0.1:1"}, Cluster: true}, true},
		{"sentinel is not a cluster", Config{Addresses: []string{"127.0.0.1:1", "127.0.0.1:2"}, SentinelMaster: "m"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, isCluster := c.Redis().(*redis.ClusterClient)
			want(t, "cluster client", isCluster, tt.cluster)
		})
	}
}
