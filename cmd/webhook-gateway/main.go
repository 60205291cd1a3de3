// Command webhook-gateway is Caddy with its standard modules and the
// webhook gateway: `webhook-gateway run --config Caddyfile.example`.
package main

import (
	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/webrev/webhook-gateway/caddymodule"
)

// longDescription replaces Caddy's, which tells how to run `caddy`.
const longDescription = `webhook-gateway is Caddy with its standard modules and the webhook
gateway: it terminates TLS, verifies each provider's webhook signatures,
applies rate limits and idempotency, and forwards what it verified.

	webhook-gateway run --config Caddyfile.example
	webhook-gateway providers
	webhook-gateway sign --help

Every other Caddy subcommand works as Caddy documents it
(https://caddyserver.com/docs/command-line); the gateway's own options
are described in README.md.`

func main() {
	// Help and usage lines name this binary, not `caddy`.
	caddy.CustomBinaryName = "webhook-gateway"
	caddy.CustomLongDescription = longDescription
	caddycmd.Main()
}
