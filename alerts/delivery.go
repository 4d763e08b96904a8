package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// What every delivery of an alert shares, to an operator's webhook
// (alerts/webhook) and to a resident (alerts/residents): the signature,
// its headers, the results counted, and how a failed delivery is retried.

// Headers of a webhook delivery.
const (
	// HeaderSignature is "sha256=" + hex(HMAC-SHA256(secret, body)).
	HeaderSignature = "X-Tapproof-Signature"
	// HeaderAlertID is the alert's id, for receivers to deduplicate on.
	HeaderAlertID = "X-Tapproof-Alert-Id"
)

// Sign returns the HeaderSignature value for body: "sha256=" followed by the
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports, in constant time, whether signature is Sign(secret, body).
// Receivers written in Go can use it.
func Verify(secret string, body []byte, signature string) bool {
	return hmac.Equal([]byte(signature), []byte(Sign(secret, body)))
}

// Delivery results, the values of the result label of
// tapproof_webhook_deliveries_total and tapproof_notice_deliveries_total.
const (
	ResultDelivered = "delivered" // the receiver took it (2xx, or the SMTP server accepted it)
	ResultRetried   = "retried"   // failed; JetStream redelivers after a back-off
	ResultFailed    = "failed"    // failed for the last time (MaxDeliver reached) or undecodable
)

// Retry defaults, used where a Retry field is zero.
const (
	DefaultMaxDeliver = 16
	DefaultMinBackoff = 5 * time.Second
	DefaultMaxBackoff = 15 * time.Minute
)

// Retry is how a delivery that failed is tried again: JetStream redelivers
// it after Backoff(attempt), until Attempts() attempts. Zero values take the
// defaults.
type Retry struct {
	// MaxDeliver is how many times a delivery is tried before it is given
	// up and counted as failed; DefaultMaxDeliver if zero.
	MaxDeliver int
	// MinBackoff is the delay before the second attempt; each further
	// attempt waits twice as long, up to MaxBackoff. DefaultMinBackoff and
	// DefaultMaxBackoff if zero. With the defaults a delivery is retried for
	// about two hours.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// Validate reports whether r is usable.
func (r Retry) Validate() error {
	if r.MaxDeliver < 0 || r.MinBackoff < 0 || r.MaxBackoff < 0 {
		return errors.New("max deliver and back-off must not be negative")
	}
	if r.MaxBackoff > 0 && r.MinBackoff > r.MaxBackoff {
		return errors.New("min back-off above max back-off")
	}
	return nil
}

// Attempts is MaxDeliver, or DefaultMaxDeliver if it is zero.
func (r Retry) Attempts() int {
	if r.MaxDeliver == 0 {
		return DefaultMaxDeliver
	}
	return r.MaxDeliver
}

// Backoff is the delay after failed attempt n (1-based): MinBackoff,
// doubling with each attempt, up to MaxBackoff. A zero MinBackoff is
// DefaultMinBackoff, but not above a MaxBackoff that is set; a zero
// MaxBackoff is DefaultMaxBackoff, but not below MinBackoff.
func (r Retry) Backoff(n uint64) time.Duration {
	lo, hi := r.MinBackoff, r.MaxBackoff
	if lo == 0 {
		lo = DefaultMinBackoff
		if hi > 0 {
			lo = min(lo, hi)
		}
	}
	if hi == 0 {
		hi = max(DefaultMaxBackoff, lo)
	}
	d := lo
	for i := uint64(1); i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
