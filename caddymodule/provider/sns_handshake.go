package provider

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
)

// SNSConfirm confirms an SNS subscription: a SubscriptionConfirmation
// whose signature holds, for a topic the route accepts, is confirmed by
// a GET of its SubscribeURL and answered 200 by the gateway; the app
// sees nothing of it. The URL is fetched through the KeySource, which
// admits it under the same host rule as the certificates (https, AWS's
// SNS hosts, no userinfo, no port, no redirect), and only when it
// confirms the message's own topic, so a confirmation cannot make the
// gateway call anything else. An UnsubscribeConfirmation is an ordinary verified
// delivery: it is forwarded, and its SubscribeURL (which would subscribe
// again) is never called.
type SNSConfirm struct{}

// Methods implements Handshake.
func (SNSConfirm) Methods() []string { return nil }

// BeforeVerify implements Handshake: nothing is answered unsigned.
func (SNSConfirm) BeforeVerify(*Request, HandshakeConfig) (*Answer, bool) { return nil, false }

// AfterVerify implements Handshake. Without a KeySource the confirmation
// is forwarded to the app like any verified delivery, for it to confirm.
func (SNSConfirm) AfterVerify(r *Request, _ Verified, cfg HandshakeConfig) (*Answer, bool) {
	m, err := parseSNS(r.Body)
	if err != nil || m["Type"] != snsSubscribe || cfg.Keys == nil {
		return nil, false
	}
	topic, subscribe := m["TopicArn"], m["SubscribeURL"]
	if !slices.Contains(cfg.Topics, topic) {
		return text("the topic is not one of the route's topics", nil).with(http.StatusForbidden), true
	}
	if err := confirmsTopic(subscribe, topic); err != nil {
		return text("SubscribeURL "+err.Error(), nil).with(http.StatusForbidden), true
	}
	// Cached like a key: a signed confirmation can be replayed for the
	// Timestamp's hour, and each replay must neither call AWS again nor
	// spend the fetch slots and pace that SNS's certificates need. A
	// SubscribeURL carries its own token, so its answer is its alone.
	_, err = cfg.Keys.Fetch(r.Ctx(), KeyRequest{Provider: snsKeyProvider, URL: subscribe, HostPattern: snsHosts})
	switch {
	case err == nil:
	case keyRefusal(err).Reason == ReasonKeyNotAllowed:
		return text("SubscribeURL is not allowed", nil).with(http.StatusForbidden), true
	default:
		// SNS sends the confirmation again after a failure.
		return text("the subscription could not be confirmed now", nil).with(http.StatusServiceUnavailable), true
	}
	return text("subscription confirmed", nil), true
}

// confirmsTopic checks that a SubscribeURL confirms a subscription to
// topic and nothing else. Its scheme, host and port are the KeySource's
// to check, under AWS's host rule as for certificates.
func confirmsTopic(raw, topic string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	q := u.Query()
	if len(q["Action"]) != 1 || q.Get("Action") != "ConfirmSubscription" {
		return errors.New("does not confirm a subscription")
	}
	if len(q["TopicArn"]) != 1 || q.Get("TopicArn") != topic {
		return errors.New("confirms another topic")
	}
	return nil
}

// with sets an answer's status.
func (a *Answer) with(status int) *Answer {
	a.Status = status
	return a
}

// Interface guards
var _ Handshake = SNSConfirm{}
