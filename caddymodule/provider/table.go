package provider

import (
	"strings"
	"time"
)

// MarkdownTable is the providers table of the README, generated from the
// registry so that the documentation cannot drift from the code.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| provider | aliases | scheme | headers | tolerance | event id |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, p := range All() {
		d := p.Scheme.Describe()
		cells := []string{
			"`" + p.Name + "`",
			codeList(p.Aliases),
			escapeCell(d.Kind),
			codeList(d.Headers),
			toleranceCell(p.Tolerance),
			fieldsCell(p.EventID),
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

func codeList(items []string) string {
	if len(items) == 0 {
		return ""
	}
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "`" + escapeCell(s) + "`"
	}
	return strings.Join(quoted, ", ")
}

// escapeCell keeps a pipe inside a value from splitting the cell.
func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func toleranceCell(d time.Duration) string {
	if d == 0 {
		return ""
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func fieldsCell(fields []Field) string {
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		switch {
		case f.Header != "":
			parts = append(parts, "header `"+f.Header+"`")
		case f.JSON != "":
			parts = append(parts, "body `"+escapeCell(f.JSON)+"`")
		}
	}
	return strings.Join(parts, ", then ")
}
