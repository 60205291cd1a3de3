package caddymodule

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sign",
		Usage: "--provider <name> --secret <secret> [--file <payload>] [--url <url>] [--send] [--header 'K: V'] [--id <id>] [--timestamp <unix>] [--insecure] [--cacert <pem>]",
		Short: "Signs a payload as a webhook provider would, and prints or sends it",
		Long: `
Signs a payload file the way the named provider signs its webhooks and
prints the headers it would send, or, with --send, POSTs the payload with
those headers to --url and prints the answer. This is how a route is
tested by hand.

--secret may be a {env.NAME} or {file./path} placeholder; for providers
with public-key signatures (Discord, SendGrid, PayPal) it is the private
key. --url is also the URL signed by providers that sign it. --header
adds a header (such as X-GitHub-Event) before signing; repeat it for
several. Providers that sign inside the body (Mailgun, Adyen, Braintree)
or the URL print the rewritten body or URL after the headers.`,
		CobraFunc: func(cmd *cobra.Command) {
			fs := cmd.Flags()
			fs.String("provider", "", "provider name (see the providers command)")
			fs.String("secret", "", "signing secret or private key, or a {env.NAME} placeholder")
			fs.String("file", "-", "payload file; - reads standard input")
			fs.String("url", "", "public URL of the route; with --send, where to send")
			fs.Bool("send", false, "POST the signed payload to --url and print the answer")
			fs.StringArray("header", nil, "extra header 'Name: value' (repeatable)")
			fs.String("id", "", "message id for providers that sign one (default: random)")
			fs.String("webhook-id", "", "subscription id for providers that sign it (PayPal)")
			fs.Int64("timestamp", 0, "unix time to sign at (default: now)")
			fs.Bool("insecure", false, "with --send, skip TLS verification (local tests only)")
			fs.String("cacert", "", "with --send, a PEM file of CAs to trust, e.g. Caddy's local root")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSign)
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "providers",
		Short: "Lists the webhook providers the gateway verifies",
		CobraFunc: func(cmd *cobra.Command) {
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
				return 0, writeProviders(os.Stdout)
			})
		},
	})
}

// signOptions is a signing request from the command line.
type signOptions struct {
	Provider  string
	Secret    string
	Body      []byte
	URL       string
	ID        string
	WebhookID string
	Timestamp time.Time
	Header    http.Header
}

// signDelivery produces the delivery the provider would send: its
// headers and, for schemes that sign inside them, its body and URL.
func signDelivery(o signOptions) (*provider.Message, error) {
	p, ok := provider.Lookup(o.Provider)
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (see `webhook-gateway providers`)", o.Provider)
	}
	secrets, err := resolveSecrets([]string{o.Secret})
	if err != nil {
		return nil, err
	}
	if o.ID == "" {
		o.ID = randomID()
	}
	if o.Timestamp.IsZero() {
		o.Timestamp = time.Now()
	}
	m := &provider.Message{
		Method: http.MethodPost, URL: o.URL, ID: o.ID, WebhookID: o.WebhookID,
		Timestamp: o.Timestamp, Body: o.Body, Header: o.Header.Clone(),
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if err := p.Scheme.Sign(secrets[0], m); err != nil {
		return nil, fmt.Errorf("signing as %s: %w", p.Name, err)
	}
	return m, nil
}

func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
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
		Secret:    fl.String("secret"),
		URL:       fl.String("url"),
		ID:        fl.String("id"),
		WebhookID: fl.String("webhook-id"),
		Header:    http.Header{},
	}
	if o.Provider == "" || o.Secret == "" {
		return o, fmt.Errorf("--provider and --secret are required")
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
// code is 0 for a 2xx answer.
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
	fmt.Fprintf(out, "%s\n", body)
	if resp.StatusCode/100 != 2 {
		return 1, nil
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
