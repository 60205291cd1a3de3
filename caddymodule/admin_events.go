package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// maxListLimit bounds how many events one request lists or replays.
const maxListLimit = 10000

// eventSummary is an event as a list shows it: no headers, no body,
// the last attempt only.
type eventSummary struct {
	ID          string         `json:"id"`
	Queue       string         `json:"queue"`
	Provider    string         `json:"provider"`
	EventID     string         `json:"event_id,omitempty"`
	EventType   string         `json:"event_type,omitempty"`
	Status      queue.Status   `json:"status"`
	Attempts    int            `json:"attempts"`
	ReceivedAt  time.Time      `json:"received_at"`
	NextAt      time.Time      `json:"next_at,omitzero"`
	DoneAt      time.Time      `json:"done_at,omitzero"`
	ReplayOf    string         `json:"replay_of,omitempty"`
	LastAttempt *queue.Attempt `json:"last_attempt,omitempty"`
}

func summarize(ev *queue.Event) eventSummary {
	s := eventSummary{
		ID: ev.ID, Queue: ev.Queue, Provider: ev.Provider, EventID: ev.EventID, EventType: ev.EventType,
		Status: ev.Status, Attempts: ev.Attempts, ReceivedAt: ev.ReceivedAt, NextAt: ev.NextAt,
		DoneAt: ev.DoneAt, ReplayOf: ev.ReplayOf,
	}
	if n := len(ev.Log); n > 0 {
		last := ev.Log[n-1]
		s.LastAttempt = &last
	}
	return s
}

// eventList is the answer of GET /webhook_gateway/events.
type eventList struct {
	Events []eventSummary `json:"events"`
}

// shownEvent is an event as GET /webhook_gateway/events/<id> shows it:
// credentials redacted, the body only on request.
type shownEvent struct {
	queue.Event
	BodySize int `json:"body_size"`
}

func (a *AdminAPI) listEvents(w http.ResponseWriter, r *http.Request, _ []string) error {
	name, err := queueParam(r)
	if err != nil {
		return err
	}
	f, err := parseFilter(r.URL.Query().Get("status"), r.URL.Query().Get("since"), r.URL.Query().Get("limit"), time.Now())
	if err != nil {
		return err
	}
	qs, err := a.queues(name)
	if err != nil {
		return err
	}
	events, err := listAll(r.Context(), qs, f)
	if err != nil {
		return err
	}
	out := eventList{Events: make([]eventSummary, len(events))}
	for i, ev := range events {
		out.Events[i] = summarize(ev)
	}
	return writeJSON(w, out)
}

// listAll lists the events of qs matching f, newest first, f.Limit at
// most in all.
func listAll(ctx context.Context, qs []*runningQueue, f queue.Filter) ([]*queue.Event, error) {
	var events []*queue.Event
	for _, q := range qs {
		if q.backend == nil {
			continue
		}
		got, err := q.backend.List(ctx, q.spec, f)
		if err != nil {
			return nil, backendError(fmt.Errorf("queue %q: list: %w", q.spec.Name, err))
		}
		events = append(events, got...)
	}
	sort.SliceStable(events, func(i, j int) bool {
		if !events[i].ReceivedAt.Equal(events[j].ReceivedAt) {
			return events[i].ReceivedAt.After(events[j].ReceivedAt)
		}
		return events[i].ID > events[j].ID
	})
	return events[:min(len(events), f.Limit)], nil
}

// parseFilter reads a selection: a status, a since that is a duration
// back from now (90m, 1d) or an RFC 3339 time, and a limit.
func parseFilter(status, since, limit string, now time.Time) (queue.Filter, error) {
	f := queue.Filter{Status: queue.Status(status), Limit: queue.DefaultListLimit}
	if status != "" && !f.Status.Valid() {
		return f, apiError(http.StatusBadRequest, fmt.Errorf("status %q: want queued, retrying, delivered or dead", status))
	}
	if since != "" {
		if t, err := time.Parse(time.RFC3339, since); err == nil {
			f.Since = t
		} else if d, err := caddy.ParseDuration(since); err == nil && d > 0 {
			f.Since = now.Add(-d)
		} else {
			return f, apiError(http.StatusBadRequest, fmt.Errorf("since %q: want a positive duration (90m, 24h, 7d) or an RFC 3339 time", since))
		}
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n <= 0 || n > maxListLimit {
			return f, apiError(http.StatusBadRequest, fmt.Errorf("limit %q: want a number from 1 to %d", limit, maxListLimit))
		}
		f.Limit = n
	}
	return f, nil
}

func (a *AdminAPI) showEvent(w http.ResponseWriter, r *http.Request, params []string) error {
	q, ev, err := a.requestedEvent(r, params[0])
	if err != nil {
		return err
	}
	shown := shownEvent{Event: *ev, BodySize: len(ev.Body)}
	shown.Header = redactHeader(ev.Header, q.secretHeaders)
	shown.Body = nil
	if wantBody, _ := strconv.ParseBool(r.URL.Query().Get("body")); wantBody {
		if shown.Body, err = shownBody(ev); err != nil {
			return apiError(http.StatusConflict, fmt.Errorf("event %q: %w", ev.ID, err))
		}
	}
	return writeJSON(w, shown)
}

// requestedEvent finds the event id in the request's ?queue=, or in
// every queue.
func (a *AdminAPI) requestedEvent(r *http.Request, id string) (*runningQueue, *queue.Event, error) {
	name, err := queueParam(r)
	if err != nil {
		return nil, nil, err
	}
	return a.findEvent(r.Context(), name, id)
}

// findEvent finds the event id in the queue called name, or in every
// queue when name is empty.
func (a *AdminAPI) findEvent(ctx context.Context, name, id string) (*runningQueue, *queue.Event, error) {
	qs, err := a.queues(name)
	if err != nil {
		return nil, nil, err
	}
	for _, q := range qs {
		if q.backend == nil {
			continue
		}
		ev, err := q.backend.Get(ctx, q.spec, id)
		if errors.Is(err, queue.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, backendError(fmt.Errorf("queue %q: event %q: %w", q.spec.Name, id, err))
		}
		return q, ev, nil
	}
	where := "any queue"
	if name != "" {
		where = strconv.Quote(name)
	}
	return nil, nil, apiError(http.StatusNotFound, fmt.Errorf("no event %q in %s (unknown, or expired after its retention)", id, where))
}

// actedEvent names an event a retry or replay acted on: DeliveryID is
// the id it is delivered under, new for the replay of a delivered event.
type actedEvent struct {
	ID         string `json:"id"`
	Queue      string `json:"queue"`
	DeliveryID string `json:"delivery_id"`
}

func (a *AdminAPI) retryEvent(w http.ResponseWriter, r *http.Request, params []string) error {
	q, ev, err := a.requestedEvent(r, params[0])
	if err != nil {
		return err
	}
	if err := q.backend.Retry(r.Context(), q.spec, ev.ID); err != nil {
		return backendError(fmt.Errorf("event %q is %s: retry: %w", ev.ID, ev.Status, err))
	}
	return writeJSON(w, actedEvent{ID: ev.ID, Queue: q.spec.Name, DeliveryID: ev.ID})
}
