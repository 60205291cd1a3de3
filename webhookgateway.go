// Package webhookgateway lets `xcaddy build --with
// github.com/webrev/webhook-gateway` work: xcaddy imports a plugin's
// module root, and the modules live in the caddymodule package.
package webhookgateway

import _ "github.com/webrev/webhook-gateway/caddymodule"
