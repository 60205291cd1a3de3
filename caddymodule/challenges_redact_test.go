package caddymodule

import (
	"strings"
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
)

// TestGraphClientStateRedacted: Microsoft Graph's clientState is the
// route's secret, carried in the body: every copy of it is redacted from
// a logged or shown body, and nothing else is.
func TestGraphClientStateRedacted(t *testing.T) {
	p, _ := provider.Lookup("microsoft_graph")
	body := `{"value":[{"subscriptionId":"s1","clientState":"graph-secret-1","changeType":"created"},{"subscriptionId":"s2","clientState":"graph-secret-2","changeType":"updated"}]}`
	got, ok := redactBody([]byte(body), "application/json", p.Describe().Credentials.BodyFields)
	if !ok {
		t.Fatal("the clientState could not be located")
	}
	if strings.Contains(string(got), "graph-secret") || strings.Count(string(got), redacted) != 2 {
		t.Fatalf("redacted body %s", got)
	}
	if !strings.Contains(string(got), `"changeType":"updated"`) || !strings.Contains(string(got), `"subscriptionId":"s1"`) {
		t.Fatalf("redaction took more than the clientState: %s", got)
	}
}
