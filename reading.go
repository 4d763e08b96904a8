package tapproof

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// ReadingPayloadType is the DSSE payload type of a signed reading.
const ReadingPayloadType = "application/vnd.tapproof.reading.v1+json"

// DefaultClockSkew is how far in the future a reading's sampled_at may be.
const DefaultClockSkew = 2 * time.Minute

// Reading is one observation by one device: the payload a sensor signs.
type Reading struct {
	Utility string  `json:"utility"`
	Site    string  `json:"site"`
	Device  string  `json:"device"`
	Seq     uint64  `json:"seq"` // per-device sequence number, starting at 1
	Analyte Analyte `json:"analyte"`
	Value   float64 `json:"value"`
	Unit    Unit    `json:"unit"`
	Method  Method  `json:"method"`
	// SampledAt is the phenomenon time, RFC 3339.
	SampledAt time.Time `json:"sampled_at"`
	// Firmware is the hex SHA-256 of the device firmware that produced the reading.
	Firmware string `json:"firmware_sha256"`
	// Model is the calibration model version behind a NIRS estimate.
	Model string `json:"model,omitempty"`
	// DetectionLimit is the method's detection limit in Unit, if known.
	DetectionLimit float64 `json:"detection_limit,omitempty"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidID reports whether s may be used as a utility, site or device id.
// Ids are lower-case letters, digits and hyphens, so that they are safe as
// NATS subject tokens, stream names, InfluxDB tags and URL path segments.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// CheckIDs validates the utility, site and device identifiers.
func CheckIDs(utility, site, device string) error {
	for _, f := range []struct{ name, v string }{{"utility", utility}, {"site", site}, {"device", device}} {
		if !ValidID(f.v) {
			return Reject(ReasonInvalid, "%s id %q must match %s", f.name, f.v, idPattern)
		}
	}
	return nil
}

// Normalize validates r as received at now and returns its canonical form
// (Canonical). skew is the allowed clock skew for sampled_at
// (DefaultClockSkew if zero). The error is always a *Rejection.
func (r Reading) Normalize(now time.Time, skew time.Duration) (Reading, error) {
	if skew == 0 {
		skew = DefaultClockSkew
	}
	c, err := r.Canonical()
	if err != nil {
		return c, err
	}
	if r.SampledAt.After(now.Add(skew)) {
		return r, Reject(ReasonFuture, "sampled_at %s is more than %s after receipt at %s",
			r.SampledAt.Format(time.RFC3339), skew, now.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// Canonical validates everything about r that does not depend on when it
// arrived, and returns a copy whose Value, DetectionLimit and Unit are in
// the analyte's canonical unit. It is what Normalize returned when r was
// accepted, so a logged reading is decoded back to its accepted form with
// it. The error is always a *Rejection.
func (r Reading) Canonical() (Reading, error) {
	if err := CheckIDs(r.Utility, r.Site, r.Device); err != nil {
		return r, err
	}
	if r.Seq == 0 {
		return r, Reject(ReasonMalformed, "seq must be at least 1")
	}
	if r.SampledAt.IsZero() {
		return r, Reject(ReasonMalformed, "sampled_at missing")
	}
	if b, err := hex.DecodeString(r.Firmware); err != nil || len(b) != 32 {
		return r, Reject(ReasonMalformed, "firmware_sha256 must be 64 hex digits")
	}
	switch r.Method {
	case ASV, Fluorescence, NIRS, Lab:
	default:
		return r, Reject(ReasonInvalid, "unknown method %q", r.Method)
	}
	if r.Method == NIRS && r.Model == "" {
		return r, Reject(ReasonInvalid, "a NIRS estimate must name its calibration model")
	}
	v, err := r.Analyte.Normalize(r.Value, r.Unit)
	if err != nil {
		return r, err
	}
	if err := r.Analyte.CheckValue(v); err != nil {
		return r, err
	}
	dl := r.DetectionLimit
	if dl != 0 {
		if dl, err = r.Analyte.Normalize(dl, r.Unit); err != nil {
			return r, err
		}
		if err := r.Analyte.CheckValue(dl); err != nil {
			return r, Reject(ReasonAbsurd, "detection limit: %v", err)
		}
	}
	out := r
	out.Value = v
	out.DetectionLimit = dl
	out.Unit, _ = r.Analyte.CanonicalUnit()
	return out, nil
}

// PermittedFor checks that a device enrolled as kind may have made r: r's
// method is kind, and that method may report r's analyte (Method.Reports).
// A reading by method lab is therefore refused from every device, whatever
// its kind: certified results come only from enrolled labs, as LabSamples.
// The check needs the registry, so ingest makes it, for the bulk path and the
// alert lane alike, after Normalize; Canonical does not, so that readings
// logged before it existed still decode. The error is a *Rejection with
// ReasonNotPermitted.
func (r Reading) PermittedFor(kind Method) error {
	switch {
	case r.Method == Lab:
		return Reject(ReasonNotPermitted, "device %s sent a reading by method lab: lab results are lab samples signed by an enrolled lab", r.Device)
	case r.Method != kind:
		return Reject(ReasonNotPermitted, "device %s is enrolled as %s, its reading claims method %s", r.Device, kind, r.Method)
	case !r.Method.Reports(r.Analyte):
		return Reject(ReasonNotPermitted, "method %s does not report %s", r.Method, r.Analyte)
	}
	return nil
}

// Key identifies a reading: device id and sequence number. It is also the
// JetStream message id sensors publish with.
func (r Reading) Key() string { return ReadingKey(r.Device, r.Seq) }

// ReadingKey formats the identity of reading seq of device.
func ReadingKey(device string, seq uint64) string { return fmt.Sprintf("%s-%d", device, seq) }

// Accepted is a verified, normalised reading with its position in its
// utility's log.
type Accepted struct {
	Reading Reading
	Index   uint64 // leaf index in the utility's log
}
