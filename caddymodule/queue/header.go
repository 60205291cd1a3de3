package queue

// Headers the app receives with every attempt, besides the provider's
// own and the gateway's Webhook-Gateway-Provider/-Event-Id/-Event-Type.
// A stored copy of the gateway's is removed before they are set, so the
// app can trust them.
const (
	// HeaderDeliveryID is the event's delivery id: the same on every
	// attempt, retry and replay of an event the app never answered 2xx.
	// The app deduplicates on it.
	HeaderDeliveryID = "Webhook-Gateway-Delivery-Id"
	// HeaderAttempt is the attempt's number: 1, 2, …
	HeaderAttempt = "Webhook-Gateway-Attempt"
	// HeaderIdempotencyKey is the delivery id, unless the provider sent
	// one of its own (GitLab does), which is kept.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayOf, on a replay of a delivered event (which has a
	// delivery id of its own), is the delivery id it replays.
	HeaderReplayOf = "Webhook-Gateway-Replay-Of"
)

// HeaderSafe percent-encodes what a header value cannot carry as is:
// "%", control characters (which no header value may hold) and a space
// at either end (which HTTP trims). An id such as "a\r\nb" is sent as
// "a%0D%0Ab", and url.PathUnescape gives it back exactly. Values that
// need nothing are returned unchanged.
func HeaderSafe(v string) string {
	unsafe := func(i int) bool {
		c := v[i]
		return c < 0x20 || c == 0x7f || c == '%' || (c == ' ' && (i == 0 || i == len(v)-1))
	}
	i := 0
	for i < len(v) && !unsafe(i) {
		i++
	}
	if i == len(v) {
		return v
	}
	const hex = "0123456789ABCDEF"
	out := []byte(v[:i])
	for ; i < len(v); i++ {
		if c := v[i]; unsafe(i) {
			out = append(out, '%', hex[c>>4], hex[c&0xf])
		} else {
			out = append(out, c)
		}
	}
	return string(out)
}
