package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// alwaysSecret are headers that carry credentials whoever sent them.
var alwaysSecret = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// secretWords in a header's name mark it as a credential: a custom
// scheme's signature header or an app's token the catalog cannot know.
var secretWords = []string{"signature", "token", "secret", "key"}

// notSecret are names the words above match but that carry no secret.
var notSecret = map[string]bool{"Idempotency-Key": true}

// catalogCredentials are the token and signature headers of every
// provider of the catalog. An event is shown with all of them redacted,
// not only its own provider's: a custom scheme's route may use a
// well-known header without the catalog knowing it.
var catalogCredentials = sync.OnceValue(func() map[string]bool {
	names := make(map[string]bool)
	for _, h := range alwaysSecret {
		names[h] = true
	}
	for _, p := range provider.All() {
		c := p.Describe().Credentials
		for _, list := range [][]string{c.TokenHeaders, c.SignatureHeaders} {
			for _, h := range list {
				names[http.CanonicalHeaderKey(h)] = true
			}
		}
	}
	return names
})

// secretHeader reports whether the header called name must never be
// shown; routes are the credential headers of the event's routes.
func secretHeader(name string, routes map[string]bool) bool {
	name = http.CanonicalHeaderKey(name)
	if catalogCredentials()[name] || routes[name] {
		return true
	}
	if notSecret[name] {
		return false
	}
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// redactHeader returns a copy of h with every credential's value
// replaced. The event record keeps signatures, for an app that verifies
// them, but the admin API never shows one.
func redactHeader(h http.Header, routes map[string]bool) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for name, values := range h {
		if secretHeader(name, routes) {
			values = []string{redacted}
		}
		out[name] = append([]string(nil), values...)
	}
	return out
}

// shownBody is the event's body as the admin API shows it: with the
// signatures a provider carries inside the body (Mailgun, Adyen)
// redacted, or an error when they cannot be located.
func shownBody(ev *queue.Event) ([]byte, error) {
	p, ok := provider.Lookup(ev.Provider)
	if !ok {
		return ev.Body, nil
	}
	fields := p.Describe().Credentials.BodyFields
	if len(fields) == 0 {
		return ev.Body, nil
	}
	body, ok := redactBody(ev.Body, ev.Header.Get("Content-Type"), fields)
	if !ok {
		return nil, fmt.Errorf("the body carries signatures that cannot be located to redact them, so it is not shown")
	}
	return body, nil
}
