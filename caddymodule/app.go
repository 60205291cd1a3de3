package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

const appName = "webhook_gateway"

func init() {
	caddy.RegisterModule(App{})
}

// App is the gateway's global state, shared by every webhook_gateway
// handler of a config: it owns the store that rate limits and
// deduplication use, and later the delivery workers.
type App struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  appName,
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets the app up.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	return nil
}

// Start implements caddy.App.
func (a *App) Start() error { return nil }

// Stop implements caddy.App.
func (a *App) Stop() error { return nil }

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
