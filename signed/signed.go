// Package signed encodes, signs and verifies tapproof's log entries: device
// readings and enrollments wrapped in DSSE envelopes
// (https://github.com/secure-systems-lab/dsse) signed with Ed25519.
//
// The envelope bytes as a sensor sent them are what the log stores, so a
// regulator can check a device's signature on exactly what was logged.
// Batch checks many signatures at once, for those who check a whole log.
//
// This package imports only the root package, the DSSE library,
// edwards25519 (StrongKey) and, for Batch, ed25519consensus.
package signed

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/tapproof/tapproof"
)

// MaxEnvelopeSize is the default largest envelope accepted, in bytes. A
// reading is a few hundred bytes; anything near this is not a reading.
const MaxEnvelopeSize = 16 << 10

// Envelope is a parsed DSSE envelope whose signature has not yet been checked.
type Envelope struct {
	env     dsse.Envelope
	Payload []byte // decoded payload bytes
}

// PayloadType returns the envelope's payload type.
func (e *Envelope) PayloadType() string { return e.env.PayloadType }

// Parse decodes a DSSE envelope of at most max bytes (MaxEnvelopeSize if max
// is zero). Errors are *tapproof.Rejection with reason malformed or oversized.
func Parse(raw []byte, max int) (*Envelope, error) {
	if max == 0 {
		max = MaxEnvelopeSize
	}
	if len(raw) > max {
		return nil, tapproof.Reject(tapproof.ReasonOversized, "%d bytes exceeds the %d-byte limit", len(raw), max)
	}
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e.env); err != nil {
		return nil, tapproof.Reject(tapproof.ReasonMalformed, "envelope: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, tapproof.Reject(tapproof.ReasonMalformed, "envelope: trailing data")
	}
	if e.env.PayloadType == "" || len(e.env.Signatures) == 0 {
		return nil, tapproof.Reject(tapproof.ReasonMalformed, "envelope: payloadType and signatures are required")
	}
	p, err := e.env.DecodeB64Payload()
	if err != nil {
		return nil, tapproof.Reject(tapproof.ReasonMalformed, "envelope payload: %v", err)
	}
	e.Payload = p
	return &e, nil
}

// Verify checks that the envelope carries a valid signature by pub. The error
// is a *tapproof.Rejection with reason bad_signature.
func (e *Envelope) Verify(ctx context.Context, pub ed25519.PublicKey) error {
	v, err := dsse.NewEnvelopeVerifier(verifier{pub: pub})
	if err != nil {
		return fmt.Errorf("envelope verifier: %w", err)
	}
	if _, err := v.Verify(ctx, &e.env); err != nil {
		return tapproof.Reject(tapproof.ReasonBadSignature, "%v", err)
	}
	return nil
}

// VerifyAny checks that the envelope is signed by one of keys, the keys of
// one signer (several allow rotation). The error is a *tapproof.Rejection
// with reason unknown_signer, whose detail ("none is configured", "none of
// its 2 keys verifies the signature") reads after the signer's name.
func (e *Envelope) VerifyAny(ctx context.Context, keys []ed25519.PublicKey) error {
	if len(keys) == 0 {
		return tapproof.Reject(tapproof.ReasonUnknownSigner, "none is configured")
	}
	for _, k := range keys {
		if e.Verify(ctx, k) == nil {
			return nil
		}
	}
	return tapproof.Reject(tapproof.ReasonUnknownSigner, "none of its %d keys verifies the signature", len(keys))
}

// The payload decoders below refuse a payload of another type, unknown
// fields and trailing data. They do not validate: see the Normalize or
// Validate method of each type.

// Reading decodes the payload as a reading (tapproof.ReadingPayloadType).
func (e *Envelope) Reading() (tapproof.Reading, error) {
	return decode[tapproof.Reading](e, tapproof.ReadingPayloadType)
}

// Enrollment decodes the payload as an enrollment
// (tapproof.EnrollmentPayloadType).
func (e *Envelope) Enrollment() (tapproof.Enrollment, error) {
	return decode[tapproof.Enrollment](e, tapproof.EnrollmentPayloadType)
}

// StrongKey reports whether pub is an Ed25519 public key only its private
// key's holder can sign for: a point of the curve, not of small order
// (whose signatures anyone can make, under any verification rule).
func StrongKey(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return fmt.Errorf("public key is not a point of the curve")
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return fmt.Errorf("public key is a point of small order, for which anyone can sign")
	}
	return nil
}

// LabSample decodes the payload as a lab sample
// (tapproof.LabSamplePayloadType).
func (e *Envelope) LabSample() (tapproof.LabSample, error) {
	return decode[tapproof.LabSample](e, tapproof.LabSamplePayloadType)
}

// Invalidation decodes the payload as an invalidation
// (tapproof.InvalidationPayloadType).
func (e *Envelope) Invalidation() (tapproof.Invalidation, error) {
	return decode[tapproof.Invalidation](e, tapproof.InvalidationPayloadType)
}

// decode decodes e's payload, of payloadType, strictly. Every error is a
// *tapproof.Rejection with reason malformed.
func decode[T any](e *Envelope, payloadType string) (T, error) {
	var v T
	if e.env.PayloadType != payloadType {
		return v, tapproof.Reject(tapproof.ReasonMalformed, "payload type %q is not %q", e.env.PayloadType, payloadType)
	}
	dec := json.NewDecoder(bytes.NewReader(e.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, tapproof.Reject(tapproof.ReasonMalformed, "payload: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, tapproof.Reject(tapproof.ReasonMalformed, "payload: trailing data")
	}
	return v, nil
}

// Sign returns the JSON DSSE envelope of payload, signed by key. The
// signature's key id is the DSSE SHA-256 key id of the public key.
func Sign(ctx context.Context, key ed25519.PrivateKey, payloadType string, payload []byte) ([]byte, error) {
	s, err := dsse.NewEnvelopeSigner(signer{key: key})
	if err != nil {
		return nil, fmt.Errorf("envelope signer: %w", err)
	}
	env, err := s.SignPayload(ctx, payloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign envelope: %w", err)
	}
	return json.Marshal(env)
}

// SignReading signs r with the device key.
func SignReading(ctx context.Context, key ed25519.PrivateKey, r tapproof.Reading) ([]byte, error) {
	p, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode reading: %w", err)
	}
	return Sign(ctx, key, tapproof.ReadingPayloadType, p)
}

// SignEnrollment signs the enrollment of a device with the device's own key,
// proving possession of the key being registered.
func SignEnrollment(ctx context.Context, key ed25519.PrivateKey, en tapproof.Enrollment) ([]byte, error) {
	if !bytes.Equal(key.Public().(ed25519.PublicKey), en.PublicKey) {
		return nil, errors.New("sign enrollment: key does not match the enrolled public key")
	}
	p, err := json.Marshal(en)
	if err != nil {
		return nil, fmt.Errorf("encode enrollment: %w", err)
	}
	return Sign(ctx, key, tapproof.EnrollmentPayloadType, p)
}

type signer struct{ key ed25519.PrivateKey }

func (s signer) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.key, data), nil
}
func (s signer) KeyID() (string, error) { return dsse.SHA256KeyID(s.key.Public()) }

type verifier struct{ pub ed25519.PublicKey }

func (v verifier) Verify(_ context.Context, data, sig []byte) error {
	if len(v.pub) != ed25519.PublicKeySize || !ed25519.Verify(v.pub, data, sig) {
		return errors.New("ed25519 signature does not verify")
	}
	return nil
}

func (v verifier) KeyID() (string, error)   { return dsse.SHA256KeyID(v.pub) }
func (v verifier) Public() crypto.PublicKey { return v.pub }

// The decoders of logged leaves turn an entry of a utility's log back into
// what tapproof accepted. They check the form, not the signature, which
// ingest checked when it accepted the entry (a regulator checks it again
// with Verify or VerifyAny). Every error is a *tapproof.Rejection.

// LoggedReading decodes leaf, the envelope of a reading as logged, into
// the reading as accepted: in canonical units (tapproof.Reading.Canonical).
func LoggedReading(leaf []byte) (tapproof.Reading, error) {
	env, err := Parse(leaf, 0)
	if err != nil {
		return tapproof.Reading{}, err
	}
	r, err := env.Reading()
	if err != nil {
		return r, err
	}
	return r.Canonical()
}

// LoggedLabSample decodes leaf, the envelope of a lab sample as logged, into
// the sample as accepted (tapproof.LabSample.Normalize).
func LoggedLabSample(leaf []byte) (tapproof.LabSample, error) {
	env, err := Parse(leaf, 0)
	if err != nil {
		return tapproof.LabSample{}, err
	}
	s, err := env.LabSample()
	if err != nil {
		return s, err
	}
	return s.Normalize()
}

// LoggedInvalidation decodes leaf, the envelope of an invalidation as
// logged.
func LoggedInvalidation(leaf []byte) (tapproof.Invalidation, error) {
	env, err := Parse(leaf, 0)
	if err != nil {
		return tapproof.Invalidation{}, err
	}
	return env.Invalidation()
}
