package provider

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the providers table in README.md")

const (
	beginMarker = "<!-- providers:begin -->"
	endMarker   = "<!-- providers:end -->"
	regenerate  = "go test ./caddymodule/provider -run TestREADMETable -update"
)

// TestREADMETable keeps the README's providers table equal to
// MarkdownTable(); -update rewrites it.
func TestREADMETable(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading README.md: %v; create it with the lines %q and %q, then run %s", err, beginMarker, endMarker, regenerate)
	}
	readme := string(raw)
	start := strings.Index(readme, beginMarker)
	end := strings.Index(readme, endMarker)
	if start < 0 || end < start {
		t.Fatalf("README.md lacks the lines %q and %q (in that order); add them, then run %s", beginMarker, endMarker, regenerate)
	}
	start += len(beginMarker)
	want := "\n" + MarkdownTable()
	if readme[start:end] == want {
		return
	}
	if !*update {
		t.Fatalf("README.md's providers table is out of date; run %s", regenerate)
	}
	if err := os.WriteFile(path, []byte(readme[:start]+want+readme[end:]), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMarkdownTable(t *testing.T) {
	table := MarkdownTable()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != len(All())+2 {
		t.Fatalf("%d lines for %d providers", len(lines), len(All()))
	}
	for _, l := range lines {
		if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != len(TableHeader)+1 {
			t.Fatalf("line has %d cell borders: %s", n, l)
		}
	}
	for _, want := range []string{"| [`stripe`](https://docs.stripe.com/webhooks#verify-events) |", "`facebook`", "ed25519/hex", "| 5m |", "header `X-GitHub-Delivery`"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

// TestReplayColumn: the table says, per provider, what its signature
// offers against a replay; the providers that sign no id never claim one.
func TestReplayColumn(t *testing.T) {
	col := slices.Index(TableHeader, "replay protection")
	if col < 0 {
		t.Fatal("no replay protection column")
	}
	cells := map[string]string{}
	for _, row := range Table(false) {
		cells[row[0]] = row[col]
	}
	for name, want := range map[string]string{
		"github":            ReplayBodyHash,
		"shopify":           ReplayBodyHash,
		"bitbucket":         ReplayBodyHash,
		"jira":              ReplayBodyHash,
		"sentry":            ReplayBodyHash,
		"razorpay":          ReplayBodyHash,
		"lago":              ReplayBodyHash,
		"gitlab":            ReplayNone,
		"mailchimp":         ReplayNone,
		"postmark":          ReplayNone,
		"monday":            ReplayNone,
		"netlify":           ReplayBodyHash,
		"box":               ReplayTimestamp,
		"linear":            ReplayTimestamp,
		"zendesk":           ReplayTimestamp,
		"stripe":            ReplayTimestamp,
		"contentful":        ReplayTimestamp,
		"paypal":            ReplayTimestampAndID,
		"twitch":            ReplayTimestampAndID,
		"standard_webhooks": ReplayTimestampAndID,
		"svix":              ReplayTimestampAndID,
	} {
		if cells[name] != want {
			t.Errorf("%s: replay protection %q, want %q", name, cells[name], want)
		}
	}
	known := []string{ReplayTimestampAndID, ReplayTimestamp, ReplayID, ReplayBodyHash, ReplayNone}
	for _, p := range All() {
		if !slices.Contains(known, cells[p.Name]) {
			t.Errorf("%s: replay protection %q is none of %q", p.Name, cells[p.Name], known)
		}
	}
}

// TestEveryProviderLinksItsDocs: the table's names link to the page that
// describes each provider's signatures.
func TestEveryProviderLinksItsDocs(t *testing.T) {
	for _, p := range All() {
		if !strings.HasPrefix(p.Docs, "https://") || strings.ContainsAny(p.Docs, " ()") {
			t.Errorf("%s: docs %q is not an https link that a markdown table can hold", p.Name, p.Docs)
		}
	}
}

func TestToleranceCell(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "", 5 * time.Second: "5s", 30 * time.Second: "30s", 90 * time.Second: "1m30s",
		5 * time.Minute: "5m", 10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m",
	} {
		if got := toleranceCell(d); got != want {
			t.Errorf("toleranceCell(%s) = %q, want %q", d, got, want)
		}
	}
}
