package tapproof

import "fmt"

// Reason is why a message was rejected. The set is small and fixed so that it
// can label metrics and name NATS subjects (tapproof.rejected.<reason>).
type Reason string

// Rejection reasons.
const (
	ReasonMalformed       Reason = "malformed"        // not a DSSE envelope, bad JSON, missing fields
	ReasonOversized       Reason = "oversized"        // message larger than the limit
	ReasonBadSignature    Reason = "bad_signature"    // signature does not verify with the device's key
	ReasonUnknownDevice   Reason = "unknown_device"   // device not enrolled
	ReasonDeviceDisabled  Reason = "device_disabled"  // device enrolled but disabled
	ReasonSubjectMismatch Reason = "subject_mismatch" // NATS subject disagrees with the payload
	ReasonFirmware        Reason = "firmware_mismatch"
	ReasonInvalid         Reason = "invalid"      // unknown analyte, unit, method or bad identifier
	ReasonAbsurd          Reason = "absurd_value" // NaN, negative, implausibly large
	ReasonFuture          Reason = "future_timestamp"
	ReasonDuplicate       Reason = "duplicate"    // the same reading again (absorbed, never logged twice)
	ReasonReplayed        Reason = "replayed"     // a sequence number at or below one already accepted
	ReasonEquivocation    Reason = "equivocation" // a different reading claiming an accepted device and sequence number
	// ReasonUnknownSigner: a lab sample or invalidation whose lab or state
	// reviewer is not known, or that no key of that lab or reviewer signed.
	ReasonUnknownSigner Reason = "unknown_signer"
	// ReasonUnknownSample: an invalidation of a lab sample that is not in
	// the log at the leaf index it names.
	ReasonUnknownSample Reason = "unknown_sample"
	// ReasonRateLimited: a device or lab published faster than its limit;
	// the excess is refused at the broker's edge, before the journal.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonNotPermitted: a reading its device may not make: a method
	// other than the device's enrolled kind, an analyte that method cannot
	// measure (NIRS reporting lead), or a device's reading claiming to be a
	// lab result (Reading.PermittedFor); also an enrollment of a device of
	// kind lab (Device.Enrollable).
	ReasonNotPermitted Reason = "not_permitted"
)

// Reasons lists every rejection reason, for pre-initialising metrics.
var Reasons = []Reason{
	ReasonMalformed, ReasonOversized, ReasonBadSignature, ReasonUnknownDevice,
	ReasonDeviceDisabled, ReasonSubjectMismatch, ReasonFirmware, ReasonInvalid,
	ReasonAbsurd, ReasonFuture, ReasonDuplicate, ReasonReplayed, ReasonEquivocation,
	ReasonUnknownSigner, ReasonUnknownSample, ReasonRateLimited, ReasonNotPermitted,
}

// Rejection is the error returned for input that is refused. It carries a
// Reason from the fixed set and a human-readable detail.
type Rejection struct {
	Reason Reason
	Detail string
}

func (r *Rejection) Error() string {
	if r.Detail == "" {
		return string(r.Reason)
	}
	return fmt.Sprintf("%s: %s", r.Reason, r.Detail)
}

// Reject returns a *Rejection with a formatted detail.
func Reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
