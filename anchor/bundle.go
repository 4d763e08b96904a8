package anchor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

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
// need not be known in advance.
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
	CheckBundle     = "bundle"     // the bundle is malformed or holds no reading
	CheckCheckpoint = "checkpoint" // the checkpoint is not signed by the log key or is malformed
	CheckInclusion  = "inclusion"  // the leaf is not in the tree the checkpoint commits to
	CheckSignature  = "signature"  // the reading's signature does not verify with the device key
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
	Index      uint64           // the reading's position in the log
	Reading    tapproof.Reading // the signed reading, as the device signed it
	// Enrollment is the device's enrollment from the bundle, and
	// EnrollmentIndex its position; nil if the bundle carried none.
	Enrollment      *tapproof.Enrollment
	EnrollmentIndex uint64
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
	if b == nil || len(b.Leaf) == 0 {
		return nil, fail(CheckBundle, "no leaf")
	}
	if logKey == nil {
		return nil, fail(CheckCheckpoint, "no log key")
	}
	var p tproof.TLogProof
	if err := p.Unmarshal([]byte(b.TLogProof)); err != nil {
		return nil, fail(CheckBundle, "tlog-proof: %v", err)
	}
	cp, err := OpenCheckpoint(p.Checkpoint, logKey)
	if err != nil {
		return nil, &VerifyError{Check: CheckCheckpoint, Err: err}
	}
	if err := verifyInclusion(p, cp, b.Leaf); err != nil {
		return nil, &VerifyError{Check: CheckInclusion, Err: err}
	}
	env, err := signed.Parse(b.Leaf, 0)
	if err != nil {
		return nil, fail(CheckBundle, "leaf %d: %v", p.Index, err)
	}
	r, err := env.Reading()
	if err != nil {
		return nil, fail(CheckBundle, "leaf %d: %v", p.Index, err)
	}
	v := &Verified{Origin: cp.Origin, Checkpoint: p.Checkpoint, Size: cp.Size, Root: cp.Hash, Index: p.Index, Reading: r}

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
	if len(en.PublicKey) != ed25519.PublicKeySize {
		return nil, 0, fmt.Errorf("leaf %d: public key of %d bytes", p.Index, len(en.PublicKey))
	}
	if err := env.Verify(ctx, en.PublicKey); err != nil {
		return nil, 0, fmt.Errorf("enrollment at %d is not signed by the key it enrolls: %w", p.Index, err)
	}
	if en.Device != r.Device || en.Utility != r.Utility {
		return nil, 0, fmt.Errorf("enrollment at %d is of device %s/%s, the reading is from %s/%s", p.Index, en.Utility, en.Device, r.Utility, r.Device)
	}
	return &en, p.Index, nil
}
