package sdkcheck

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
	"github.com/webrev/webhook-gateway/internal/testtls"
)

// gateway is the one real Caddy every check goes through: a route per
// case at /<case name>, in front of a recording upstream.
type gateway struct {
	*gatewaytest.Gateway
	up *gatewaytest.Upstream
	// caFile is the PEM of the gateway's local root CA, which the sign
	// command is told to trust (--cacert), as a user would.
	caFile string
}

func startGateway(t *testing.T, cases []sdkCase) *gateway {
	t.Helper()
	up := gatewaytest.NewUpstream(t)
	keys := newKeyServer(t, cases)
	var site strings.Builder
	for _, c := range cases {
		secret := fmt.Sprintf("secret %q", c.secret)
		if c.published {
			secret = "keys_url " + keys.URL + "/" + c.name
		}
		fmt.Fprintf(&site, "route /%s {\n\twebhook_gateway %s {\n\t\t%s\n\t\tsource %s\n\t\t%s\n\t}\n\treverse_proxy %s\n}\n",
			c.name, c.provider, secret, c.name, c.options, up.Addr())
	}
	globals := fmt.Sprintf("webhook_gateway {\n\tkey_fetch {\n\t\tallow %s\n\t\ttls_ca %s\n\t}\n}",
		strings.TrimPrefix(keys.URL, "https://"), keys.caFile)
	g := &gateway{Gateway: gatewaytest.Start(t, globals, site.String()), up: up}
	g.caFile = g.rootCA(t)
	return g
}

// keyServer stands in for the key locations of providers that publish
// their keys: a TLS server (its CA in caFile, which key_fetch trusts)
// serving each such case's key set at /<case name>.
type keyServer struct {
	*httptest.Server
	caFile string
}

func newKeyServer(t *testing.T, cases []sdkCase) *keyServer {
	t.Helper()
	mux := http.NewServeMux()
	for _, c := range cases {
		if c.published {
			mux.HandleFunc("GET /"+c.name, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, c.secret)
			})
		}
	}
	ks := &keyServer{Server: httptest.NewTLSServer(mux)}
	t.Cleanup(ks.Close)
	ks.caFile = testtls.CAFile(t, ks.Server)
	return ks
}

// rootCA writes the root of the chain the gateway's TLS client verified.
func (g *gateway) rootCA(t *testing.T) string {
	t.Helper()
	resp, err := g.Client.Get(g.URL + "/__ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 {
		t.Fatal("the gateway's answer came without a verified chain")
	}
	chain := resp.TLS.VerifiedChains[0]
	path := filepath.Join(t.TempDir(), "root.crt")
	root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[len(chain)-1].Raw})
	if err := os.WriteFile(path, root, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// delivery is one webhook request: as a sender made it, or as the
// upstream received it.
type delivery struct {
	// URL is the public URL the sender called, the one signed by
	// providers that sign it.
	URL    string
	Header http.Header
	Body   []byte
}

// request is the delivery as the app behind the gateway gets it, for
// SDKs that verify an *http.Request.
func (d delivery) request() *http.Request {
	r := httptest.NewRequest(http.MethodPost, d.URL, bytes.NewReader(d.Body))
	r.Header = d.Header.Clone()
	return r
}

// tampered is the delivery with one body byte changed.
func (d delivery) tampered() delivery {
	body := bytes.Clone(d.Body)
	body[len(body)/2] ^= 0x01
	d.Body = body
	return d
}

// post sends a delivery through the gateway.
func (g *gateway) post(t *testing.T, d delivery) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = d.Header.Clone()
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", d.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// forwarded is the one request that reached the upstream since the last
// Reset, as a delivery to the URL its sender called.
func (g *gateway) forwarded(t *testing.T, url string) delivery {
	t.Helper()
	got := g.up.Received()
	if len(got) != 1 {
		t.Fatalf("the upstream got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.ContentLength != int64(len(r.Body)) {
		t.Errorf("the upstream got %d bytes under a Content-Length of %d", len(r.Body), r.ContentLength)
	}
	return delivery{URL: url, Header: r.Header, Body: r.Body}
}

// reason is the refusal reason of a problem answer.
func reason(body []byte) string {
	var p struct{ Reason string }
	_ = json.Unmarshal(body, &p)
	return p.Reason
}

// sign runs the gateway's real `webhook-gateway sign` subcommand in
// process, as the binary's main would, and returns what it printed.
func sign(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c, ok := caddycmd.Commands()["sign"]
	if !ok {
		t.Fatal("no sign subcommand is registered")
	}
	cmd := &cobra.Command{Use: c.Name, SilenceUsage: true}
	c.CobraFunc(cmd)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	// The command prints to os.Stdout; the checks here run one at a
	// time, so borrowing it is safe.
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = executeTo(f, cmd)
	out, _ := os.ReadFile(f.Name())
	return string(out), err
}

// executeTo runs cmd with os.Stdout sent to f.
func executeTo(f *os.File, cmd *cobra.Command) error {
	stdout := os.Stdout
	os.Stdout = f
	defer func() { os.Stdout = stdout }()
	return cmd.Execute()
}
