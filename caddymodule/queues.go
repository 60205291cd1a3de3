package caddymodule

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"sync"

	"github.com/webrev/webhook-gateway/caddymodule/provider"
	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

// runningQueue is one queue as the app runs it: every handler whose
// source names it shares it.
type runningQueue struct {
	spec    *queue.Spec
	config  *queue.Config
	backend queue.Backend
	// secretHeaders are the token and signature headers of the routes
	// that feed the queue (a custom scheme's may be named anything):
	// never shown, like those of the catalog.
	secretHeaders map[string]bool
}

// queueRegistry holds the queues of one config, by name.
type queueRegistry struct {
	mu     sync.Mutex
	queues map[string]*runningQueue
}

// register adds the queue of a handler, or checks that a handler
// already registered the same one: two handlers with one source and
// different settings would deliver one queue two ways.
func (r *queueRegistry) register(spec *queue.Spec, cfg *queue.Config) (*runningQueue, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if q, ok := r.queues[spec.Name]; ok {
		if !reflect.DeepEqual(q.config, cfg) || !reflect.DeepEqual(q.spec, spec) {
			return nil, fmt.Errorf("queue %q: two handlers share this source with different queue settings (to %s and %s); give one of them its own source", spec.Name, q.config.To, cfg.To)
		}
		return q, nil
	}
	if r.queues == nil {
		r.queues = make(map[string]*runningQueue)
	}
	q := &runningQueue{spec: spec, config: cfg}
	r.queues[spec.Name] = q
	return q, nil
}

// noteSecretHeaders adds the credential headers of a route feeding q.
func (r *queueRegistry) noteSecretHeaders(q *runningQueue, c provider.Credentials) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, list := range [][]string{c.TokenHeaders, c.SignatureHeaders} {
		for _, name := range list {
			if q.secretHeaders == nil {
				q.secretHeaders = make(map[string]bool)
			}
			q.secretHeaders[http.CanonicalHeaderKey(name)] = true
		}
	}
}

// byName returns the queue called name.
func (r *queueRegistry) byName(name string) (*runningQueue, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q, ok := r.queues[name]
	return q, ok
}

// all returns the queues sorted by name.
func (r *queueRegistry) all() []*runningQueue {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*runningQueue, 0, len(r.queues))
	for _, q := range r.queues {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}
