package keyfetch

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// How long a fetched document is kept.
const (
	// DefaultTTL applies when the answer says nothing of its lifetime.
	DefaultTTL = time.Hour
	// MinTTL keeps a document at least this long even if its server says
	// less (or no-store), so that deliveries cannot make us fetch at will.
	MinTTL = time.Minute
	// MaxTTL refetches at least this often, so that a rotated key is
	// seen within a day whatever the server says.
	MaxTTL = 24 * time.Hour
	// FailureTTL keeps a failed fetch: a dead key server or a flood of
	// forged key locations costs one fetch per location per FailureTTL.
	FailureTTL = 30 * time.Second
	// MaxStale is how long past its expiry a document that was fetched
	// may still answer while its refetch is refused as busy or fails: a
	// key server's outage, or a flood of forged key locations spending
	// the fetch budget, blocks no genuine delivery for that long. Beyond
	// it the document is too old to trust: refused until refetched.
	MaxStale = 24 * time.Hour
)

// ttl is how long a 200 answer may be kept: Cache-Control's max-age less
// the Age it already has, clamped to [MinTTL, MaxTTL]; DefaultTTL when
// there is no max-age. no-store and no-cache count as max-age=0.
func ttl(h http.Header) time.Duration {
	maxAge, ok := maxAge(h.Values("Cache-Control"))
	if !ok {
		return DefaultTTL
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		maxAge -= min(age, maxAge)
	}
	return min(max(time.Duration(min(maxAge, int64(MaxTTL/time.Second)))*time.Second, MinTTL), MaxTTL)
}

// maxAge reads the max-age directive, in seconds, from Cache-Control
// values (RFC 9111 §5.2). A malformed max-age counts as 0, as the RFC
// asks of a cache; a negative or huge one is clamped by the caller.
func maxAge(values []string) (int64, bool) {
	found, seconds := false, int64(0)
	for _, v := range values {
		for _, d := range strings.Split(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				if found {
					continue // the first one wins
				}
				found = true
				seconds = parseSeconds(arg)
			}
		}
	}
	return seconds, found
}

// parseSeconds reads a delta-seconds value, possibly quoted: one too
// large to hold is the largest there is, a malformed one 0.
func parseSeconds(arg string) int64 {
	arg = strings.Trim(strings.TrimSpace(arg), `"`)
	n, err := strconv.ParseInt(arg, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(arg, "-"):
		return math.MaxInt64
	case err != nil || n < 0:
		return 0
	}
	return n
}
