package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/webrev/webhook-gateway/caddymodule/keyfetch"
)

// unmarshalKeyFetch reads the app's
//
//	key_fetch {
//		allow <host[:port]...>      # repeat to add more
//		timeout <duration>          # 2s to 5s; default 3s
//		max_bytes <size>            # default 64KiB
//		cache_entries <n>           # default 256
//		tls_ca <pem_file>
//	}
//
// Each value is checked at its line.
func unmarshalKeyFetch(d *caddyfile.Dispenser, c *keyfetch.Config) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := unmarshalKeyFetchOption(d, c); err != nil {
			return err
		}
	}
	return nil
}

func unmarshalKeyFetchOption(d *caddyfile.Dispenser, c *keyfetch.Config) error {
	switch opt := d.Val(); opt {
	case "allow":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		for _, a := range args {
			if err := (keyfetch.Config{Allow: []string{a}}).Validate(); err != nil {
				return d.Errf("key_fetch %v", err)
			}
		}
		c.Allow = append(c.Allow, args...)
	case "timeout":
		if err := parseDuration(d, &c.Timeout); err != nil {
			return err
		}
		if t := time.Duration(c.Timeout); t < keyfetch.MinTimeout || t > keyfetch.MaxTimeout {
			return d.Errf("key_fetch timeout %s is outside %s..%s", t, keyfetch.MinTimeout, keyfetch.MaxTimeout)
		}
	case "max_bytes":
		if err := parseSize(d, &c.MaxBytes); err != nil {
			return err
		}
		if c.MaxBytes > keyfetch.MaxMaxBytes {
			return d.Errf("key_fetch max_bytes %d is above %d (1 MiB)", c.MaxBytes, keyfetch.MaxMaxBytes)
		}
	case "cache_entries":
		if err := parseInt(d, &c.CacheEntries); err != nil {
			return err
		}
		if c.CacheEntries < 1 {
			return d.Errf("key_fetch cache_entries must be at least 1")
		}
	case "tls_ca":
		v, err := oneArg(d)
		c.TLSCA = v
		return err
	default:
		return d.Errf("unknown key_fetch option %q", opt)
	}
	return nil
}
