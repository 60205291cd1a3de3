package caddymodule

import (
	"context"
	"fmt"
	"net/http"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// queueView is a queue's figures, or why they could not be read: one
// failing queue must not hide the others.
type queueView struct {
	queue.Stats
	Error string `json:"error,omitempty"`
}

// queueList is the answer of GET /webhook_gateway/queues.
type queueList struct {
	Queues []queueView `json:"queues"`
}

func (a *AdminAPI) listQueues(w http.ResponseWriter, r *http.Request, _ []string) error {
	qs, err := a.queues("")
	if err != nil {
		return err
	}
	out := queueList{Queues: make([]queueView, 0, len(qs))}
	for _, q := range qs {
		out.Queues = append(out.Queues, q.view(r.Context()))
	}
	return writeJSON(w, out)
}

func (a *AdminAPI) showQueue(w http.ResponseWriter, r *http.Request, params []string) error {
	q, err := a.queueNamed(params[0])
	if err != nil {
		return err
	}
	stats, err := q.backend.Stats(r.Context(), q.spec)
	if err != nil {
		return backendError(fmt.Errorf("queue %q: stats: %w", q.spec.Name, err))
	}
	return writeJSON(w, stats)
}

func (a *AdminAPI) pauseQueue(w http.ResponseWriter, r *http.Request, params []string) error {
	return a.setPaused(w, r, params[0], true)
}

func (a *AdminAPI) resumeQueue(w http.ResponseWriter, r *http.Request, params []string) error {
	return a.setPaused(w, r, params[0], false)
}

// setPaused pauses or resumes delivery and answers with the figures
// that follow.
func (a *AdminAPI) setPaused(w http.ResponseWriter, r *http.Request, name string, paused bool) error {
	q, err := a.queueNamed(name)
	if err != nil {
		return err
	}
	if err := q.backend.SetPaused(r.Context(), q.spec, paused); err != nil {
		return backendError(fmt.Errorf("queue %q: pause: %w", name, err))
	}
	stats, err := q.backend.Stats(r.Context(), q.spec)
	if err != nil {
		return backendError(fmt.Errorf("queue %q: stats: %w", name, err))
	}
	return writeJSON(w, stats)
}

// view reads the queue's figures.
func (q *runningQueue) view(ctx context.Context) queueView {
	v := queueView{Stats: queue.Stats{Queue: q.spec.Name}}
	if q.backend == nil {
		v.Error = "no store yet"
		return v
	}
	stats, err := q.backend.Stats(ctx, q.spec)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Stats = stats
	return v
}
