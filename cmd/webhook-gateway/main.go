// Command webhook-gateway is Caddy with its standard modules and the
// webhook gateway: `webhook-gateway run --config Caddyfile.example`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/webrev/webhook-gateway/caddymodule"
)

func main() {
	caddycmd.Main()
}
