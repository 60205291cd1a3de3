package provider

import (
	"slices"
	"strings"
	"time"
)

// TableHeader names the columns of Table's rows.
var TableHeader = []string{"provider", "aliases", "scheme", "headers", "tolerance", "replay protection", "event id"}

// Table returns one row per provider, in TableHeader's columns: the
// README's table and `webhook-gateway providers` both print it, so
// neither can drift from the registry. With markdown, names are set in
// code and pipes escaped.
func Table(markdown bool) [][]string {
	code := func(s string) string { return s }
	if markdown {
		code = func(s string) string { return "`" + strings.ReplaceAll(s, "|", `\|`) + "`" }
	}
	var rows [][]string
	for _, p := range All() {
		d := p.Describe()
		name := code(p.Name)
		if markdown {
			// The name links to the provider's own description of its
			// signatures, where a reader checks what a row claims.
			name = "[" + name + "](" + p.Docs + ")"
		}
		rows = append(rows, []string{
			name,
			codeList(p.Aliases, code),
			strings.ReplaceAll(d.Kind, "|", `\|`),
			codeList(d.Headers, code),
			toleranceCell(d.Tolerance),
			d.Replay,
			fieldsCell(p.EventID, code),
		})
	}
	return rows
}

// MarkdownTable is the providers table of the README.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(TableHeader, " | ") + " |\n")
	b.WriteString(strings.Repeat("| --- ", len(TableHeader)) + "|\n")
	for _, row := range Table(true) {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.String()
}

func codeList(items []string, code func(string) string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = code(s)
	}
	return strings.Join(quoted, ", ")
}

func toleranceCell(d time.Duration) string {
	if d == 0 {
		return ""
	}
	s := d.String()
	// "5m0s" reads as "5m"; "30s" must keep its zero.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func fieldsCell(fields []Field, code func(string) string) string {
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		switch {
		case f.Header != "":
			parts = append(parts, "header "+code(f.Header))
		case f.JSON != "":
			parts = append(parts, "body "+code(f.JSON))
		}
	}
	return strings.Join(parts, ", then ")
}

// Describe is the provider's scheme described with what the provider
// adds: the tolerance it applies by default and the credential its
// handshake carries (Asana's X-Hook-Secret, which must never be logged).
func (p *Provider) Describe() Description {
	d := p.Scheme.Describe()
	d.Tolerance = p.DefaultTolerance()
	if c, ok := p.Handshake.(interface{ Credentials() Credentials }); ok {
		d.Credentials.TokenHeaders = append(slices.Clip(d.Credentials.TokenHeaders), c.Credentials().TokenHeaders...)
	}
	return d
}

// replayOf names what a scheme's signature offers against replays.
func replayOf(signsTime, signsID bool, body Coverage) string {
	switch {
	case signsTime && signsID:
		return ReplayTimestampAndID
	case signsTime:
		return ReplayTimestamp
	case signsID:
		return ReplayID
	case body == BodyWhole:
		return ReplayBodyHash
	}
	return ReplayNone
}
