package monitor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/signed"
)

// leafType is what a leaf is.
type leafType uint8

// Leaf types.
const (
	typeOther leafType = iota // not a tapproof entry
	typeReading
	typeEnrollment
	typeRevocation
	typeLabSample
	typeInvalidation
	typeNotice
	typeSetAside
)

var leafTypeNames = [...]string{
	typeOther: "other", typeReading: "reading", typeEnrollment: "enrollment", typeRevocation: "revocation",
	typeLabSample: "lab_sample", typeInvalidation: "invalidation", typeNotice: "notice", typeSetAside: "set_aside",
}

// String names t as findings do (Finding.LeafType).
func (t leafType) String() string { return leafTypeNames[t] }

// maxLeaf bounds the envelope of a leaf: that of an enrollment, the
// largest the platform logs.
const maxLeaf = 64 << 10

// entry is one new leaf as the parse stage leaves it: hashed, decoded once,
// and checked as far as it can be without the entries before it. The
// sequencer then checks it against the log's devices and, for a reading,
// sets the key its signature is verified with.
type entry struct {
	index uint64
	leaf  []byte
	hash  []byte
	typ   leafType
	// env is a reading's envelope, to verify with key.
	env      *signed.Envelope
	key      ed25519.PublicKey
	enrolled uint64 // the leaf of the enrollment that gave key
	// device, site, utility and firmware are a reading's or a
	// revocation's claims; method and analyte a reading's.
	device, site, utility, firmware string
	method                          tapproof.Method
	analyte                         tapproof.Analyte
	seq                             uint64
	// enrolls is the device an enrollment enrolls, its self-signature
	// verified.
	enrolls *Device
	// unchecked: a lab sample or invalidation whose signature could not
	// be checked for want of keys.
	unchecked bool
	problem   *problem
	// notPermitted is what is wrong with a reading whose signature is yet
	// to be verified: its device's enrollment does not permit it. It
	// becomes the problem once the signature verifies, so that a reading
	// the device did not sign is reported as that instead.
	notPermitted *problem
}

// problem is what is wrong with a leaf.
type problem struct {
	kind       Kind
	msg        string
	signer     string  // the device, lab or reviewer the leaf names
	enrollment *uint64 // a reading's device's enrollment
	// reason and sha256 are a set-aside record's.
	reason, sha256 string
}

func (e *entry) fail(k Kind, signer, format string, args ...any) {
	e.problem = &problem{kind: k, signer: signer, msg: fmt.Sprintf(format, args...)}
}

// leafChecker checks the leaves of one log.
type leafChecker struct {
	utility string
	keys    compliance.KeySet
}

// parse hashes and decodes the leaf at index and makes every check that
// needs no other leaf.
func (c *leafChecker) parse(ctx context.Context, index uint64, leaf []byte) entry {
	e := entry{index: index, leaf: leaf, hash: rfc6962.DefaultHasher.HashLeaf(leaf)}
	env, err := signed.Parse(leaf, maxLeaf)
	if err != nil {
		c.parseRecord(&e)
		return e
	}
	switch env.PayloadType() {
	case tapproof.ReadingPayloadType:
		e.typ = typeReading
		r, err := env.Reading()
		if err == nil {
			_, err = r.Canonical()
		}
		if err != nil {
			e.fail(KindBadLeaf, r.Device, "reading: %v", err)
			return e
		}
		if r.Utility != c.utility {
			e.fail(KindBadLeaf, r.Device, "reading %s of utility %q in the log of %q", r.Key(), r.Utility, c.utility)
			return e
		}
		e.env, e.device, e.site, e.utility, e.firmware = env, r.Device, r.Site, r.Utility, r.Firmware
		e.method, e.analyte, e.seq = r.Method, r.Analyte, r.Seq
	case tapproof.EnrollmentPayloadType:
		e.typ = typeEnrollment
		en, err := env.Enrollment()
		if err != nil {
			e.fail(KindBadLeaf, "", "enrollment: %v", err)
			return e
		}
		d := tapproof.Device{ID: en.Device, Utility: en.Utility, Site: en.Site, Kind: en.Kind, PublicKey: en.PublicKey,
			Firmware: en.Firmware, Status: tapproof.DeviceActive, EnrolledAt: en.EnrolledAt}
		if err := d.Validate(); err != nil {
			e.fail(KindBadLeaf, en.Device, "enrollment: %v", err)
			return e
		}
		if en.Utility != c.utility {
			e.fail(KindBadLeaf, en.Device, "enrollment of device %s of utility %q in the log of %q", en.Device, en.Utility, c.utility)
			return e
		}
		if err := signed.StrongKey(en.PublicKey); err != nil {
			e.fail(KindBadLeaf, en.Device, "enrollment of device %s: %v", en.Device, err)
			return e
		}
		if err := env.Verify(ctx, en.PublicKey); err != nil {
			e.fail(KindBadSignature, en.Device, "enrollment of device %s is not signed by the key it enrolls", en.Device)
			return e
		}
		e.device = en.Device
		e.enrolls = &Device{Key: en.PublicKey, Utility: en.Utility, Site: en.Site, Kind: en.Kind, Firmware: en.Firmware, Enrolled: index}
	case tapproof.LabSamplePayloadType:
		e.typ = typeLabSample
		s, err := env.LabSample()
		if err == nil {
			s, err = s.Normalize()
		}
		if err != nil {
			e.fail(KindBadLeaf, s.Lab, "lab sample: %v", err)
			return e
		}
		if s.Utility != c.utility {
			e.fail(KindBadLeaf, s.Lab, "lab sample %s of utility %q in the log of %q", s.Key(), s.Utility, c.utility)
			return e
		}
		c.verifySigner(ctx, &e, env, "lab", s.Lab, c.keys.Labs, "lab sample "+s.Key())
	case tapproof.InvalidationPayloadType:
		e.typ = typeInvalidation
		inv, err := env.Invalidation()
		if err == nil {
			err = inv.Validate()
		}
		if err != nil {
			e.fail(KindBadLeaf, inv.Reviewer, "invalidation: %v", err)
			return e
		}
		if inv.Utility != c.utility {
			e.fail(KindBadLeaf, inv.Reviewer, "invalidation of %s of utility %q in the log of %q", inv.SampleKey(), inv.Utility, c.utility)
			return e
		}
		if inv.SampleIndex >= index {
			e.fail(KindBadLeaf, inv.Reviewer, "invalidation of %s names leaf %d, which is not before it", inv.SampleKey(), inv.SampleIndex)
			return e
		}
		c.verifySigner(ctx, &e, env, "reviewer", inv.Reviewer, c.keys.Reviewers, "invalidation of "+inv.SampleKey())
	default:
		e.fail(KindBadLeaf, "", "an envelope of payload type %q, which is no tapproof entry", env.PayloadType())
	}
	return e
}

// verifySigner checks that env, a lab sample or invalidation, is signed
// by a key of the signer id of role among keys. Without any key of that
// role the leaf is unchecked.
func (c *leafChecker) verifySigner(ctx context.Context, e *entry, env *signed.Envelope, role, id string, keys map[string][]ed25519.PublicKey, what string) {
	if len(keys) == 0 {
		e.unchecked = true
		return
	}
	pubs, ok := keys[id]
	if !ok || len(pubs) == 0 {
		e.fail(KindUnattributable, id, "%s: %s %q has no key among those given", what, role, id)
		return
	}
	if err := env.VerifyAny(ctx, pubs); err != nil {
		e.fail(KindBadSignature, id, "%s: not signed by a key of %s %q", what, role, id)
	}
}

// parseRecord checks a leaf that is not an envelope: a record tapproof
// writes itself.
func (c *leafChecker) parseRecord(e *entry) {
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(e.leaf, &head) != nil {
		e.fail(KindBadLeaf, "", "neither a signed envelope nor a tapproof record")
		return
	}
	switch head.Type {
	case tapproof.RevocationRecordType:
		e.typ = typeRevocation
		var r tapproof.Revocation
		err := decodeStrict(e.leaf, &r)
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			e.fail(KindBadLeaf, r.Device, "revocation: %v", err)
			return
		}
		if r.Utility != c.utility {
			e.fail(KindBadLeaf, r.Device, "revocation of device %s of utility %q in the log of %q", r.Device, r.Utility, c.utility)
			return
		}
		e.device, e.site, e.utility = r.Device, r.Site, r.Utility
	case tapproof.NoticeRecordType:
		e.typ = typeNotice
		var r tapproof.NoticeRecord
		if err := decodeStrict(e.leaf, &r); err != nil {
			e.fail(KindBadLeaf, "", "notice record: %v", err)
			return
		}
		if err := checkNotice(r, c.utility); err != nil {
			e.fail(KindBadLeaf, "", "notice record of alert %q: %v", r.AlertID, err)
		}
	case tapproof.SetAsideRecordType:
		e.typ = typeSetAside
		var r tapproof.SetAside
		if err := decodeStrict(e.leaf, &r); err != nil {
			e.fail(KindBadLeaf, "", "set-aside record: %v", err)
			return
		}
		if err := checkSetAside(r, e.index); err != nil {
			e.fail(KindBadLeaf, "", "set-aside record: %v", err)
			return
		}
		if r.Reason == tapproof.SetAsideUnsealed {
			e.fail(KindForeignEntry, "", "the journal held an entry without tapproof's seal at this index, set aside: tapproof did not write it; the entry's SHA-256 is %s", r.SHA256)
		} else {
			e.fail(KindUndecodableEntry, "", "the journal held a sealed entry at this index that did not decode, set aside; the entry's SHA-256 is %s", r.SHA256)
		}
		e.problem.reason, e.problem.sha256 = r.Reason, r.SHA256
	default:
		e.fail(KindBadLeaf, "", "a record of type %q, which is no tapproof record", head.Type)
	}
}

// checkNotice checks that a notice record is complete.
func checkNotice(r tapproof.NoticeRecord, utility string) error {
	switch {
	case r.AlertID == "":
		return errors.New("no alert id")
	case r.Utility != utility:
		return fmt.Errorf("of utility %q in the log of %q", r.Utility, utility)
	case !slices.Contains([]tapproof.AlertClass{tapproof.Screening, tapproof.IndividualCompliance, tapproof.SystemExceedance}, r.Class):
		return fmt.Errorf("unknown alert class %q", r.Class)
	case !sha256Hex(r.TextSHA256):
		return errors.New("text_sha256 is not 64 hex digits")
	case r.Recipients < 0:
		return errors.New("a negative number of recipients")
	case r.SentAt.IsZero():
		return errors.New("no sent_at")
	}
	return nil
}

// checkSetAside checks the set-aside record at leaf index.
func checkSetAside(r tapproof.SetAside, index uint64) error {
	switch {
	case r.Index != index:
		return fmt.Errorf("stands at leaf %d but names index %d", index, r.Index)
	case !slices.Contains(tapproof.SetAsideReasons, r.Reason):
		return fmt.Errorf("unknown reason %q", r.Reason)
	case !sha256Hex(r.SHA256):
		return errors.New("sha256 is not 64 hex digits")
	}
	return nil
}

func sha256Hex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

// decodeStrict decodes the JSON object b into v, refusing unknown fields
// and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// sequence checks e against the devices the leaves before it enrolled and
// revoked, and updates them: the part of the checks that must go in log
// order. For a reading that passes, it sets e.key, whose signature is then
// to be verified.
func sequence(e *entry, devices map[string]Device) {
	if e.problem != nil {
		return
	}
	switch e.typ {
	case typeEnrollment:
		d := *e.enrolls
		if old, ok := devices[e.device]; ok {
			if !old.Key.Equal(d.Key) || old.Utility != d.Utility || old.Site != d.Site || old.Kind != d.Kind || !strings.EqualFold(old.Firmware, d.Firmware) {
				e.fail(KindBadLeaf, e.device, "device %s enrolled again with other details; its enrollment at leaf %d stands", e.device, old.Enrolled)
				e.problem.enrollment = &old.Enrolled
			}
			return
		}
		devices[e.device] = d
		if d.Kind == tapproof.Lab {
			// Enrolled all the same: its readings are not_permitted, not
			// unattributable.
			e.fail(KindNotPermitted, e.device, "enrollment of device %s of kind lab: certified results are lab samples signed by an enrolled lab, and no reading by such a device is permitted", e.device)
		}
	case typeRevocation:
		d, ok := devices[e.device]
		if !ok {
			e.fail(KindBadLeaf, e.device, "revocation of device %s, which no earlier leaf of the log enrolls", e.device)
			return
		}
		if d.Site != e.site {
			e.fail(KindBadLeaf, e.device, "revocation of device %s at site %q, enrolled at %q", e.device, e.site, d.Site)
			e.problem.enrollment = &d.Enrolled
			return
		}
		if d.Revoked == nil {
			at := e.index
			d.Revoked = &at
			devices[e.device] = d
		}
	case typeReading:
		d, ok := devices[e.device]
		switch {
		case !ok:
			e.fail(KindUnattributable, e.device, "reading of device %s, which no earlier leaf of the log enrolls", e.device)
			return
		case d.Revoked != nil:
			e.fail(KindUnattributable, e.device, "reading of device %s, revoked at leaf %d", e.device, *d.Revoked)
		case d.Site != e.site:
			e.fail(KindBadLeaf, e.device, "reading of device %s at site %q, enrolled at %q", e.device, e.site, d.Site)
		case !strings.EqualFold(d.Firmware, e.firmware):
			e.fail(KindBadLeaf, e.device, "reading of device %s with firmware %.12s…, enrolled with %.12s…", e.device, e.firmware, d.Firmware)
		default:
			e.key, e.enrolled = d.Key, d.Enrolled
			r := tapproof.Reading{Device: e.device, Method: e.method, Analyte: e.analyte}
			if err := r.PermittedFor(d.Kind); err != nil {
				at := d.Enrolled
				e.notPermitted = &problem{kind: KindNotPermitted, signer: e.device, enrollment: &at,
					msg: fmt.Sprintf("reading %s of device %s, enrolled at leaf %d as %s: %s", tapproof.ReadingKey(e.device, e.seq), e.device, d.Enrolled, d.Kind, rejectionDetail(err))}
			}
			return
		}
		e.problem.enrollment = &d.Enrolled
	}
}

// rejectionDetail is the detail of a *tapproof.Rejection, without its
// reason, which the finding's kind says.
func rejectionDetail(err error) string {
	if r, ok := errors.AsType[*tapproof.Rejection](err); ok {
		return r.Detail
	}
	return err.Error()
}

// badSignature records that a reading's signature does not verify with the
// key sequence set.
func (e *entry) badSignature() {
	e.fail(KindBadSignature, e.device, "reading of device %s is not signed by the key its enrollment at leaf %d gives", e.device, e.enrolled)
	at := e.enrolled
	e.problem.enrollment = &at
}
