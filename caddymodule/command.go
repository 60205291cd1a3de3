package caddymodule

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sign",
		Usage: "--provider <name> (--secret <secret> | --config <file>) [--file <payload>] [--url <url>] [--send] [--header 'K: V'] [--id <id>] [--timestamp <unix>] [--key-url <url>] [--insecure] [--cacert <pem>]",
		Short: "Signs a payload as a webhook provider would, and prints or sends it",
		Long: `
Signs a payload file the way the named provider signs its webhooks and
prints the headers it would send, or, with --send, POSTs the payload with
those headers to --url and prints the answer. This is how a route is
tested by hand. With --send, any answer but a 2xx exits with status 1.

--secret may be a {env.NAME} or {file./path} placeholder; for providers
with public-key signatures (Discord, SendGrid, PayPal) it is the private
key. --url is also the URL signed by providers that sign it. --header
adds a header (such as X-GitHub-Event) before signing; repeat it for
several. Providers that sign inside the body (Mailgun, Adyen, Braintree)
or the URL print the rewritten body or URL after the headers. AWS SNS
(sns) signs with an RSA private key whose certificate is served at
--key-url (the message's SigningCertURL); its payload is an SNS
envelope, or any body, sent as a Notification's Message from the topic
of an X-Amz-Sns-Topic-Arn --header.

Providers whose keys the gateway fetches sign with a key the user gives,
which a verifier accepts only where its key location serves the public
half (keys_url and key_fetch's allow-list in tests): google_pubsub takes
a service account's JSON key file (private_key, client_email,
private_key_id), plaid a P-256 private key whose RFC 7638 thumbprint is
the kid, wix an RSA private key (the body becomes the token).

--config reads a config file (a Caddyfile, or JSON) and signs as its
webhook_gateway route for --provider does: a sender described by a
scheme block, such as "acme" in Caddyfile.example, can be signed only
this way. --provider then names the route by its provider or its
source; the route's first secret and webhook_id are used unless
--secret and --webhook-id are given.

Example, with Caddyfile.example running:

  webhook-gateway sign --config Caddyfile.example --provider acme \
    --file payload.json --send --url https://localhost:8443/acme --insecure`,
		CobraFunc: func(cmd *cobra.Command) {
			fs := cmd.Flags()
			fs.String("provider", "", "provider name (see the providers command), or with --config the route's provider or source")
			fs.String("secret", "", "signing secret or private key, or a {env.NAME} placeholder")
			fs.String("config", "", "config file whose webhook_gateway route for --provider gives the scheme and the secret")
			fs.String("adapter", "", "with --config, the config adapter (default: caddyfile unless the file is JSON)")
			fs.String("file", "-", "payload file; - reads standard input")
			fs.String("url", "", "public URL of the route; with --send, where to send")
			fs.Bool("send", false, "POST the signed payload to --url and print the answer")
			fs.StringArray("header", nil, "extra header 'Name: value' (repeatable)")
			fs.String("id", "", "message or delivery id, signed by providers that sign one (default: a random UUID)")
			fs.String("webhook-id", "", "subscription id for providers that sign it (PayPal)")
			fs.Int64("timestamp", 0, "unix time to sign at (default: now)")
			fs.String("key-url", "", "URL of the signer's certificate, for providers that name it in the message (AWS SNS's SigningCertURL)")
			fs.Bool("insecure", false, "with --send, skip TLS verification (local tests only)")
			fs.String("cacert", "", "with --send, a PEM file of CAs to trust, e.g. Caddy's local root")
			cmd.SetHelpTemplate(helpTemplate)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSign)
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "providers",
		Short: "Lists the webhook providers the gateway verifies",
		CobraFunc: func(cmd *cobra.Command) {
			cmd.SetHelpTemplate(helpTemplate)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
				return 0, writeProviders(os.Stdout)
			})
		},
	})
}

// helpTemplate is cobra's own, for our subcommands: Caddy's adds a
// footer that sends readers to Caddy's documentation, which does not
// describe them.
var helpTemplate = (&cobra.Command{}).HelpTemplate()

// signOptions is a signing request from the command line.
type signOptions struct {
	Provider  string
	Config    string // a config file whose route for Provider signs
	Adapter   string
	Secret    string
	Body      []byte
	URL       string
	ID        string
	WebhookID string
	Timestamp time.Time
	Header    http.Header
	KeyURL    string // where the signer's certificate is served (SNS)
}

// senderHeaders are headers a provider sends beside its signature that
// its own SDK checks, so that what sign prints passes the SDK too.
var senderHeaders = map[string]http.Header{
	// https://developer.box.com/guides/webhooks/v2/: both are constant,
	// and Box's SDKs refuse a delivery without them.
	"box": {"Box-Signature-Version": {"1"}, "Box-Signature-Algorithm": {"HmacSHA256"}},
}

// signDelivery produces the delivery the provider would send: its
// headers and, for schemes that sign inside them, its body and URL.
func signDelivery(o signOptions) (*provider.Message, error) {
	p, o, err := o.signer()
	if err != nil {
		return nil, err
	}
	secrets, err := resolveSecrets([]string{o.Secret})
	if err != nil {
		return nil, err
	}
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	if o.Timestamp.IsZero() {
		o.Timestamp = time.Now()
	}
	m := &provider.Message{
		Method: http.MethodPost, URL: o.URL, ID: o.ID, WebhookID: o.WebhookID,
		Timestamp: o.Timestamp, Body: o.Body, Header: o.Header.Clone(), KeyURL: o.KeyURL,
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if err := p.Scheme.Sign(secrets[0], m); err != nil {
		return nil, fmt.Errorf("signing as %s: %w", p.Name, err)
	}
	addMissing(m.Header, senderHeaders[p.Name])
	addDeliveryID(m.Header, p.EventID, o.ID)
	return m, nil
}

// signer finds the provider to sign as: a built-in one, or with Config
// the route that config gives it, whose secret and webhook id fill in
// what the command line left out.
func (o signOptions) signer() (*provider.Provider, signOptions, error) {
	if o.Config == "" {
		p, ok := provider.Lookup(o.Provider)
		if !ok {
			return nil, o, fmt.Errorf("unknown provider %q (see `webhook-gateway providers`, or give --config for a route described by a scheme block)", o.Provider)
		}
		return p, o, nil
	}
	h, err := routeFromConfig(o.Config, o.Adapter, o.Provider)
	if err != nil {
		return nil, o, err
	}
	p, err := h.resolveProvider()
	if err != nil {
		return nil, o, err
	}
	if o.Secret == "" && len(h.Secrets) > 0 {
		o.Secret = h.Secrets[0]
	}
	o.WebhookID = cmp.Or(o.WebhookID, h.WebhookID)
	return p, o, nil
}

// routeFromConfig finds the one webhook_gateway handler of a config
// file whose provider or source is name.
func routeFromConfig(path, adapter, name string) (*Handler, error) {
	cfg, _, _, err := caddycmd.LoadConfig(path, adapter)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	var tree any
	if err := json.Unmarshal(cfg, &tree); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var found, names []string
	var match *Handler
	for _, raw := range webhookHandlers(tree) {
		h := new(Handler)
		if err := json.Unmarshal(raw, h); err != nil {
			return nil, fmt.Errorf("reading a webhook_gateway handler of %s: %w", path, err)
		}
		names = append(names, h.Provider)
		if h.Provider == name || h.Source == name {
			found, match = append(found, h.Provider), h
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no webhook_gateway route for %q in %s (its routes: %s)", name, path, strings.Join(names, ", "))
	case 1:
		return match, nil
	}
	return nil, fmt.Errorf("%d webhook_gateway routes for %q in %s: give each a source and name the route by it", len(found), name, path)
}

// webhookHandlers walks a config's JSON for our handlers, wherever
// routes, subroutes or named routes put them.
func webhookHandlers(node any) []json.RawMessage {
	var out []json.RawMessage
	switch n := node.(type) {
	case map[string]any:
		if n["handler"] == "webhook_gateway" {
			raw, _ := json.Marshal(n)
			return []json.RawMessage{raw}
		}
		keys := slices.Sorted(maps.Keys(n))
		for _, k := range keys {
			out = append(out, webhookHandlers(n[k])...)
		}
	case []any:
		for _, v := range n {
			out = append(out, webhookHandlers(v)...)
		}
	}
	return out
}

// addMissing adds the headers of extra that h lacks; what the user gave
// with --header wins.
func addMissing(h, extra http.Header) {
	for k, v := range extra {
		if h.Get(k) == "" {
			h[k] = slices.Clone(v)
		}
	}
}

// addDeliveryID sends the id in the provider's delivery-id header (as
// GitHub's X-GitHub-Delivery) when the scheme did not already send it,
// so that a signed delivery carries what a real one does.
func addDeliveryID(h http.Header, fields []provider.Field, id string) {
	first := ""
	for _, f := range fields {
		if f.Header == "" {
			continue
		}
		if h.Get(f.Header) != "" {
			return
		}
		first = cmp.Or(first, f.Header)
	}
	if first != "" {
		h.Set(first, id)
	}
}

func cmdSign(fl caddycmd.Flags) (int, error) {
	o, err := signOptionsFromFlags(fl)
	if err != nil {
		return exitBadFlags, err
	}
	m, err := signDelivery(o)
	if err != nil {
		return 1, err
	}
	if !fl.Bool("send") {
		return 0, writeMessage(os.Stdout, o, m)
	}
	client, err := sendClient(fl.Bool("insecure"), fl.String("cacert"))
	if err != nil {
		return 1, err
	}
	return sendDelivery(client, m, os.Stdout)
}

// exitBadFlags mirrors caddy's exit code for bad usage.
const exitBadFlags = 2

func signOptionsFromFlags(fl caddycmd.Flags) (signOptions, error) {
	o := signOptions{
		Provider:  fl.String("provider"),
		Config:    fl.String("config"),
		Adapter:   fl.String("adapter"),
		Secret:    fl.String("secret"),
		URL:       fl.String("url"),
		ID:        fl.String("id"),
		WebhookID: fl.String("webhook-id"),
		KeyURL:    fl.String("key-url"),
		Header:    http.Header{},
	}
	if o.Provider == "" || o.Secret == "" && o.Config == "" {
		return o, fmt.Errorf("--provider and --secret (or --config) are required")
	}
	if ts, _ := fl.GetInt64("timestamp"); ts != 0 {
		o.Timestamp = time.Unix(ts, 0)
	}
	headers, _ := fl.GetStringArray("header")
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return o, fmt.Errorf("bad --header %q: want 'Name: value'", kv)
		}
		o.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	var err error
	if o.Body, err = readPayload(fl.String("file")); err != nil {
		return o, err
	}
	return o, nil
}

func readPayload(path string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	return b, nil
}

// writeMessage prints the headers, then whatever the scheme rewrote.
func writeMessage(w io.Writer, o signOptions, m *provider.Message) error {
	if err := writeHeader(w, m.Header); err != nil {
		return err
	}
	if m.URL != o.URL {
		fmt.Fprintf(w, "\nURL: %s\n", m.URL)
	}
	if !bytes.Equal(m.Body, o.Body) {
		fmt.Fprintf(w, "\n%s\n", m.Body)
	}
	return nil
}

func writeHeader(w io.Writer, h http.Header) error {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			if _, err := fmt.Fprintf(w, "%s: %s\n", k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func sendClient(insecure bool, cacert string) (*http.Client, error) {
	cfg := &tls.Config{InsecureSkipVerify: insecure}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate found in %s", cacert)
		}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// sendDelivery POSTs the signed payload and prints the answer; the exit
// code is 0 for a 2xx answer. Any other answer is an error, so that a
// script or CI step that sends a test delivery fails when it is refused.
func sendDelivery(client *http.Client, m *provider.Message, out io.Writer) (int, error) {
	if m.URL == "" {
		return exitBadFlags, fmt.Errorf("--send needs --url")
	}
	req, err := http.NewRequest(http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return 1, fmt.Errorf("building request: %w", err)
	}
	req.Header = m.Header
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 1, fmt.Errorf("sending to %s: %w", m.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(out, "%s %s\n", resp.Proto, resp.Status)
	// The gateway's own headers say what happened beyond the status.
	for _, name := range []string{HeaderReplay, "Retry-After"} {
		if v := resp.Header.Get(name); v != "" {
			fmt.Fprintf(out, "%s: %s\n", name, v)
		}
	}
	fmt.Fprintf(out, "%s\n", bytes.TrimRight(body, "\n"))
	if resp.StatusCode/100 != 2 {
		return 1, fmt.Errorf("%s answered %s: the delivery was not accepted", m.URL, resp.Status)
	}
	return 0, nil
}

// writeProviders prints the providers table.
func writeProviders(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(provider.TableHeader, "\t")))
	for _, row := range provider.Table(false) {
		for i, cell := range row {
			if cell == "" {
				row[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
