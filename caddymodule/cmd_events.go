package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "events",
		Usage: "list|show|retry|replay [flags]",
		Short: "Lists, shows, retries and replays queued events (through the admin API)",
		Long: `
Inspects and acts on the events of the running gateway's queues, through
its admin API (module admin.api.webhook_gateway), the way 'reload' does:
at --address, or the admin address of --config, or localhost:2019.

  webhook-gateway events list [--queue Q] [--status queued|retrying|delivered|dead] [--since 1h] [--limit N]
  webhook-gateway events show ID [--queue Q] [--body]
  webhook-gateway events retry ID…
  webhook-gateway events replay [--queue Q] [--status dead] [--since 24h] [ID…]

Output is a table, or JSON with --json. Credentials and signatures are
redacted; bodies are shown only with --body; ids, types and header
values from requests are escaped for the terminal. A replay is paced by
the queue's own rate; replaying a delivered event gives it a new
delivery id.`,
		CobraFunc: func(cmd *cobra.Command) {
			adminFlags(cmd)
			cmd.AddCommand(
				adminSubcommand("list", "", "Lists events, newest first, without bodies", cobra.NoArgs, filterFlags, cmdEventsList),
				adminSubcommand("show", "ID", "Shows one event: headers, attempts and, with --body, the body", cobra.ExactArgs(1), func(fs *pflag.FlagSet) {
					fs.String("queue", "", "the event's queue (default: look in every queue)")
					fs.Bool("body", false, "show the body too")
				}, cmdEventsShow),
				adminSubcommand("retry", "ID…", "Makes retrying or dead events due now", cobra.MinimumNArgs(1), func(fs *pflag.FlagSet) {
					fs.String("queue", "", "the events' queue (default: look in every queue)")
				}, cmdEventsRetry),
				adminSubcommand("replay", "[ID…]", "Delivers events again: the ones given, or those matching the filter (dead by default)", cobra.ArbitraryArgs, filterFlags, cmdEventsReplay),
			)
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "queue",
		Usage: "stats|pause|resume [Q]",
		Short: "Shows a queue's figures, pauses and resumes its delivery (through the admin API)",
		Long: `
  webhook-gateway queue stats [Q]
  webhook-gateway queue pause Q    delivery waits; intake goes on
  webhook-gateway queue resume Q   delivery drains the backlog at the queue's rate

The admin API is found as for 'reload': --address, or the admin
address of --config, or localhost:2019.`,
		CobraFunc: func(cmd *cobra.Command) {
			adminFlags(cmd)
			cmd.AddCommand(
				adminSubcommand("stats", "[Q]", "Shows the figures of one queue or of every queue", cobra.MaximumNArgs(1), nil, cmdQueueStats),
				adminSubcommand("pause", "Q", "Pauses delivery; intake goes on", cobra.ExactArgs(1), nil, cmdQueuePause(true)),
				adminSubcommand("resume", "Q", "Resumes delivery", cobra.ExactArgs(1), nil, cmdQueuePause(false)),
			)
		},
	})
}

// adminFlags are the flags every events and queue subcommand has.
func adminFlags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.String("address", "", "the admin API's address (default: from --config, else localhost:2019)")
	fs.String("config", "", "the config file whose admin address to use")
	fs.String("adapter", "", "the adapter of --config")
	fs.Bool("json", false, "print JSON instead of a table")
	cmd.SetHelpTemplate(helpTemplate)
}

// filterFlags select events to list or replay.
func filterFlags(fs *pflag.FlagSet) {
	fs.String("queue", "", "only this queue")
	fs.String("status", "", "only events in this status: queued, retrying, delivered or dead")
	fs.String("since", "", "only events received since: a duration back from now (90m, 24h, 7d) or an RFC 3339 time")
	fs.Int("limit", 0, "at most this many events (default: 100 to list, 1000 to replay)")
}

// adminCall is one run of a subcommand.
type adminCall struct {
	addr  string
	flags *pflag.FlagSet
	args  []string
	out   io.Writer
	json  bool
}

func adminSubcommand(name, args, short string, nargs cobra.PositionalArgs, flags func(*pflag.FlagSet), run func(*adminCall) error) *cobra.Command {
	use := name
	if args != "" {
		use += " " + args
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: nargs}
	if flags != nil {
		flags(cmd.Flags())
	}
	cmd.SetHelpTemplate(helpTemplate)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// Usage errors were reported by now; what fails from here on
		// gets one line of our own.
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := runAdmin(cmd, args, run)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", cmd.CommandPath(), oneLine(err.Error()))
		}
		return err
	}
	return cmd
}

func runAdmin(cmd *cobra.Command, args []string, run func(*adminCall) error) error {
	fs := cmd.Flags()
	address, _ := fs.GetString("address")
	config, _ := fs.GetString("config")
	adapter, _ := fs.GetString("adapter")
	asJSON, _ := fs.GetBool("json")
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
	if err != nil {
		return fmt.Errorf("finding the admin API: %w", err)
	}
	return run(&adminCall{addr: addr, flags: fs, args: args, out: cmd.OutOrStdout(), json: asJSON})
}

// oneLine keeps a message on one line, escaped for the terminal.
func oneLine(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

// adminRefusal is how caddycmd.AdminAPIRequest reports an error answer.
var adminRefusal = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d+): (.*)$`)

// call sends a request to the admin API and decodes its JSON answer
// into into. An error answer becomes an error carrying the API's own
// message.
func (c *adminCall) call(method, path string, query url.Values, body any, into any) error {
	uri := adminPrefix + path
	if len(query) > 0 {
		uri += "?" + query.Encode()
	}
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, nil, reader)
	if err != nil {
		return adminFailure(c.addr, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return nil
}

// adminFailure turns AdminAPIRequest's error into the API's message.
func adminFailure(addr string, err error) error {
	m := adminRefusal.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("calling the admin API at %s: %w", addr, err)
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(m[2]), &apiErr) != nil || apiErr.Error == "" {
		apiErr.Error = m[2]
	}
	return fmt.Errorf("%s (HTTP %s)", apiErr.Error, m[1])
}

// print writes v as JSON with --json, else with render.
func (c *adminCall) print(v any, render func(io.Writer) error) error {
	if !c.json {
		return render(c.out)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = c.out.Write(append(safeJSON(b), '\n'))
	return err
}

// listQuery is the query of events list from its flags.
func listQuery(fs *pflag.FlagSet) (url.Values, error) {
	q := url.Values{}
	for _, name := range []string{"queue", "status", "since"} {
		if v, _ := fs.GetString(name); v != "" {
			q.Set(name, v)
		}
	}
	if s := q.Get("status"); s != "" && !queue.Status(s).Valid() {
		return nil, fmt.Errorf("--status %s: want queued, retrying, delivered or dead", oneLine(s))
	}
	limit, _ := fs.GetInt("limit")
	if limit < 0 {
		return nil, errors.New("--limit must be positive")
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q, nil
}

func cmdEventsList(c *adminCall) error {
	query, err := listQuery(c.flags)
	if err != nil {
		return err
	}
	var list eventList
	if err := c.call(http.MethodGet, "events", query, nil, &list); err != nil {
		return err
	}
	return c.print(list, func(w io.Writer) error { return writeEventList(w, list.Events) })
}

func cmdEventsShow(c *adminCall) error {
	query := url.Values{}
	if q, _ := c.flags.GetString("queue"); q != "" {
		query.Set("queue", q)
	}
	if body, _ := c.flags.GetBool("body"); body {
		query.Set("body", "1")
	}
	var ev shownEvent
	if err := c.call(http.MethodGet, "events/"+url.PathEscape(c.args[0]), query, nil, &ev); err != nil {
		return err
	}
	return c.print(ev, func(w io.Writer) error { return writeEvent(w, &ev) })
}

func cmdEventsRetry(c *adminCall) error {
	query := url.Values{}
	if q, _ := c.flags.GetString("queue"); q != "" {
		query.Set("queue", q)
	}
	acted := []actedEvent{}
	var failed []error
	for _, id := range c.args {
		var a actedEvent
		if err := c.call(http.MethodPost, "events/"+url.PathEscape(id)+"/retry", query, nil, &a); err != nil {
			failed = append(failed, err)
			continue
		}
		acted = append(acted, a)
	}
	if err := c.print(acted, func(w io.Writer) error { return writeActed(w, "retried", acted) }); err != nil {
		return err
	}
	return joinFailures(failed, len(c.args), "retried")
}

// joinFailures reports the failures of a command over several events
// in one line.
func joinFailures(failed []error, total int, verb string) error {
	switch len(failed) {
	case 0:
		return nil
	case 1:
		if total == 1 {
			return failed[0]
		}
	}
	msgs := make([]string, len(failed))
	for i, err := range failed {
		msgs[i] = err.Error()
	}
	return fmt.Errorf("%d of %d events not %s: %s", len(failed), total, verb, strings.Join(msgs, "; "))
}

// replaySelectionFrom is the selection of events replay.
func replaySelectionFrom(fs *pflag.FlagSet, ids []string) (replaySelection, error) {
	q, err := listQuery(fs)
	if err != nil {
		return replaySelection{}, err
	}
	sel := replaySelection{Queue: q.Get("queue"), Status: q.Get("status"), Since: q.Get("since"), IDs: ids}
	sel.Limit, _ = fs.GetInt("limit")
	if len(ids) > 0 && (sel.Status != "" || sel.Since != "") {
		return sel, errors.New("give ids or --status/--since, not both")
	}
	return sel, nil
}

func cmdEventsReplay(c *adminCall) error {
	sel, err := replaySelectionFrom(c.flags, c.args)
	if err != nil {
		return err
	}
	var res replayResult
	if err := c.call(http.MethodPost, "events/replay", nil, sel, &res); err != nil {
		return err
	}
	if err := c.print(res, func(w io.Writer) error { return writeReplay(w, &res) }); err != nil {
		return err
	}
	if n := len(res.Skipped); n > 0 {
		return fmt.Errorf("%d of %d events not replayed", n, n+len(res.Replayed))
	}
	return nil
}

func cmdQueueStats(c *adminCall) error {
	if len(c.args) == 0 {
		var list queueList
		if err := c.call(http.MethodGet, "queues", nil, nil, &list); err != nil {
			return err
		}
		return c.print(list, func(w io.Writer) error { return writeQueues(w, list.Queues) })
	}
	var stats queue.Stats
	if err := c.call(http.MethodGet, "queues/"+url.PathEscape(c.args[0]), nil, nil, &stats); err != nil {
		return err
	}
	return c.print(stats, func(w io.Writer) error { return writeQueues(w, []queueView{{Stats: stats}}) })
}

func cmdQueuePause(paused bool) func(c *adminCall) error {
	action := "resume"
	if paused {
		action = "pause"
	}
	return func(c *adminCall) error {
		var stats queue.Stats
		if err := c.call(http.MethodPost, "queues/"+url.PathEscape(c.args[0])+"/"+action, nil, nil, &stats); err != nil {
			return err
		}
		return c.print(stats, func(w io.Writer) error { return writeQueues(w, []queueView{{Stats: stats}}) })
	}
}
