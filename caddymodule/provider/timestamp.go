package provider

import (
	"fmt"
	"strconv"
	"time"
)

// TimestampFormat says how a provider writes its signed send time.
type TimestampFormat string

const (
	// TimestampUnix is whole seconds since the epoch (the default).
	TimestampUnix TimestampFormat = "unix"
	// TimestampUnixMilli is milliseconds since the epoch (HubSpot v3,
	// Contentful, Revolut).
	TimestampUnixMilli TimestampFormat = "unix_ms"
	// TimestampRFC3339 is an ISO 8601 date-time (Box, Zendesk, Twitch);
	// one without a zone is UTC (Orb).
	TimestampRFC3339 TimestampFormat = "rfc3339"
)

func (f TimestampFormat) valid() bool {
	switch f {
	case "", TimestampUnix, TimestampUnixMilli, TimestampRFC3339:
		return true
	}
	return false
}

func (f TimestampFormat) parse(s string) (time.Time, error) {
	switch f {
	case "", TimestampUnix:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("not a unix time in seconds")
		}
		return time.Unix(n, 0), nil
	case TimestampUnixMilli:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("not a unix time in milliseconds")
		}
		return time.UnixMilli(n), nil
	case TimestampRFC3339:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			// Orb writes ISO 8601 without a zone and means UTC; the
			// signature covers the string, so reading it as UTC only
			// decides freshness.
			t, err = time.Parse(isoLocal, s)
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("not an RFC 3339 time")
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("unknown timestamp format %q", f)
}

func (f TimestampFormat) format(t time.Time) string {
	switch f {
	case TimestampUnixMilli:
		return strconv.FormatInt(t.UnixMilli(), 10)
	case TimestampRFC3339:
		return t.UTC().Format(time.RFC3339)
	}
	return strconv.FormatInt(t.Unix(), 10)
}

// isoLocal is an ISO 8601 date-time without a zone, read as UTC.
const isoLocal = "2006-01-02T15:04:05.999999999"

// checkFreshness refuses a timestamp further than tolerance from now, in
// either direction: a future one is as suspicious as a stale one, since
// a captured request could otherwise be held and replayed later.
func checkFreshness(ts, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		return nil
	}
	if age := now.Sub(ts); age > tolerance {
		return refuse(ReasonTimestampTooOld, "timestamp is %s old; tolerance is %s", age.Truncate(time.Second), tolerance)
	}
	if ahead := ts.Sub(now); ahead > tolerance {
		return refuse(ReasonTimestampInFuture, "timestamp is %s in the future; tolerance is %s", ahead.Truncate(time.Second), tolerance)
	}
	return nil
}
