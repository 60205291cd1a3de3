package redisstore

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// eventFields are an event's hash fields and values as enqueueScript
// stores them (see queue_scripts.go for the names).
func eventFields(q *queue.Spec, ev *queue.Event) []any {
	budget := ev.Budget
	if budget <= 0 {
		budget = q.Attempts
	}
	f := []any{
		"id", ev.ID, "pv", ev.Provider, "eid", ev.EventID, "et", ev.EventType,
		"m", ev.Method, "h", encodeHeader(ev.Header), "b", ev.Body,
		"ok", ev.OrderKey, "ro", ev.ReplayOf,
		"rt", strconv.FormatInt(ev.ReceivedAt.UnixNano(), 10),
		"rs", strconv.FormatInt(ev.ReceivedAt.UnixMicro(), 10),
		"s", string(queue.StatusQueued), "a", ev.Attempts, "bu", budget, "sz", ev.Size(),
	}
	if q.Ordered && ev.OrderKey != "" {
		f = append(f, "o", "1")
	}
	return f
}

// listFields are what List reads of an event: all but the body. The
// id comes first: its absence means the event expired.
var listFields = []any{"id", "pv", "eid", "et", "m", "h", "ok", "ro", "rt", "s", "a", "bu", "na", "da", "log"}

// headerVersion leads an encoded header, as codecVersion an answer.
const headerVersion = 1

func encodeHeader(h http.Header) []byte {
	return appendHeader(append(make([]byte, 0, 1+headerSize(h)), headerVersion), h)
}

func decodeHeader(b []byte) (http.Header, error) {
	d := decoder{b: b}
	if v := d.byte(); v != headerVersion {
		return nil, fmt.Errorf("unknown header encoding %d", v)
	}
	h := d.header()
	if d.err == nil && len(d.b) > 0 {
		d.err = errCorrupt
	}
	return h, d.err
}

// decodeEvent reads an event's fields, from HGETALL or List's HMGET.
func decodeEvent(name string, p int, f map[string]string) (*queue.Event, error) {
	ev := &queue.Event{
		ID: f["id"], Queue: name, Partition: p,
		Provider: f["pv"], EventID: f["eid"], EventType: f["et"], Method: f["m"],
		OrderKey: f["ok"], ReplayOf: f["ro"], Status: queue.Status(f["s"]),
	}
	if b := f["b"]; b != "" {
		ev.Body = []byte(b)
	}
	var err error
	if ev.Header, err = decodeHeader([]byte(f["h"])); err != nil {
		return nil, fmt.Errorf("event %q: header: %w", ev.ID, err)
	}
	ints := []struct {
		field string
		to    *int
	}{{"a", &ev.Attempts}, {"bu", &ev.Budget}}
	for _, i := range ints {
		if *i.to, err = strconv.Atoi(f[i.field]); err != nil {
			return nil, fmt.Errorf("event %q: field %s: %w", ev.ID, i.field, err)
		}
	}
	times := []struct {
		field string
		to    *time.Time
	}{{"rt", &ev.ReceivedAt}, {"na", &ev.NextAt}, {"da", &ev.DoneAt}}
	for _, t := range times {
		if f[t.field] == "" {
			continue
		}
		ns, err := strconv.ParseInt(f[t.field], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("event %q: field %s: %w", ev.ID, t.field, err)
		}
		*t.to = time.Unix(0, ns)
	}
	if ev.Log, err = decodeLog(f["log"]); err != nil {
		return nil, fmt.Errorf("event %q: log: %w", ev.ID, err)
	}
	return ev, nil
}

// decodeLog reads the attempts, one JSON object a line.
func decodeLog(s string) ([]queue.Attempt, error) {
	if s == "" {
		return nil, nil
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	log := make([]queue.Attempt, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &log[i]); err != nil {
			return nil, err
		}
	}
	return log, nil
}

// hashPairs turns a flat HGETALL reply, or HMGET values for names,
// into a map; a nil value is left out.
func hashPairs(reply []any, names []any) (map[string]string, error) {
	f := make(map[string]string, len(reply))
	step := 2
	if names != nil {
		step = 1
	}
	for i := 0; i+step <= len(reply); i += step {
		name, value := reply[i], reply[i+step-1]
		if names != nil {
			name = names[i]
		}
		if value == nil {
			continue
		}
		n, ok1 := name.(string)
		v, ok2 := value.(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected hash entry %T %T", name, value)
		}
		f[n] = v
	}
	return f, nil
}
