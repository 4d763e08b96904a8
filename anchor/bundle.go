package anchor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/transparency-dev/formats/log"
	tproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
)

// Bundle is what a regulator keeps to check one log entry offline: the entry
// and a C2SP tlog-proof (https://c2sp.org/tlog-proof) of its inclusion, which
// carries the signed checkpoint. A reading's bundle may carry the bundle of
// its device's enrollment, under the same checkpoint, so that the device key
// need not be known in advance. A lab sample's bundle carries none: a lab's
// keys come from the state, not from the log.
type Bundle struct {
	Leaf       []byte  `json:"leaf"`                 // the entry: the envelope bytes (base64 in JSON)
	TLogProof  string  `json:"tlog_proof"`           // c2sp.org/tlog-proof@v1 text with the signed checkpoint
	Enrollment *Bundle `json:"enrollment,omitempty"` // the device's enrollment, optional
}

// Bundle returns the bundle of the entry at index under checkpoint, a signed
// checkpoint of this log. It checks the inclusion proof before returning it.
// The error wraps tapproof.ErrNotYetAnchored if index is not below the checkpoint's
// size. To let a verifier learn the device key from the log, set the result's
// Enrollment to the Bundle of the device's enrollment under the same
// checkpoint.
func (l *Log) Bundle(ctx context.Context, index uint64, checkpoint []byte) (*Bundle, error) {
	cp, err := OpenCheckpoint(checkpoint, l.cfg.Verifier)
	if err != nil {
		return nil, fmt.Errorf("bundle of entry %d: %w", index, err)
	}
	if index >= cp.Size {
		return nil, fmt.Errorf("bundle of entry %d: checkpoint size %d: %w", index, cp.Size, tapproof.ErrNotYetAnchored)
	}
	leaf, err := l.Leaf(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("bundle of entry %d: %w", index, err)
	}
	hashes, err := l.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("bundle of entry %d: %w", index, err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), hashes, cp.Hash); err != nil {
		return nil, fmt.Errorf("bundle of entry %d: trillian's inclusion proof does not match the checkpoint: %w", index, proofError(err))
	}
	tp := tproof.TLogProof{Index: index, Checkpoint: checkpoint, Hashes: make([][sha256.Size]byte, len(hashes))}
	for i, h := range hashes {
		tp.Hashes[i] = [sha256.Size]byte(h) // VerifyInclusion checked the lengths
	}
	return &Bundle{Leaf: leaf, TLogProof: string(tp.Marshal())}, nil
}

// The checks VerifyBundle makes, as named in VerifyError.Check.
const (
	CheckBundle     = "bundle"     // the bundle is malformed or holds no reading (or lab sample, for VerifyEntry)
	CheckCheckpoint = "checkpoint" // the checkpoint is not signed by the log key or is malformed
	CheckInclusion  = "inclusion"  // the leaf is not in the tree the checkpoint commits to
	CheckSignature  = "signature"  // the reading's signature does not verify with the device key, or the lab sample's with its lab's keys
	CheckEnrollment = "enrollment" // the enrollment is missing, not in the log, or does not enroll this device first
)

// VerifyError is the error VerifyBundle returns: which check failed and why.
type VerifyError struct {
	Check string // one of the Check constants
	Err   error
}

// Error names the failed check and the reason.
func (e *VerifyError) Error() string { return fmt.Sprintf("%s check failed: %v", e.Check, e.Err) }

// Unwrap returns the reason.
func (e *VerifyError) Unwrap() error { return e.Err }

func fail(check string, format string, args ...any) error {
	return &VerifyError{Check: check, Err: fmt.Errorf(format, args...)}
}

// Verified is what a bundle proved.
type Verified struct {
	Origin string // the log
	// Checkpoint is the signed checkpoint, with any cosignatures, for a
	// witness policy to be checked against.
	Checkpoint []byte
	Size       uint64           // the checkpoint's tree size
	Root       []byte           // the checkpoint's root hash
	Index      uint64           // the entry's position in the log
	Reading    tapproof.Reading // the signed reading, as the device signed it; zero for a lab sample
	// Enrollment is the device's enrollment from the bundle, and
	// EnrollmentIndex its position; nil if the bundle carried none.
	Enrollment      *tapproof.Enrollment
	EnrollmentIndex uint64
	// LabSample is the lab sample, as its lab signed it, if the entry is
	// one (VerifyEntry); nil for a reading.
	LabSample *tapproof.LabSample
	// LabSignatureChecked says that the lab sample's signature verified
	// with a key of its lab. False if no lab key was given: then only its
	// place in the log is proven, not who signed it.
	LabSignatureChecked bool
}

// Keys are the signers' public keys VerifyEntry checks an entry with.
type Keys struct {
	// Device is the key of a reading's device; if nil it is taken from
	// the bundle's enrollment, as VerifyBundle does.
	Device ed25519.PublicKey
	// Labs are the keys of certified laboratories by lab id, several per
	// lab for rotation, as the state publishes them. If empty, a lab
	// sample's signature is not checked.
	Labs map[string][]ed25519.PublicKey
}

// VerifyBundle checks a reading's bundle offline, trusting nothing from the
// server: the checkpoint must be signed by logKey, whose name is the origin;
// the leaf must be included at its index in the checkpoint's tree; and the
// leaf must be a reading signed by deviceKey. If deviceKey is nil the key is
// taken from the bundle's enrollment, which must be included under the very
// same checkpoint, at a lower index, self-signed by the key it enrolls, for
// the reading's device and utility. An enrollment present alongside a
// deviceKey is verified too and must enroll that key. Errors are *VerifyError.
//
// A bundle proves that the reading was logged before the checkpoint; that the
// log shows everyone the same history needs the checkpoint to be compared
// with ones others hold (consistency proofs, witnesses).
func VerifyBundle(ctx context.Context, b *Bundle, logKey note.Verifier, deviceKey ed25519.PublicKey) (*Verified, error) {
	e, err := openEntry(b, logKey)
	if err != nil {
		return nil, err
	}
	return verifyReading(ctx, b, e, deviceKey)
}

// VerifyEntry checks the bundle of a reading or of a lab sample offline,
// trusting nothing from the server. A reading is checked as VerifyBundle
// checks it with keys.Device. A lab sample's checkpoint and inclusion are
// checked the same way, and then, if keys.Labs holds any key, its
// signature: it must verify with a key of the sample's own lab
// (CheckSignature names a lab with no key given). If keys.Labs is empty the
// signature is not checked and the result says so
// (Verified.LabSignatureChecked is false). Errors are *VerifyError.
func VerifyEntry(ctx context.Context, b *Bundle, logKey note.Verifier, keys Keys) (*Verified, error) {
	e, err := openEntry(b, logKey)
	if err != nil {
		return nil, err
	}
	switch e.env.PayloadType() {
	case tapproof.ReadingPayloadType:
		return verifyReading(ctx, b, e, keys.Device)
	case tapproof.LabSamplePayloadType:
	default:
		return nil, fail(CheckBundle, "leaf %d is neither a reading nor a lab sample: payload type %q", e.p.Index, e.env.PayloadType())
	}
	s, err := e.env.LabSample()
	if err != nil {
		return nil, fail(CheckBundle, "leaf %d: %v", e.p.Index, err)
	}
	if b.Enrollment != nil {
		return nil, fail(CheckBundle, "lab sample at %d: a lab sample's bundle carries no enrollment", e.p.Index)
	}
	v := e.verified()
	v.LabSample = &s
	if len(keys.Labs) == 0 {
		return v, nil
	}
	labKeys := keys.Labs[s.Lab]
	if len(labKeys) == 0 {
		return nil, fail(CheckSignature, "lab sample %s at %d: no key of its lab %q was given, only of %s",
			s.Key(), e.p.Index, s.Lab, strings.Join(slices.Sorted(maps.Keys(keys.Labs)), ", "))
	}
	if err := e.env.VerifyAny(ctx, labKeys); err != nil {
		detail := err.Error()
		if rej, ok := errors.AsType[*tapproof.Rejection](err); ok {
			detail = rej.Detail
		}
		return nil, fail(CheckSignature, "lab sample %s at %d is not signed by lab %q: %s", s.Key(), e.p.Index, s.Lab, detail)
	}
	v.LabSignatureChecked = true
	return v, nil
}

// entry is a bundle's leaf whose checkpoint and inclusion are verified.
type entry struct {
	p   tproof.TLogProof
	cp  *log.Checkpoint
	env *signed.Envelope
}

func (e entry) verified() *Verified {
	return &Verified{Origin: e.cp.Origin, Checkpoint: e.p.Checkpoint, Size: e.cp.Size, Root: e.cp.Hash, Index: e.p.Index}
}

// openEntry checks b's checkpoint with logKey and the inclusion of its leaf,
// and parses the leaf's envelope, without checking any signature on it.
func openEntry(b *Bundle, logKey note.Verifier) (entry, error) {
	var e entry
	if b == nil || len(b.Leaf) == 0 {
		return e, fail(CheckBundle, "no leaf")
	}
	if logKey == nil {
		return e, fail(CheckCheckpoint, "no log key")
	}
	if err := e.p.Unmarshal([]byte(b.TLogProof)); err != nil {
		return e, fail(CheckBundle, "tlog-proof: %v", err)
	}
	var err error
	if e.cp, err = OpenCheckpoint(e.p.Checkpoint, logKey); err != nil {
		return e, &VerifyError{Check: CheckCheckpoint, Err: err}
	}
	if err := verifyInclusion(e.p, e.cp, b.Leaf); err != nil {
		return e, &VerifyError{Check: CheckInclusion, Err: err}
	}
	if e.env, err = signed.Parse(b.Leaf, 0); err != nil {
		return e, fail(CheckBundle, "leaf %d: %v", e.p.Index, err)
	}
	return e, nil
}

// verifyReading checks that the opened entry e of bundle b is a reading
// signed by deviceKey or, if that is nil, by the key of b's enrollment.
func verifyReading(ctx context.Context, b *Bundle, e entry, deviceKey ed25519.PublicKey) (*Verified, error) {
	p, cp, env := e.p, e.cp, e.env
	r, err := env.Reading()
	if err != nil {
		return nil, fail(CheckBundle, "leaf %d: %v", p.Index, err)
	}
	v := e.verified()
	v.Reading = r

	if b.Enrollment != nil {
		en, index, err := verifyEnrollment(ctx, b.Enrollment, p, cp, r)
		if err != nil {
			return nil, &VerifyError{Check: CheckEnrollment, Err: err}
		}
		if len(deviceKey) != 0 && !deviceKey.Equal(en.PublicKey) {
			return nil, fail(CheckEnrollment, "enrollment at %d enrolls a key other than the given device key", index)
		}
		v.Enrollment, v.EnrollmentIndex = en, index
		if len(deviceKey) == 0 {
			deviceKey = en.PublicKey
		}
	}
	if len(deviceKey) == 0 {
		return nil, fail(CheckEnrollment, "no device key given and no enrollment in the bundle")
	}
	if err := env.Verify(ctx, deviceKey); err != nil {
		return nil, fail(CheckSignature, "reading %s at %d: %v", r.Key(), p.Index, err)
	}
	return v, nil
}

func verifyInclusion(p tproof.TLogProof, cp *log.Checkpoint, leaf []byte) error {
	if p.Index >= cp.Size {
		return fmt.Errorf("index %d is not below the checkpoint size %d", p.Index, cp.Size)
	}
	hashes := make([][]byte, len(p.Hashes))
	for i := range p.Hashes {
		hashes[i] = p.Hashes[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), hashes, cp.Hash); err != nil {
		return fmt.Errorf("leaf %d in tree of size %d: %w", p.Index, cp.Size, proofError(err))
	}
	return nil
}

// proofError replaces the merkle package's multi-line root mismatch message.
func proofError(err error) error {
	if e, ok := errors.AsType[proof.RootMismatchError](err); ok {
		return fmt.Errorf("the proof leads to root %x, not %x", e.CalculatedRoot, e.ExpectedRoot)
	}
	return err
}

// verifyEnrollment checks the enrollment bundle of reading r, whose proof is
// rp under checkpoint cp, already verified.
func verifyEnrollment(ctx context.Context, eb *Bundle, rp tproof.TLogProof, cp *log.Checkpoint, r tapproof.Reading) (*tapproof.Enrollment, uint64, error) {
	if eb.Enrollment != nil {
		return nil, 0, errors.New("nested enrollment")
	}
	if len(eb.Leaf) == 0 {
		return nil, 0, errors.New("no leaf")
	}
	var p tproof.TLogProof
	if err := p.Unmarshal([]byte(eb.TLogProof)); err != nil {
		return nil, 0, fmt.Errorf("tlog-proof: %w", err)
	}
	if !bytes.Equal(p.Checkpoint, rp.Checkpoint) {
		return nil, 0, errors.New("its checkpoint differs from the reading's")
	}
	if p.Index >= rp.Index {
		return nil, 0, fmt.Errorf("enrollment at %d is not before the reading at %d", p.Index, rp.Index)
	}
	if err := verifyInclusion(p, cp, eb.Leaf); err != nil {
		return nil, 0, err
	}
	env, err := signed.Parse(eb.Leaf, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("leaf %d: %w", p.Index, err)
	}
	en, err := env.Enrollment()
	if err != nil {
		return nil, 0, fmt.Errorf("leaf %d: %w", p.Index, err)
	}
	if err := signed.StrongKey(en.PublicKey); err != nil {
		return nil, 0, fmt.Errorf("leaf %d: enrollment of %s: %w", p.Index, en.Device, err)
	}
	if err := env.Verify(ctx, en.PublicKey); err != nil {
		return nil, 0, fmt.Errorf("enrollment at %d is not signed by the key it enrolls: %w", p.Index, err)
	}
	if en.Device != r.Device || en.Utility != r.Utility {
		return nil, 0, fmt.Errorf("enrollment at %d is of device %s/%s, the reading is from %s/%s", p.Index, en.Utility, en.Device, r.Utility, r.Device)
	}
	return &en, p.Index, nil
}
