package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// adminPrefix is where the admin API serves the queues.
const adminPrefix = "/webhook_gateway/"

// AdminAPI is the admin endpoint of the queues (module
// admin.api.webhook_gateway), which the events and queue subcommands
// call:
//
//	GET  /webhook_gateway/queues               every queue's figures
//	GET  /webhook_gateway/queues/<name>        one queue's figures
//	POST /webhook_gateway/queues/<name>/pause  delivery waits, intake goes on
//	POST /webhook_gateway/queues/<name>/resume
//	GET  /webhook_gateway/events?queue=&status=&since=&limit=
//	GET  /webhook_gateway/events/<id>?queue=&body=1
//	POST /webhook_gateway/events/<id>/retry?queue=
//	POST /webhook_gateway/events/replay        {"queue","status","since","ids","limit"}
//
// Path segments are URL-escaped, so that a queue named source/name is
// one segment (source%2Fname). Credentials and signatures are redacted
// from every answer; bodies are shown only on request.
type AdminAPI struct {
	// app finds the running app; nil means the active config's.
	app func() (*App, error)
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.webhook_gateway",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminPrefix, Handler: caddy.AdminHandlerFunc(a.serveHTTP)}}
}

// adminRoute is one endpoint: a method and path segments, "*" standing
// for a parameter.
type adminRoute struct {
	method  string
	pattern []string
	handle  func(a *AdminAPI, w http.ResponseWriter, r *http.Request, params []string) error
}

var adminRoutes = []adminRoute{
	{http.MethodGet, []string{"queues"}, (*AdminAPI).listQueues},
	{http.MethodGet, []string{"queues", "*"}, (*AdminAPI).showQueue},
	{http.MethodPost, []string{"queues", "*", "pause"}, (*AdminAPI).pauseQueue},
	{http.MethodPost, []string{"queues", "*", "resume"}, (*AdminAPI).resumeQueue},
	{http.MethodGet, []string{"events"}, (*AdminAPI).listEvents},
	{http.MethodPost, []string{"events", "replay"}, (*AdminAPI).replayEvents},
	{http.MethodGet, []string{"events", "*"}, (*AdminAPI).showEvent},
	{http.MethodPost, []string{"events", "*", "retry"}, (*AdminAPI).retryEvent},
}

func (a *AdminAPI) serveHTTP(w http.ResponseWriter, r *http.Request) error {
	segments, err := pathSegments(r.URL)
	if err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	matched := matchRoutes(segments)
	if len(matched) == 0 {
		return apiError(http.StatusNotFound, fmt.Errorf("no such endpoint: %s", r.URL.Path))
	}
	var allowed []string
	for _, m := range matched {
		if m.route.method == r.Method {
			return m.route.handle(a, w, r, m.params)
		}
		allowed = append(allowed, m.route.method)
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return apiError(http.StatusMethodNotAllowed, fmt.Errorf("%s %s: allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
}

type routeMatch struct {
	route  adminRoute
	params []string
}

// matchRoutes returns the routes whose pattern fits segments; when one
// fits without parameters (events/replay), only such routes count, so
// that the literal path is never taken for an id.
func matchRoutes(segments []string) []routeMatch {
	var literal, all []routeMatch
	for _, route := range adminRoutes {
		params, ok := matchPattern(route.pattern, segments)
		if !ok {
			continue
		}
		all = append(all, routeMatch{route, params})
		if len(params) == 0 {
			literal = append(literal, routeMatch{route, params})
		}
	}
	if len(literal) > 0 {
		return literal
	}
	return all
}

func matchPattern(pattern, segments []string) ([]string, bool) {
	if len(pattern) != len(segments) {
		return nil, false
	}
	var params []string
	for i, p := range pattern {
		switch {
		case p == "*" && segments[i] != "":
			params = append(params, segments[i])
		case p != segments[i]:
			return nil, false
		}
	}
	return params, true
}

// pathSegments splits the path after the prefix at its slashes, then
// unescapes each segment: an escaped slash stays inside its segment.
func pathSegments(u *url.URL) ([]string, error) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), adminPrefix)
	if !ok {
		return nil, fmt.Errorf("not under %s", adminPrefix)
	}
	rest = strings.TrimSuffix(rest, "/")
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		s, err := url.PathUnescape(p)
		if err != nil {
			return nil, fmt.Errorf("bad path segment %q: %w", p, err)
		}
		parts[i] = s
	}
	return parts, nil
}

// errNoQueues says why there is nothing to inspect.
var errNoQueues = errors.New("no queue is configured: no webhook_gateway handler of the running config has a queue block")

// running returns the app of the running config.
func (a *AdminAPI) running() (*App, error) {
	if a.app != nil {
		return a.app()
	}
	v, err := caddy.ActiveContext().AppIfConfigured(appName)
	if err != nil {
		// Not loaded: no handler of the config uses the app.
		return nil, apiError(http.StatusNotFound, errNoQueues)
	}
	return v.(*App), nil
}

// queues returns the queue called name, or every queue when name is
// empty; 404 when there is none of either.
func (a *AdminAPI) queues(name string) ([]*runningQueue, error) {
	app, err := a.running()
	if err != nil {
		return nil, err
	}
	all := app.queues.all()
	if len(all) == 0 {
		return nil, apiError(http.StatusNotFound, errNoQueues)
	}
	if name == "" {
		return all, nil
	}
	if q, ok := app.queues.byName(name); ok {
		return []*runningQueue{q}, nil
	}
	names := make([]string, len(all))
	for i, q := range all {
		names[i] = q.spec.Name
	}
	return nil, apiError(http.StatusNotFound, fmt.Errorf("no queue %q (queues: %s)", name, strings.Join(names, ", ")))
}

// queueNamed is queues for exactly one name.
func (a *AdminAPI) queueNamed(name string) (*runningQueue, error) {
	qs, err := a.queues(name)
	if err != nil {
		return nil, err
	}
	if qs[0].backend == nil {
		return nil, apiError(http.StatusServiceUnavailable, fmt.Errorf("queue %q has no store yet", name))
	}
	return qs[0], nil
}

// apiError gives err the status the admin API answers with.
func apiError(status int, err error) error {
	return caddy.APIError{HTTPStatus: status, Err: err}
}

// backendError maps a backend's error to its status: 404 for an
// unknown event, 409 for one whose state forbids the action, 503 for a
// full queue, 500 for a failing store.
func backendError(err error) error {
	var known caddy.APIError
	if errors.As(err, &known) {
		return err
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, queue.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, queue.ErrState):
		status = http.StatusConflict
	case errors.Is(err, queue.ErrFull):
		status = http.StatusServiceUnavailable
	}
	return apiError(status, err)
}

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// queueParam is the ?queue= of a request, one at most.
func queueParam(r *http.Request) (string, error) {
	switch qs := r.URL.Query()["queue"]; len(qs) {
	case 0:
		return "", nil
	case 1:
		return qs[0], nil
	}
	return "", apiError(http.StatusBadRequest, errors.New("give one queue at most"))
}

// Interface guards
var (
	_ caddy.Module      = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
