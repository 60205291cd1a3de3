package caddymodule

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("webhook_gateway", parseCaddyfile)
	// After basic_auth, so it runs before handle, route, respond and
	// reverse_proxy; inside a route the written order holds.
	httpcaddyfile.RegisterDirectiveOrder("webhook_gateway", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterGlobalOption("webhook_gateway", parseGlobalOption)
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
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
//		scheme hmac { … }           # a provider that is not built in
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
	for d.NextBlock(0) {
		if err := h.unmarshalOption(d); err != nil {
			return err
		}
	}
	if h.HMAC == nil {
		if _, ok := provider.Lookup(h.Provider); !ok {
			// Point at the name, not at the end of the block we had to read
			// to know that no scheme describes it.
			return fmt.Errorf("unknown provider %q: run `webhook-gateway providers` for the list, or add a `scheme hmac { … }` block, at %s:%d",
				h.Provider, nameToken.File, nameToken.Line)
		}
	}
	if len(h.Secrets) == 0 {
		return d.Errf("provider %s: no secret configured (add `secret {env.NAME}`)", h.Provider)
	}
	return nil
}

func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); opt {
	case "secret":
		s, err := oneArg(d)
		h.Secrets = append(h.Secrets, unshortenFile(s))
		return err
	case "tolerance":
		return parseTolerance(d, &h.Tolerance)
	case "public_url":
		s, err := oneArg(d)
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
		return parseInt(d, &h.RefusalStatus)
	case "verify_token":
		s, err := oneArg(d)
		h.VerifyToken = s
		return err
	case "webhook_id":
		s, err := oneArg(d)
		h.WebhookID = s
		return err
	case "scheme":
		return h.unmarshalScheme(d)
	default:
		return d.Errf("unknown webhook_gateway option %q", opt)
	}
}

func (h *Handler) unmarshalScheme(d *caddyfile.Dispenser) error {
	kind, err := oneArgKeepBlock(d)
	if err != nil {
		return err
	}
	if kind != "hmac" {
		return d.Errf("unknown scheme %q (known: hmac)", kind)
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

// unshortenFile undoes the adapter's rewrite of {file.name} into a path
// placeholder: in a secret, {file.…} means a file's contents.
func unshortenFile(s string) string {
	const short = "{http.request.uri.path.file."
	if rest, ok := strings.CutPrefix(s, short); ok {
		return "{file." + rest
	}
	return s
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

func parseSize(d *caddyfile.Dispenser, dst *int64) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n == 0 || n > 1<<40 {
		return d.Errf("bad size %q: want a size such as 512KiB or 1MB", v)
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

// UnmarshalCaddyfile sets up the app from the global option block.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		return d.Errf("unknown webhook_gateway global option %q", d.Val())
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
