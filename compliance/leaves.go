package compliance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
)

// KeySet holds the public keys a report trusts, by the id the signer claims
// in its entries: a lab sample must be signed by a key of its lab, an
// invalidation by a key of its reviewer. Several keys per id allow rotation.
// In JSON the keys are base64: {"labs":{"acme-labs":["<base64>"]},"reviewers":{...}}.
type KeySet struct {
	Labs      map[string][]ed25519.PublicKey `json:"labs"`      // certified laboratories
	Reviewers map[string][]ed25519.PublicKey `json:"reviewers"` // state reviewers
}

// Validate checks that every id is a valid id and every key an Ed25519
// public key.
func (ks KeySet) Validate() error {
	for role, m := range map[string]map[string][]ed25519.PublicKey{"lab": ks.Labs, "reviewer": ks.Reviewers} {
		for id, pubs := range m {
			if !tapproof.ValidID(id) {
				return fmt.Errorf("compliance keys: %s id %q is not a valid id", role, id)
			}
			for _, k := range pubs {
				if len(k) != ed25519.PublicKeySize {
					return fmt.Errorf("compliance keys: %s %s: a key of %d bytes, want %d", role, id, len(k), ed25519.PublicKeySize)
				}
			}
		}
	}
	return nil
}

// Clone returns a deep copy of ks, without ids that have no key.
func (ks KeySet) Clone() KeySet {
	clone := func(m map[string][]ed25519.PublicKey) map[string][]ed25519.PublicKey {
		out := map[string][]ed25519.PublicKey{}
		for id, pubs := range m {
			if len(pubs) > 0 {
				out[id] = slices.Clone(pubs)
			}
		}
		return out
	}
	return KeySet{Labs: clone(ks.Labs), Reviewers: clone(ks.Reviewers)}
}

// Lab returns the keys of lab id. With Reviewer it lets ingest accept
// exactly the entries a report counts (ingest.Labs, ingest.Reviewers).
func (ks KeySet) Lab(id string) ([]ed25519.PublicKey, bool) {
	pubs, ok := ks.Labs[id]
	return pubs, ok
}

// Reviewer returns the keys of state reviewer id.
func (ks KeySet) Reviewer(id string) ([]ed25519.PublicKey, bool) {
	pubs, ok := ks.Reviewers[id]
	return pubs, ok
}

// ErrUnknownSigner is wrapped by the errors for entries not signed by a key
// of the KeySet for the lab or reviewer they name.
var ErrUnknownSigner = errors.New("not signed by a known key")

// LeafError is the error FromLeaves returns for an entry that stops the
// computation: a lab sample of the period that does not decode, validate or
// verify, so that computing without it would silently drop a sample.
type LeafError struct {
	Index uint64
	Err   error
}

// Error names the leaf and the reason.
func (e *LeafError) Error() string { return fmt.Sprintf("leaf %d: %v", e.Index, e.Err) }

// Unwrap returns the reason.
func (e *LeafError) Unwrap() error { return e.Err }

// FromLeaves computes the report of p from the entries of the utility's log,
// trusting only keys. It needs every lab sample and invalidation entry of
// the log (the whole log, or the entries of those payload types); entries of
// other types, and entries that are not DSSE envelopes, are skipped. The
// notice records among the entries (JSON of type tapproof.NoticeRecordType) are
// checked against the notices the report calls for: Report.Notices.
//
// A lab sample of the period must decode, validate and be signed by a key of
// its lab, or FromLeaves fails with a *LeafError (wrapping ErrUnknownSigner
// for the signature): leaving it out would change the figures without a
// trace. Lab samples of other utilities, periods or analytes are not
// checked. An invalidation that does not verify with a key of its reviewer
// is listed in the report as not applied, with an error wrapping
// ErrUnknownSigner, and its sample still counts; see Compute for the rest.
func FromLeaves(ctx context.Context, leaves []tapproof.Leaf, keys KeySet, p Params) (Report, error) {
	p, period, err := p.withDefaults()
	if err != nil {
		return Report{}, err
	}
	var (
		samples []Sample
		invs    []Invalidation
		notices = map[string]recordAt{}
		seen    = map[uint64][]byte{}
	)
	for _, l := range leaves {
		if prev, ok := seen[l.Index]; ok {
			if bytes.Equal(prev, l.Bytes) {
				continue
			}
			return Report{}, &LeafError{Index: l.Index, Err: errors.New("given twice with different bytes")}
		}
		seen[l.Index] = l.Bytes
		if rec, ok := tapproof.ParseNoticeRecord(l.Bytes); ok {
			// The earliest record of an alert counts, in whatever order
			// the leaves come.
			if prev, dup := notices[rec.AlertID]; !dup || l.Index < prev.index {
				notices[rec.AlertID] = recordAt{l.Index, rec}
			}
			continue
		}
		env, err := signed.Parse(l.Bytes, 0)
		if err != nil {
			continue // not an envelope: no compliance entry
		}
		switch env.PayloadType() {
		case tapproof.LabSamplePayloadType:
			raw, err := env.LabSample()
			if err != nil {
				return Report{}, &LeafError{Index: l.Index, Err: fmt.Errorf("lab sample: %w", err)}
			}
			if raw.Utility != p.Utility || raw.Period != period.ID || raw.Analyte != p.Analyte {
				continue
			}
			s, err := raw.Normalize()
			if err != nil {
				return Report{}, &LeafError{Index: l.Index, Err: fmt.Errorf("lab sample %s: %w", raw.Key(), err)}
			}
			if err := verify(ctx, env, "lab", s.Lab, keys.Labs[s.Lab]); err != nil {
				return Report{}, &LeafError{Index: l.Index, Err: fmt.Errorf("lab sample %s: %w", s.Key(), err)}
			}
			samples = append(samples, Sample{Index: l.Index, LabSample: s})
		case tapproof.InvalidationPayloadType:
			inv, err := env.Invalidation()
			if err != nil {
				return Report{}, &LeafError{Index: l.Index, Err: fmt.Errorf("invalidation: %w", err)}
			}
			e := Invalidation{Index: l.Index, Invalidation: inv}
			if err := verify(ctx, env, "reviewer", inv.Reviewer, keys.Reviewers[inv.Reviewer]); err != nil {
				e.Err = err
			}
			invs = append(invs, e)
		}
	}
	rep, err := Compute(p, samples, invs)
	if err != nil {
		return Report{}, err
	}
	rep.Leaves = len(seen)
	rep.Notices = checkNotices(rep, notices, p.Deadlines)
	return rep, nil
}

// verify checks that env is signed by one of keys, the keys of the signer
// of that role and id.
func verify(ctx context.Context, env *signed.Envelope, role, id string, keys []ed25519.PublicKey) error {
	if err := env.VerifyAny(ctx, keys); err != nil {
		var rej *tapproof.Rejection
		if errors.As(err, &rej) {
			err = errors.New(rej.Detail)
		}
		return fmt.Errorf("%w of %s %q: %v", ErrUnknownSigner, role, id, err)
	}
	return nil
}

// MaxLeafLine bounds one line of ReadLeaves's input, in bytes.
const MaxLeafLine = 4 * signed.MaxEnvelopeSize

// ReadLeaves reads log entries as JSON lines, {"index":N,"leaf":"<base64>"}
// each, until EOF.
func ReadLeaves(r io.Reader) ([]tapproof.Leaf, error) {
	dec := json.NewDecoder(r)
	var out []tapproof.Leaf
	for n := 1; ; n++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("leaves: entry %d: %w", n, err)
		}
		if len(raw) > MaxLeafLine {
			return nil, fmt.Errorf("leaves: entry %d: %d bytes exceeds %d", n, len(raw), MaxLeafLine)
		}
		var l struct {
			Index *uint64 `json:"index"`
			Leaf  []byte  `json:"leaf"`
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&l); err != nil {
			return nil, fmt.Errorf("leaves: entry %d: %w", n, err)
		}
		if l.Index == nil || len(l.Leaf) == 0 {
			return nil, fmt.Errorf("leaves: entry %d: want {\"index\":N,\"leaf\":\"<base64>\"}", n)
		}
		out = append(out, tapproof.Leaf{Index: *l.Index, Bytes: l.Leaf})
	}
}
