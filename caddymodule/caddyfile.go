package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/webrev/webhook-gateway/caddymodule/keyfetch"
	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/redisstore"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("webhook_gateway", parseCaddyfile)
	// After basic_auth, so it runs before handle, route, respond and
	// reverse_proxy; inside a route the written order holds.
	httpcaddyfile.RegisterDirectiveOrder("webhook_gateway", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterGlobalOption("webhook_gateway", parseGlobalOption)
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next()
	at := h.Token()
	h.Reset()
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, claimSource(h.State, handler, at)
}

// sourcesKey holds, in the adapter's state, which handler took each
// source first.
const sourcesKey = "webhook_gateway.sources"

// sourceClaim is a handler written in the Caddyfile that uses a source.
type sourceClaim struct {
	at       string // file:line of the directive
	explicit bool
}

// claimSource refuses a handler that would share a source with another
// handler without both saying so: two routes of one provider (two
// Telegram bots) would otherwise share rate buckets and idempotency
// keys, and a default name picked for them now could not be changed
// later without losing that state. The adapter's State lives for the
// whole Caddyfile; a block served on several addresses is parsed once,
// and a directive is told apart by where it is written, so one written
// handler never collides with itself.
func claimSource(state map[string]any, h *Handler, tok caddyfile.Token) error {
	seen, _ := state[sourcesKey].(map[string]sourceClaim)
	if seen == nil {
		seen = make(map[string]sourceClaim)
		state[sourcesKey] = seen
	}
	this := sourceClaim{at: fmt.Sprintf("%s:%d", tok.File, tok.Line), explicit: h.Source != ""}
	first, ok := seen[h.source()]
	switch {
	case !ok:
		seen[h.source()] = this
		return nil
	case first.at == this.at || first.explicit && this.explicit:
		return nil
	}
	return fmt.Errorf("webhook_gateway %s at %s and the one at %s would share the source %q (rate limits, idempotency keys): give each an explicit `source <name>`",
		h.Provider, this.at, first.at, h.source())
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	webhook_gateway <provider> {
//		secret <secret>             # repeat to accept several
//		tolerance <duration>|off
//		public_url <url>
//		max_body <size>
//		methods <method...>
//		event_id header|json <name>
//		event_type header|json <name>
//		refusal_status <4xx>
//		verify_token <token>
//		webhook_id <id>
//		topics <arn...>             # repeat to add more
//		audience <value>
//		service_account <email>
//		client_id <id>
//		keys_url <url>
//		source <name>
//		rate_limit <n>/<s|m|h> [burst <n>] [key <placeholder>]
//		flood_limit <n>/<s|m|h> [burst <n>] [key <placeholder>]
//		idempotency <retention>|off {
//			key <placeholder>
//			lease <duration>
//			store_response <size>
//			store_status <code|class...>  # e.g. 409 4xx; 2xx is always stored
//			on_store_error reject|allow
//		}
//		on_store_error reject|allow
//		store_timeout <duration>
//		log_body [<size>]           # default size 4KiB
//		keep_credentials
//		scheme hmac { … }           # a provider that is not built in
//		queue { … }                 # durable delivery; see unmarshalQueue
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if !d.NextArg() {
		return d.Err("webhook_gateway needs a provider name, e.g. `webhook_gateway stripe`")
	}
	h.Provider = d.Val()
	nameToken := d.Token()
	if d.NextArg() {
		return d.ArgErr()
	}
	var idemToken, queueToken caddyfile.Token
	optionTokens := map[string]caddyfile.Token{}
	for d.NextBlock(0) {
		switch d.Val() {
		case "idempotency":
			idemToken = d.Token()
		case "queue":
			queueToken = d.Token()
		}
		if _, seen := optionTokens[d.Val()]; !seen {
			optionTokens[d.Val()] = d.Token()
		}
		if err := h.unmarshalOption(d); err != nil {
			return err
		}
	}
	if !h.hasCustomScheme() {
		if _, ok := provider.Lookup(h.Provider); !ok {
			// Point at the name, not at the end of the block we had to read
			// to know that no scheme describes it.
			return fmt.Errorf("unknown provider %q: run `webhook-gateway providers` for the list, or add a `scheme hmac { … }` or `scheme token { … }` block, at %s:%d",
				h.Provider, nameToken.File, nameToken.Line)
		}
	}
	if p, err := h.resolveProvider(); err == nil {
		if err := h.checkIdempotencyKey(p); err != nil {
			return fmt.Errorf("%v, at %s:%d", err, idemToken.File, idemToken.Line)
		}
		if err := h.checkLiteralSecrets(p); err != nil {
			return fmt.Errorf("%v, at %s:%d", err, nameToken.File, nameToken.Line)
		}
		if err := h.checkQueueable(p); err != nil {
			return fmt.Errorf("%v, at %s:%d", err, queueToken.File, queueToken.Line)
		}
		if opt := h.unreadKeyOption(p); opt != "" {
			tok := optionTokens[opt]
			return fmt.Errorf("provider %s does not read %s, at %s:%d", p.Name, opt, tok.File, tok.Line)
		}
	}
	if len(h.Secrets) == 0 && needsSecret(h) {
		return d.Errf("provider %s: no secret configured (add `secret {env.NAME}`)", h.Provider)
	}
	return nil
}

// checkLiteralSecrets builds the verifier now when every secret is
// written out, so that a secret the scheme cannot use (a public key where
// an HMAC secret was expected, say) is refused with its line; secrets
// given as placeholders are only known, and checked, at provision.
func (h *Handler) checkLiteralSecrets(p *provider.Provider) error {
	if len(h.Secrets) == 0 || hasPlaceholder(h.Secrets...) ||
		hasPlaceholder(append([]string{h.WebhookID, h.Audience, h.ServiceAccount, h.ClientID, h.KeysURL}, h.Topics...)...) {
		return nil
	}
	var keys provider.KeySource
	if p.Secretless || len(p.Options) > 0 {
		// A verifier of fetched keys wants a key source to build; this
		// one is never called.
		f, err := keyfetch.New(keyfetch.Config{})
		if err != nil {
			return err
		}
		keys = f
	}
	cfg := h.verifierConfig(h.Secrets, keys)
	cfg.Topics = h.Topics
	_, err := p.NewVerifier(cfg)
	return err
}

func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); opt {
	case "secret":
		s, err := startupArg(d)
		h.Secrets = append(h.Secrets, s)
		return err
	case "tolerance":
		return parseTolerance(d, &h.Tolerance)
	case "public_url":
		s, err := startupArg(d)
		h.PublicURL = s
		return err
	case "max_body":
		return parseSize(d, &h.MaxBody)
	case "methods":
		h.Methods = d.RemainingArgs()
		if len(h.Methods) == 0 {
			return d.ArgErr()
		}
		return nil
	case "event_id":
		return parseField(d, &h.EventID)
	case "event_type":
		return parseField(d, &h.EventType)
	case "refusal_status":
		if err := parseInt(d, &h.RefusalStatus); err != nil {
			return err
		}
		if err := checkRefusalStatus(h.RefusalStatus); err != nil {
			return d.Err(err.Error())
		}
		return nil
	case "verify_token":
		s, err := startupArg(d)
		h.VerifyToken = s
		return err
	case "webhook_id":
		s, err := startupArg(d)
		h.WebhookID = s
		return err
	case "topics":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		for _, a := range args {
			h.Topics = append(h.Topics, unshortenFile(a))
		}
		return nil
	case "audience":
		return startupArgTo(d, &h.Audience)
	case "service_account":
		return startupArgTo(d, &h.ServiceAccount)
	case "client_id":
		return startupArgTo(d, &h.ClientID)
	case "keys_url":
		return startupArgTo(d, &h.KeysURL)
	case "scheme":
		return h.unmarshalScheme(d)
	case "source":
		s, err := oneArg(d)
		h.Source = s
		return err
	case "rate_limit":
		h.RateLimit = new(RateLimit)
		return parseRateLimit(d, h.RateLimit)
	case "flood_limit":
		h.FloodLimit = new(RateLimit)
		return parseRateLimit(d, h.FloodLimit)
	case "idempotency":
		return h.unmarshalIdempotency(d)
	case "queue":
		return h.unmarshalQueue(d)
	case "on_store_error":
		return parseOnStoreError(d, &h.OnStoreError)
	case "store_timeout":
		return parseDuration(d, &h.StoreTimeout)
	case "keep_credentials":
		h.KeepCredentials = true
		return noArgs(d)
	case "log_body":
		h.LogBody = 4 << 10
		if d.CountRemainingArgs() == 0 {
			return nil
		}
		return parseSize(d, &h.LogBody)
	default:
		return d.Errf("unknown webhook_gateway option %q", opt)
	}
}

func (h *Handler) unmarshalScheme(d *caddyfile.Dispenser) error {
	kind, err := oneArgKeepBlock(d)
	if err != nil {
		return err
	}
	if h.hasCustomScheme() {
		return d.Errf("a second scheme block: a route has one scheme")
	}
	switch kind {
	case "hmac":
	case "token":
		return h.unmarshalTokenScheme(d)
	default:
		return d.Errf("unknown scheme %q (known: hmac, token)", kind)
	}
	h.HMAC = new(provider.HMAC)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := unmarshalHMAC(d, h.HMAC); err != nil {
			return err
		}
	}
	if err := h.HMAC.Validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// unmarshalTokenScheme reads `scheme token { header <name> | query <name>
// | basic; prefix <text> }`.
func (h *Handler) unmarshalTokenScheme(d *caddyfile.Dispenser) error {
	h.Token = new(provider.Token)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch opt := d.Val(); opt {
		case "header":
			h.Token.Header, err = oneArg(d)
		case "query":
			h.Token.Query, err = oneArg(d)
		case "prefix":
			h.Token.Prefix, err = oneArg(d)
		case "basic":
			h.Token.Basic = true
			if d.NextArg() {
				err = d.ArgErr()
			}
		default:
			err = d.Errf("unknown token scheme option %q (known: header, query, prefix, basic)", opt)
		}
		if err != nil {
			return err
		}
	}
	if err := h.Token.Validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

func unmarshalHMAC(d *caddyfile.Dispenser, s *provider.HMAC) error {
	str := map[string]*string{
		"prefix":         &s.Prefix,
		"signature_key":  &s.SignatureKey,
		"timestamp_key":  &s.TimestampKey,
		"pair_separator": &s.PairSeparator,
		"key_separator":  &s.KeySeparator,
		"content":        &s.Content,
	}
	list := map[string]*[]string{
		"header":           &s.Header,
		"timestamp_header": &s.TimestampHeader,
		"id_header":        &s.IDHeader,
	}
	opt := d.Val()
	if p, ok := str[opt]; ok {
		v, err := oneArg(d)
		*p = v
		return err
	}
	if p, ok := list[opt]; ok {
		*p = d.RemainingArgs()
		if len(*p) == 0 {
			return d.ArgErr()
		}
		return nil
	}
	v, err := oneArg(d)
	switch opt {
	case "algorithm":
		s.Algorithm = provider.Algorithm(v)
	case "encoding":
		s.Encoding = provider.Encoding(v)
	case "timestamp_format":
		s.TimestampFormat = provider.TimestampFormat(v)
	case "secret_encoding":
		s.SecretEncoding = provider.SecretEncoding(v)
	default:
		return d.Errf("unknown hmac scheme option %q", opt)
	}
	return err
}

// startupArg reads the one argument of an option that Provision
// resolves (see resolveOption).
func startupArg(d *caddyfile.Dispenser) (string, error) {
	v, err := oneArg(d)
	return unshortenFile(v), err
}

// unshortenFile undoes the adapter's rewrite of {file.name} into a path
// placeholder: in an option resolved at start-up, {file.…} means a
// file's contents.
func unshortenFile(s string) string {
	const short = "{http.request.uri.path.file."
	if rest, ok := strings.CutPrefix(s, short); ok {
		return "{file." + rest
	}
	return s
}

// startupArgTo is startupArg into dst, refusing a second occurrence: a
// value set twice would silently replace the first.
func startupArgTo(d *caddyfile.Dispenser, dst *string) error {
	if *dst != "" {
		return d.Errf("%s is set twice", d.Val())
	}
	v, err := startupArg(d)
	*dst = v
	return err
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	var v string
	if !d.AllArgs(&v) {
		return "", d.ArgErr()
	}
	return v, nil
}

// oneArgKeepBlock reads one argument followed by a block.
func oneArgKeepBlock(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// unmarshalIdempotency reads `idempotency <retention>|off { … }`.
func (h *Handler) unmarshalIdempotency(d *caddyfile.Dispenser) error {
	arg, err := oneArgKeepBlock(d)
	if err != nil {
		return err
	}
	if arg == "off" {
		h.Idempotency = nil
		if d.NextBlock(d.Nesting()) {
			return d.Err("idempotency off takes no block")
		}
		return nil
	}
	idem := new(Idempotency)
	dur, err := caddy.ParseDuration(arg)
	if err != nil || dur <= 0 {
		return d.Errf("bad idempotency retention %q: want a positive duration such as 24h, or off", arg)
	}
	idem.Retention = caddy.Duration(dur)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "key":
			if idem.Key, err = oneArg(d); err != nil {
				return err
			}
		case "lease":
			if err := parseDuration(d, &idem.Lease); err != nil {
				return err
			}
		case "store_response":
			if err := parseSize(d, &idem.StoreResponse); err != nil {
				return err
			}
		case "store_status":
			if idem.StoreStatus = d.RemainingArgs(); len(idem.StoreStatus) == 0 {
				return d.ArgErr()
			}
			if _, err := parseStatusSet(idem.StoreStatus); err != nil {
				return d.Errf("%v", err)
			}
		case "on_store_error":
			if err := parseOnStoreError(d, &h.OnStoreError); err != nil {
				return err
			}
		default:
			return d.Errf("unknown idempotency option %q", opt)
		}
	}
	h.Idempotency = idem
	return nil
}

// parseRateLimit reads `<n>/<unit> [burst <n>] [key <placeholder>]`.
func parseRateLimit(d *caddyfile.Dispenser, rl *RateLimit) error {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args)%2 == 0 {
		return d.ArgErr()
	}
	count, per, ok := strings.Cut(args[0], "/")
	n, err := strconv.ParseInt(count, 10, 64)
	if !ok || err != nil || n <= 0 {
		return d.Errf("bad rate %q: want <count>/<unit>, such as 50/s or 1000/m", args[0])
	}
	period, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[per]
	if !ok {
		if period, err = caddy.ParseDuration(per); err != nil || period <= 0 {
			return d.Errf("bad rate unit %q in %q: want s, m, h or a duration", per, args[0])
		}
	}
	rl.Count, rl.Period = n, caddy.Duration(period)
	for i := 1; i < len(args); i += 2 {
		switch args[i] {
		case "burst":
			b, err := strconv.ParseInt(args[i+1], 10, 64)
			if err != nil || b <= 0 {
				return d.Errf("bad burst %q: want a positive number", args[i+1])
			}
			rl.Burst = b
		case "key":
			rl.Key = args[i+1]
		default:
			return d.Errf("unknown rate limit option %q (known: burst, key)", args[i])
		}
	}
	return nil
}

func parseOnStoreError(d *caddyfile.Dispenser, dst *string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	if v != "reject" && v != "allow" {
		return d.Errf("bad on_store_error %q: want reject or allow", v)
	}
	*dst = v
	return nil
}

func parseDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	dur, err := positiveDuration(v)
	if err != nil {
		return d.Errf("bad duration %q: want a positive duration such as 30s", v)
	}
	*dst = dur
	return nil
}

func parseTolerance(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	if v == "off" {
		*dst = -1
		return nil
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return d.Errf("bad tolerance %q: want a positive duration such as 5m, or off", v)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// parseSize reads a size written as one token (1MiB) or two (1 MiB).
func parseSize(d *caddyfile.Dispenser, dst *int64) error {
	opt := d.Val()
	args := d.RemainingArgs()
	v := strings.Join(args, " ")
	if len(args) == 0 || len(args) > 2 {
		return d.Errf("%s wants one size, such as 512KiB or 1 MiB; got %d arguments", opt, len(args))
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n == 0 || n > 1<<40 {
		return d.Errf("bad size %q for %s: want a size such as 512KiB or 1 MiB", v, opt)
	}
	*dst = int64(n)
	return nil
}

func parseInt(d *caddyfile.Dispenser, dst *int) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return d.Errf("bad number %q", v)
	}
	*dst = n
	return nil
}

func parseField(d *caddyfile.Dispenser, dst *[]provider.Field) error {
	var kind, name string
	if !d.AllArgs(&kind, &name) {
		return d.ArgErr()
	}
	switch kind {
	case "header":
		*dst = append(*dst, provider.Field{Header: name})
	case "json":
		*dst = append(*dst, provider.Field{JSON: name})
	default:
		return d.Errf("bad source %q: want header or json", kind)
	}
	return nil
}

// parseGlobalOption reads the global `webhook_gateway { … }` block into
// the app's config.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: appName, Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the global option block:
//
//	webhook_gateway {
//		redis <url>                 # or a block, below
//		memory_max_entries <n>
//		memory_max_bytes <size>
//		flood_max_entries <n>
//		key_fetch { … }             # see unmarshalKeyFetch
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "redis":
			a.Redis = new(redisstore.Config)
			if err := unmarshalRedis(d, a.Redis); err != nil {
				return err
			}
		case "memory_max_entries":
			if err := parseInt(d, &a.MemoryMaxEntries); err != nil {
				return err
			}
		case "memory_max_bytes":
			if err := parseSize(d, &a.MemoryMaxBytes); err != nil {
				return err
			}
		case "flood_max_entries":
			if err := parseInt(d, &a.FloodMaxEntries); err != nil {
				return err
			}
		case "key_fetch":
			if a.KeyFetch != nil {
				return d.Err("key_fetch is set twice")
			}
			a.KeyFetch = new(keyfetch.Config)
			if err := unmarshalKeyFetch(d, a.KeyFetch); err != nil {
				return err
			}
		default:
			return d.Errf("unknown webhook_gateway global option %q", opt)
		}
	}
	return nil
}

// unmarshalRedis reads `redis <url>` or
//
//	redis {
//		url <url>
//		addresses <host:port...>
//		username <name>
//		password <password>
//		db <n>
//		tls [server_name]
//		tls_ca <pem_file>
//		tls_insecure_skip_verify
//		cluster
//		sentinel_master <name>
//		key_prefix <prefix>
//		dial_timeout|read_timeout|write_timeout <duration>
//		pool_size <n>
//	}
func unmarshalRedis(d *caddyfile.Dispenser, c *redisstore.Config) error {
	if d.NextArg() {
		c.URL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := unmarshalRedisOption(d, c); err != nil {
			return err
		}
	}
	if c.URL == "" && len(c.Addresses) == 0 {
		return d.Err("redis needs a URL or addresses")
	}
	return nil
}

func unmarshalRedisOption(d *caddyfile.Dispenser, c *redisstore.Config) error {
	strs := map[string]*string{"url": &c.URL, "username": &c.Username, "password": &c.Password, "sentinel_master": &c.SentinelMaster, "key_prefix": &c.KeyPrefix}
	durs := map[string]*caddy.Duration{"dial_timeout": &c.DialTimeout, "read_timeout": &c.ReadTimeout, "write_timeout": &c.WriteTimeout}
	opt := d.Val()
	if p, ok := strs[opt]; ok {
		v, err := oneArg(d)
		*p = v
		return err
	}
	if p, ok := durs[opt]; ok {
		return parseDuration(d, p)
	}
	switch opt {
	case "addresses":
		if c.Addresses = d.RemainingArgs(); len(c.Addresses) == 0 {
			return d.ArgErr()
		}
	case "db":
		return parseInt(d, &c.DB)
	case "pool_size":
		return parseInt(d, &c.PoolSize)
	case "cluster":
		c.Cluster = true
		return noArgs(d)
	case "tls":
		if c.TLS == nil {
			c.TLS = new(redisstore.TLSConfig)
		}
		if d.NextArg() {
			c.TLS.ServerName = d.Val()
		}
		return noArgs(d)
	case "tls_ca":
		if c.TLS == nil {
			c.TLS = new(redisstore.TLSConfig)
		}
		v, err := oneArg(d)
		c.TLS.CAFile = v
		return err
	case "tls_insecure_skip_verify":
		if c.TLS == nil {
			c.TLS = new(redisstore.TLSConfig)
		}
		c.TLS.InsecureSkipVerify = true
		return noArgs(d)
	default:
		return d.Errf("unknown redis option %q", opt)
	}
	return nil
}

func noArgs(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
