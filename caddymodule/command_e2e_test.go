package caddymodule_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/webrev/webhook-gateway/internal/gatewaytest"
)

// TestSignCommand runs the built webhook-gateway binary as a user would:
// its help names the binary, --send exits non-zero on a refusal, and
// --config signs for Caddyfile.example's custom "acme" route, which the
// real gateway then accepts.
func TestSignCommand(t *testing.T) {
	bin := gatewaytest.Binary(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer refusing.Close()
	up := gatewaytest.NewUpstream(t)
	// The route of Caddyfile.example, with its demo secret: unlike the
	// other tests' acme, it signs its delivery id.
	acme := route{name: "acme", provider: "acme", block: `secret "demo-acme-secret"
			scheme hmac {
				header X-Acme-Signature
				prefix sha256=
				timestamp_header X-Acme-Timestamp
				id_header X-Acme-Delivery
				content "{id}.{timestamp}.{body}"
			}`}
	g := gatewaytest.Start(t, "", acme.site(up.Addr()))
	cases := []struct {
		name      string
		args      []string
		exit      int
		stdout    []string // substrings
		stderr    []string
		notOut    []string
		forwarded int
	}{
		{name: "help_names_the_binary", args: []string{"sign", "--help"},
			stdout: []string{"webhook-gateway sign --provider", "--config"},
			notOut: []string{"caddy sign", "caddyserver.com"}},
		{name: "send_refused_exits_1", args: []string{"sign", "--provider", "github", "--secret", "s", "--send", "--url", refusing.URL},
			exit: 1, stdout: []string{"401 Unauthorized"}, stderr: []string{"answered 401 Unauthorized"}},
		{name: "config_custom_scheme_accepted", args: []string{"sign", "--config", "../Caddyfile.example", "--provider", "acme", "--send", "--url", g.URL + "/acme", "--insecure"},
			stdout: []string{"200 OK"}, forwarded: 1},
		{name: "unknown_provider_points_at_config", args: []string{"sign", "--provider", "acme", "--secret", "s"},
			exit: 1, stderr: []string{"unknown provider", "acme", "--config"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Reset()
			cmd := exec.Command(bin, c.args...)
			cmd.Stdin = strings.NewReader(`{"id":"evt_cli"}`)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != c.exit {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", exit, c.exit, &stdout, &stderr)
			}
			for _, w := range c.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
			for _, w := range c.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, &stderr)
				}
			}
			for _, w := range c.notOut {
				if strings.Contains(stdout.String(), w) {
					t.Errorf("stdout says %q:\n%s", w, &stdout)
				}
			}
			if n := up.Count(); n != c.forwarded {
				t.Errorf("%d deliveries reached the upstream, want %d", n, c.forwarded)
			}
		})
	}
}
