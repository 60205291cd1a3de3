package caddymodule

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// unmarshalQueue reads the handler's queue block:
//
//	queue {
//		to <url>                         # required
//		timeout <duration>
//		retry <attempts> [<first> [<largest>]]
//		schedule <duration...>           # instead of retry's delays
//		concurrency <n>
//		rate <n>/<unit> [burst <n>]
//		order <placeholder>
//		retention <duration>
//		dead_retention <duration>
//		max_queued <n>
//		max_queued_bytes <size>
//		partitions <n>
//		tls_ca <pem_file>
//		tls_insecure_skip_verify
//		header_up <name> <value>         # repeatable
//		dead_on <status...>
//		answer <2xx>
//		durability replicated
//	}
//
// A whole block that cannot work is refused with the line of `queue`.
func (h *Handler) unmarshalQueue(d *caddyfile.Dispenser) error {
	at := d.Token()
	if d.NextArg() {
		return d.Errf("queue takes no arguments: its name is the handler's source")
	}
	if h.Queue != nil {
		return d.Errf("a second queue block: a handler has one queue")
	}
	cfg := new(queue.Config)
	var retry, schedule bool
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "retry":
			retry = true
		case "schedule":
			schedule = true
		}
		if retry && schedule {
			return d.Errf("queue: retry and schedule cannot be combined: schedule lists the delays itself")
		}
		if err := unmarshalQueueOption(d, cfg); err != nil {
			return err
		}
	}
	// Check a copy with the defaults filled in; the JSON keeps only
	// what was written.
	checked := *cfg
	if cfg.Rate != nil {
		rate := *cfg.Rate
		checked.Rate = &rate
	}
	checked.Provision()
	if err := checked.Validate(); err != nil {
		return fmt.Errorf("queue: %v, at %s:%d", err, at.File, at.Line)
	}
	h.Queue = cfg
	return nil
}

func unmarshalQueueOption(d *caddyfile.Dispenser, c *queue.Config) error {
	durations := map[string]*caddy.Duration{"timeout": &c.Timeout, "retention": &c.Retention, "dead_retention": &c.DeadRetention}
	ints := map[string]*int{"concurrency": &c.Concurrency, "partitions": &c.Partitions}
	opt := d.Val()
	if p, ok := durations[opt]; ok {
		return parseDuration(d, p)
	}
	if p, ok := ints[opt]; ok {
		return parsePositive(d, p)
	}
	switch opt {
	case "to":
		v, err := oneArg(d)
		c.To = v
		return err
	case "retry":
		return parseRetry(d, c)
	case "schedule":
		return parseSchedule(d, c)
	case "rate":
		return parseQueueRate(d, c)
	case "order":
		v, err := oneArg(d)
		c.Order = v
		return err
	case "max_queued":
		var n int
		err := parsePositive(d, &n)
		c.MaxQueued = int64(n)
		return err
	case "max_queued_bytes":
		return parseSize(d, &c.MaxQueuedBytes)
	case "tls_ca":
		v, err := oneArg(d)
		c.TLSCA = v
		return err
	case "tls_insecure_skip_verify":
		c.TLSInsecureSkipVerify = true
		return noArgs(d)
	case "header_up":
		var f queue.HeaderField
		if !d.AllArgs(&f.Name, &f.Value) {
			return d.ArgErr()
		}
		c.HeaderUp = append(c.HeaderUp, f)
		return nil
	case "dead_on":
		return parseDeadOn(d, c)
	case "answer":
		return parseAnswer(d, c)
	case "durability":
		v, err := oneArg(d)
		if err == nil && v != "replicated" {
			return d.Errf("bad durability %q: want replicated (or no durability line)", v)
		}
		c.Durability = v
		return err
	}
	return d.Errf("unknown queue option %q", opt)
}

// parseRetry reads `retry <attempts> [<first delay> [<largest delay>]]`.
func parseRetry(d *caddyfile.Dispenser, c *queue.Config) error {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 3 {
		return d.Errf("retry wants <attempts> [<first delay> [<largest delay>]], such as retry 12 5s 6h")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 {
		return d.Errf("bad retry attempts %q: want a positive number", args[0])
	}
	c.Attempts = n
	delays := []*caddy.Duration{&c.FirstDelay, &c.MaxDelay}
	for i, arg := range args[1:] {
		dur, err := positiveDuration(arg)
		if err != nil {
			return d.Errf("bad retry delay %q: want a positive duration such as 5s", arg)
		}
		*delays[i] = dur
	}
	return nil
}

func parseSchedule(d *caddyfile.Dispenser, c *queue.Config) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, arg := range args {
		dur, err := positiveDuration(arg)
		if err != nil {
			return d.Errf("bad schedule delay %q: want a positive duration such as 5m", arg)
		}
		c.Schedule = append(c.Schedule, dur)
	}
	return nil
}

// parseQueueRate reads `rate <n>/<unit> [burst <n>]`, as rate_limit does
// but without a key: the queue's rate is the destination's.
func parseQueueRate(d *caddyfile.Dispenser, c *queue.Config) error {
	var rl RateLimit
	if err := parseRateLimit(d, &rl); err != nil {
		return err
	}
	if rl.Key != "" {
		return d.Errf("a queue's rate takes no key: it limits attempts to `to`, whatever the event")
	}
	c.Rate = &queue.Rate{Count: rl.Count, Period: rl.Period, Burst: rl.Burst}
	return nil
}

func parseDeadOn(d *caddyfile.Dispenser, c *queue.Config) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, arg := range args {
		s, err := strconv.Atoi(arg)
		if err != nil || s < 100 || s > 599 || (s >= 200 && s < 300) {
			return d.Errf("bad dead_on status %q: want a failing HTTP status such as 400", arg)
		}
		c.DeadOn = append(c.DeadOn, s)
	}
	return nil
}

func parseAnswer(d *caddyfile.Dispenser, c *queue.Config) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	s, err := strconv.Atoi(v)
	if err != nil || s < 200 || s > 299 {
		return d.Errf("bad answer %q: want a 2xx status, which tells the provider the event was accepted", v)
	}
	c.Answer = s
	return nil
}

// parsePositive reads one positive number.
func parsePositive(d *caddyfile.Dispenser, dst *int) error {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return d.Errf("bad %s %q: want a positive number", opt, v)
	}
	*dst = n
	return nil
}

func positiveDuration(s string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(s)
	if err == nil && dur <= 0 {
		err = fmt.Errorf("not positive")
	}
	return caddy.Duration(dur), err
}
