package provider

import "fmt"

// Reason is a short, stable code for why a delivery was refused. It is
// part of the public contract: it appears in problem+json answers, in
// logs and in metrics labels, so existing codes must never change.
type Reason string

// The reasons a verifier gives. None of them carries secret material.
const (
	ReasonMissingSignature   Reason = "missing_signature"
	ReasonMalformedSignature Reason = "malformed_signature"
	ReasonSignatureMismatch  Reason = "signature_mismatch"
	ReasonMissingTimestamp   Reason = "missing_timestamp"
	ReasonMalformedTimestamp Reason = "malformed_timestamp"
	ReasonTimestampTooOld    Reason = "timestamp_too_old"
	ReasonTimestampInFuture  Reason = "timestamp_in_future"
	ReasonMissingHeader      Reason = "missing_header"
	// ReasonUnsignedBody: the signature is of a kind that cannot cover
	// this body (a URL-and-form signature over a JSON body, or X's
	// signature over a body that a CRC answer could have signed).
	ReasonUnsignedBody Reason = "unsigned_body"
	// ReasonKeyNotAllowed: the message names a key location (SNS's
	// SigningCertURL) that the rules refuse; nothing was fetched.
	ReasonKeyNotAllowed Reason = "key_url_not_allowed"
	// ReasonKeyUnavailable: the key the signature needs could not be
	// fetched now (timeout, error status, failure kept for a while). The
	// delivery may be genuine, so it is answered 503 for the provider
	// to retry.
	ReasonKeyUnavailable Reason = "key_unavailable"
	// ReasonNotAllowed: the signature holds but the sender is not one
	// the route accepts (an SNS topic or Pub/Sub service account not
	// configured).
	ReasonNotAllowed Reason = "sender_not_allowed"
)

// Error is a refusal. Detail is written for the sender's operator: it may
// name a header or a bound, never a secret or an expected signature.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Detail }

func refuse(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
