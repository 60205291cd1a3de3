package caddymodule

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// problem is an RFC 9457 problem document. Reason repeats the short code
// at the top level so that clients need not parse the type URI.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Reason string `json:"reason"`
}

// problemTypeBase prefixes every problem type. A URN, not a URL, so that
// nobody is sent to a page that does not exist.
const problemTypeBase = "urn:webhook-gateway:problem:"

// writeProblem answers with application/problem+json. Detail must never
// carry a secret or an expected signature.
func writeProblem(w http.ResponseWriter, status int, reason, detail string, retryAfter time.Duration) {
	body, _ := json.Marshal(problem{
		Type:   problemTypeBase + reason,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Reason: reason,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(ceilSeconds(retryAfter), 10))
	}
	w.WriteHeader(status)
	w.Write(body)
}
