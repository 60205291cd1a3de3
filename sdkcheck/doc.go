// Package sdkcheck cross-checks the gateway against the webhook code of
// providers' official Go SDKs: deliveries an SDK signs must pass the real
// gateway byte for byte, and what `webhook-gateway sign` produces must
// pass the SDK's own verifier after the gateway forwarded it. It is a
// module of its own so that the gateway's users never download these
// SDKs; its tests are all there is to it.
package sdkcheck
