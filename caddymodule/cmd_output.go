package caddymodule

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// term makes a string that came from a request (an id, a type, a header
// value) safe to print in a table: as it is when every character is
// printable, else quoted with Go's escapes, so that no control
// character, escape sequence or tab reaches the terminal or breaks a
// column. Empty is "-".
func term(s string) string {
	if s == "" {
		return "-"
	}
	if !printable(s) {
		return strconv.Quote(s)
	}
	return s
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// shorten cuts s to n runes, marking the cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// safeJSON escapes, inside JSON text, every character a terminal could
// act on (C0 and C1 controls, DEL, bidi overrides): encoding/json
// escapes only those below 0x20. Outside strings JSON holds only
// printable characters and the newlines of indentation, so escaping
// every non-printable rune but the newline keeps the JSON valid.
func safeJSON(b []byte) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == '\n' || unicode.IsPrint(r) && r != utf8.RuneError {
			out.Write(b[:size])
		} else {
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&out, `\u%04x`, u)
			}
		}
		b = b[size:]
	}
	return out.Bytes()
}

// when prints a time for a table: UTC to the second, "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// attemptResult is what an attempt got: the app's status, or the error.
func attemptResult(a *queue.Attempt) string {
	if a == nil {
		return "-"
	}
	result := string(a.Outcome)
	if a.Status != 0 {
		result += " " + strconv.Itoa(a.Status)
	}
	if a.Error != "" {
		result += ": " + a.Error
	}
	return result
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// row writes one table row; every cell must already be safe. Empty
// cells at the end are left out, so that no line ends in padding.
func row(w io.Writer, cells ...string) {
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

func writeEventList(w io.Writer, events []eventSummary) error {
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "no events match")
		return err
	}
	tw := newTable(w)
	row(tw, "ID", "QUEUE", "STATUS", "ATTEMPTS", "TYPE", "EVENT ID", "RECEIVED", "NEXT", "LAST ATTEMPT")
	for _, e := range events {
		row(tw, term(e.ID), term(e.Queue), string(e.Status), strconv.Itoa(e.Attempts), term(shorten(e.EventType, 40)),
			term(shorten(e.EventID, 40)), when(e.ReceivedAt), when(e.NextAt), term(shorten(attemptResult(e.LastAttempt), 60)))
	}
	return tw.Flush()
}

func writeEvent(w io.Writer, e *shownEvent) error {
	tw := newTable(w)
	status := string(e.Status)
	if !e.NextAt.IsZero() {
		status += ", next attempt " + when(e.NextAt)
	}
	fields := [][2]string{
		{"ID", term(e.ID)},
		{"Queue", term(e.Queue)},
		{"Provider", term(e.Provider)},
		{"Event ID", term(e.EventID)},
		{"Event type", term(e.EventType)},
		{"Status", status},
		{"Attempts", fmt.Sprintf("%d of %d", e.Attempts, e.Budget)},
		{"Received", when(e.ReceivedAt)},
		{"Done", when(e.DoneAt)},
		{"Replay of", term(e.ReplayOf)},
		{"Method", term(e.Method)},
		{"Body", fmt.Sprintf("%d bytes", e.BodySize)},
	}
	for _, f := range fields {
		row(tw, f[0]+":", f[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nHeaders:")
	writeHeaderSafe(w, e.Header)
	fmt.Fprintln(w, "\nAttempts:")
	if err := writeAttempts(w, e.Log); err != nil {
		return err
	}
	if e.Body != nil {
		fmt.Fprintln(w, "\nBody:")
		fmt.Fprintln(w, termBody(e.Body))
	}
	return nil
}

// writeHeaderSafe prints headers sorted by name, names and values
// escaped.
func writeHeaderSafe(w io.Writer, h http.Header) {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[name] {
			fmt.Fprintf(w, "  %s: %s\n", term(name), term(v))
		}
	}
}

func writeAttempts(w io.Writer, log []queue.Attempt) error {
	if len(log) == 0 {
		_, err := fmt.Fprintln(w, "  none yet")
		return err
	}
	tw := newTable(w)
	row(tw, "  N", "AT", "DURATION", "STATUS", "OUTCOME", "ERROR")
	for _, a := range log {
		status := "-"
		if a.Status != 0 {
			status = strconv.Itoa(a.Status)
		}
		row(tw, "  "+strconv.Itoa(a.N), when(a.At), a.Duration.Round(time.Millisecond).String(), status, string(a.Outcome), term(a.Error))
	}
	return tw.Flush()
}

// termBody is a body for the terminal: as it is when it is UTF-8 text
// whose only controls are newlines and tabs, else quoted.
func termBody(b []byte) string {
	s := string(b)
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && r != '\t' && !unicode.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

func writeActed(w io.Writer, verb string, acted []actedEvent) error {
	tw := newTable(w)
	row(tw, "ID", "QUEUE", "DELIVERY ID", "")
	for _, a := range acted {
		note := verb
		if a.DeliveryID != a.ID {
			note = verb + " as a new delivery"
		}
		row(tw, term(a.ID), term(a.Queue), term(a.DeliveryID), note)
	}
	return tw.Flush()
}

func writeReplay(w io.Writer, res *replayResult) error {
	if len(res.Replayed) == 0 && len(res.Skipped) == 0 {
		_, err := fmt.Fprintln(w, "no events match")
		return err
	}
	if len(res.Replayed) > 0 {
		if err := writeActed(w, "replayed", res.Replayed); err != nil {
			return err
		}
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped %s (queue %s): %s\n", term(s.ID), term(s.Queue), term(s.Error))
	}
	if res.More {
		fmt.Fprintln(w, "more events match: run the command again for the next ones")
	}
	return nil
}

func writeQueues(w io.Writer, queues []queueView) error {
	tw := newTable(w)
	row(tw, "QUEUE", "QUEUED", "READY", "IN FLIGHT", "DELAYED", "WAITING", "DEAD", "OLDEST", "PAUSED", "")
	now := time.Now()
	for _, q := range queues {
		oldest := "-"
		if !q.Oldest.IsZero() {
			oldest = now.Sub(q.Oldest).Round(time.Second).String()
		}
		paused := "no"
		if q.Paused {
			paused = "yes"
		}
		note := ""
		if q.Error != "" {
			note = "error: " + term(q.Error)
		}
		row(tw, term(q.Queue), num(q.Queued), num(q.Ready), num(q.InFlight), num(q.Delayed), num(q.Waiting), num(q.Dead), oldest, paused, note)
	}
	return tw.Flush()
}

func num(n int64) string { return strconv.FormatInt(n, 10) }
