package caddymodule

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// replaySelection is what POST /webhook_gateway/events/replay replays:
// the events given by id, or else those matching the filter (status
// dead unless another is given), oldest first.
type replaySelection struct {
	Queue  string   `json:"queue,omitempty"`
	Status string   `json:"status,omitempty"`
	Since  string   `json:"since,omitempty"`
	IDs    []string `json:"ids,omitempty"`
	Limit  int      `json:"limit,omitempty"`
}

// replayResult is the answer: what was replayed, what was not and why,
// and whether the filter matched more than the limit.
type replayResult struct {
	Replayed []actedEvent   `json:"replayed"`
	Skipped  []skippedEvent `json:"skipped,omitempty"`
	More     bool           `json:"more,omitempty"`
}

type skippedEvent struct {
	ID    string `json:"id"`
	Queue string `json:"queue,omitempty"`
	Error string `json:"error"`
}

// defaultReplayLimit is how many events a replay by filter takes
// without a limit; a run that leaves more says so, and the next run
// takes them (the replayed ones no longer match a dead filter).
const defaultReplayLimit = 1000

// maxReplayBody bounds the selection a replay request may send.
const maxReplayBody = 1 << 20

func (a *AdminAPI) replayEvents(w http.ResponseWriter, r *http.Request, _ []string) error {
	sel, err := readSelection(r)
	if err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	targets, more, err := a.selectEvents(r.Context(), sel)
	if err != nil {
		return err
	}
	out := a.replay(r.Context(), targets)
	out.More = more
	if err := r.Context().Err(); err != nil {
		return apiError(http.StatusRequestTimeout, fmt.Errorf("replay stopped after %d events: %w", len(out.Replayed), err))
	}
	return writeJSON(w, out)
}

// readSelection reads the selection from a JSON body, or from the query
// (queue, status, since, limit, and id repeated) when there is none.
func readSelection(r *http.Request) (replaySelection, error) {
	var sel replaySelection
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxReplayBody))
	if err != nil {
		return sel, fmt.Errorf("reading the selection: %w", err)
	}
	if len(body) > 0 {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			return sel, fmt.Errorf("the selection must be JSON (Content-Type: application/json)")
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sel); err != nil {
			return sel, fmt.Errorf("reading the selection: %w", err)
		}
		return sel, nil
	}
	q := r.URL.Query()
	sel = replaySelection{Queue: q.Get("queue"), Status: q.Get("status"), Since: q.Get("since"), IDs: q["id"]}
	if l := q.Get("limit"); l != "" {
		if sel.Limit, err = strconv.Atoi(l); err != nil {
			return sel, fmt.Errorf("limit %q: not a number", l)
		}
	}
	return sel, nil
}

// replayTarget is one selected event.
type replayTarget struct {
	q  *runningQueue
	id string
}

// selectEvents resolves a selection to events, oldest first; more says
// the filter matched more than the limit.
func (a *AdminAPI) selectEvents(ctx context.Context, sel replaySelection) ([]replayTarget, bool, error) {
	if len(sel.IDs) > 0 {
		if sel.Status != "" || sel.Since != "" {
			return nil, false, apiError(http.StatusBadRequest, errors.New("give ids or a filter (status, since), not both"))
		}
		if len(sel.IDs) > maxListLimit {
			return nil, false, apiError(http.StatusBadRequest, fmt.Errorf("at most %d ids at once", maxListLimit))
		}
		targets := make([]replayTarget, 0, len(sel.IDs))
		for _, id := range sel.IDs {
			q, _, err := a.findEvent(ctx, sel.Queue, id)
			if err != nil {
				return nil, false, err
			}
			targets = append(targets, replayTarget{q, id})
		}
		return targets, false, nil
	}
	if sel.Status == "" {
		sel.Status = string(queue.StatusDead)
	}
	if sel.Status == string(queue.StatusQueued) {
		return nil, false, apiError(http.StatusBadRequest, errors.New("queued events are on their way already: nothing to replay"))
	}
	limit := strconv.Itoa(cmp.Or(sel.Limit, defaultReplayLimit))
	f, err := parseFilter(sel.Status, sel.Since, limit, time.Now())
	if err != nil {
		return nil, false, err
	}
	qs, err := a.queues(sel.Queue)
	if err != nil {
		return nil, false, err
	}
	// One more than the limit tells whether there are more.
	f.Limit++
	events, err := listAll(ctx, qs, f)
	if err != nil {
		return nil, false, err
	}
	more := len(events) == f.Limit
	events = events[:min(len(events), f.Limit-1)]
	targets := make([]replayTarget, 0, len(events))
	for _, ev := range slices.Backward(events) {
		q, _ := queueIn(qs, ev.Queue)
		targets = append(targets, replayTarget{q, ev.ID})
	}
	return targets, more, nil
}

// queueIn finds the queue called name among qs.
func queueIn(qs []*runningQueue, name string) (*runningQueue, bool) {
	for _, q := range qs {
		if q.spec.Name == name {
			return q, true
		}
	}
	return nil, false
}

// replay replays targets one by one, paced by each queue's own rate, so
// that a bulk replay of a day's dead letters cannot flood the app; it
// stops when ctx ends (the client went away).
func (a *AdminAPI) replay(ctx context.Context, targets []replayTarget) replayResult {
	out := replayResult{Replayed: []actedEvent{}}
	pacers := make(map[*runningQueue]*rate.Limiter)
	for _, t := range targets {
		if t.q == nil || t.q.backend == nil {
			out.Skipped = append(out.Skipped, skippedEvent{ID: t.id, Error: "its queue is not running"})
			continue
		}
		if err := pacer(pacers, t.q).Wait(ctx); err != nil {
			return out
		}
		newID, err := t.q.backend.Replay(ctx, t.q.spec, t.id, queue.NewID(time.Now()))
		if err != nil {
			out.Skipped = append(out.Skipped, skippedEvent{ID: t.id, Queue: t.q.spec.Name, Error: err.Error()})
			continue
		}
		out.Replayed = append(out.Replayed, actedEvent{ID: t.id, Queue: t.q.spec.Name, DeliveryID: newID})
	}
	return out
}

// pacer returns the queue's limiter: its rate and burst, or no limit.
func pacer(pacers map[*runningQueue]*rate.Limiter, q *runningQueue) *rate.Limiter {
	if l, ok := pacers[q]; ok {
		return l
	}
	l := rate.NewLimiter(rate.Inf, 0)
	if r := q.config.Rate; r != nil && r.Count > 0 && r.Period > 0 {
		l = rate.NewLimiter(rate.Every(time.Duration(r.Period)/time.Duration(r.Count)), int(max(r.Burst, 1)))
	}
	pacers[q] = l
	return l
}
