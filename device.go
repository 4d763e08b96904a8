package tapproof

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"time"
)

// EnrollmentPayloadType is the DSSE payload type of a device enrollment, the
// log entry that records a device's key before any of its readings.
const EnrollmentPayloadType = "application/vnd.tapproof.enrollment.v1+json"

// DeviceStatus says whether a device's readings are accepted.
type DeviceStatus string

// Device statuses.
const (
	DeviceActive   DeviceStatus = "active"
	DeviceDisabled DeviceStatus = "disabled"
)

// Device is an enrolled sensor: who it belongs to, where it is, the key that
// signs its readings and the firmware it is expected to run.
type Device struct {
	ID      string `json:"id"`
	Utility string `json:"utility"`
	Site    string `json:"site"`
	// Kind is the device's method: ASV, fluorescence or NIRS; its readings
	// must carry it (Reading.PermittedFor). Lab is found only in enrollments
	// made before Enrollable refused it; such a device's readings are all
	// refused.
	Kind Method `json:"kind"`
	// PublicKey is the device's Ed25519 public key.
	PublicKey ed25519.PublicKey `json:"public_key"`
	// Firmware is the hex SHA-256 of the firmware the device must run.
	Firmware   string       `json:"firmware_sha256"`
	Status     DeviceStatus `json:"status"`
	EnrolledAt time.Time    `json:"enrolled_at"`
}

// Validate checks that d is complete and well formed. It accepts every
// kind, lab included, so that enrollments already in a log decode when it is
// read back (a regulator's monitor, bundles); a new enrollment is also
// checked with Enrollable.
func (d Device) Validate() error {
	if err := CheckIDs(d.Utility, d.Site, d.ID); err != nil {
		return err
	}
	if len(d.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("device %s: public key must be %d bytes of Ed25519", d.ID, ed25519.PublicKeySize)
	}
	if b, err := hex.DecodeString(d.Firmware); err != nil || len(b) != 32 {
		return fmt.Errorf("device %s: firmware_sha256 must be 64 hex digits", d.ID)
	}
	switch d.Kind {
	case ASV, Fluorescence, NIRS, Lab:
	default:
		return fmt.Errorf("device %s: unknown kind %q", d.ID, d.Kind)
	}
	switch d.Status {
	case DeviceActive, DeviceDisabled:
	default:
		return fmt.Errorf("device %s: unknown status %q", d.ID, d.Status)
	}
	return nil
}

// Enrollable reports whether d may be enrolled now. A device of kind lab may
// not: certified results come only from enrolled labs, as LabSamples signed
// with their lab keys (see LabSample), and a lab-kind device could make no
// reading tapproof accepts (Reading.PermittedFor). The error is a
// *Rejection with ReasonNotPermitted.
func (d Device) Enrollable() error {
	if d.Kind == Lab {
		return Reject(ReasonNotPermitted, "device %s: kind lab is not enrolled as a device; a certified lab submits lab samples signed with its lab key", d.ID)
	}
	return nil
}

// Enrollment is the payload of the log entry that registers a device. It is
// signed by the device's own key (proof of possession) and appended to the
// utility's log by an administrator, so a bundle can show that the key was
// registered before a reading it signed.
type Enrollment struct {
	Device     string            `json:"device"`
	Utility    string            `json:"utility"`
	Site       string            `json:"site"`
	Kind       Method            `json:"kind"`
	PublicKey  ed25519.PublicKey `json:"public_key"`
	Firmware   string            `json:"firmware_sha256"`
	EnrolledAt time.Time         `json:"enrolled_at"`
}

// Enrollment returns the log entry payload that registers d.
func (d Device) Enrollment() Enrollment {
	return Enrollment{
		Device: d.ID, Utility: d.Utility, Site: d.Site, Kind: d.Kind,
		PublicKey: d.PublicKey, Firmware: d.Firmware, EnrolledAt: d.EnrolledAt,
	}
}

// RevocationRecordType is the "type" of a revocation record.
const RevocationRecordType = "tapproof.revocation.v1"

// Revocation is the log entry that records a device's revocation: from it
// on, the device's readings are refused and it cannot connect. It is
// appended to the utility's log like the enrollment it ends, so that a
// regulator sees when and why a device stopped counting.
type Revocation struct {
	Type      string    `json:"type"` // RevocationRecordType
	Device    string    `json:"device"`
	Utility   string    `json:"utility"`
	Site      string    `json:"site"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
}

// MaxRevocationReason bounds a revocation's reason, which goes in the
// public log.
const MaxRevocationReason = 512

// Validate checks that r is complete.
func (r Revocation) Validate() error {
	if r.Type != RevocationRecordType {
		return Reject(ReasonInvalid, "revocation: type %q, want %q", r.Type, RevocationRecordType)
	}
	if err := CheckIDs(r.Utility, r.Site, r.Device); err != nil {
		return err
	}
	if r.Reason == "" || len(r.Reason) > MaxRevocationReason {
		return Reject(ReasonInvalid, "revocation of %s: a reason of 1 to %d bytes is required", r.Device, MaxRevocationReason)
	}
	return nil
}
