package signed

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"

	"github.com/hdevalence/ed25519consensus"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Batch checks many envelopes' signatures at once, for those who check a
// whole log (a regulator's monitor): about half the cost of checking each
// alone with Verify. Add envelopes, then call Verify once.
//
// Batch verification is ZIP 215's (github.com/hdevalence/ed25519consensus):
// a batch that passes proves that every signature in it was made with its
// key's private key, but ZIP 215 accepts a few encodings crypto/ed25519
// refuses (a non-canonical encoding of R, a point with a small-order
// component), which only the holder of the private key can produce. So a
// batch proves who signed, as Verify does, but not that ingest, which
// checks each signature alone with crypto/ed25519, would have accepted
// every one. When a batch fails, each of its signatures is checked alone
// with Verify, which names the bad ones exactly as Verify would.
type Batch struct {
	entries []batchEntry
	keyIDs  map[string]string // DSSE key id by public key
}

type batchEntry struct {
	env *Envelope
	pub ed25519.PublicKey
	// msg and sig are the signed message (DSSE's pre-authentication
	// encoding) and the signature; nil if the envelope cannot be checked
	// in a batch (more than one signature, one for another key id, one
	// that does not decode), so that Verify checks it alone.
	msg, sig []byte
}

// Add queues env's signature by pub to be checked.
func (b *Batch) Add(env *Envelope, pub ed25519.PublicKey) {
	e := batchEntry{env: env, pub: pub}
	if len(env.env.Signatures) == 1 && len(pub) == ed25519.PublicKeySize {
		s := env.env.Signatures[0]
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			sig, err = base64.URLEncoding.DecodeString(s.Sig)
		}
		// As dsse.EnvelopeVerifier: a signature naming another key id is
		// not tried with pub (and so fails, alone).
		if err == nil && len(sig) == ed25519.SignatureSize && (s.KeyID == "" || s.KeyID == b.keyID(pub)) {
			e.msg, e.sig = dsse.PAE(env.env.PayloadType, env.Payload), sig
		}
	}
	b.entries = append(b.entries, e)
}

// keyID is pub's DSSE key id, as the verifier Verify uses computes it;
// s.KeyID == "" matches any.
func (b *Batch) keyID(pub ed25519.PublicKey) string {
	if id, ok := b.keyIDs[string(pub)]; ok {
		return id
	}
	id, err := verifier{pub: pub}.KeyID()
	if err != nil {
		id = ""
	}
	if b.keyIDs == nil {
		b.keyIDs = map[string]string{}
	}
	b.keyIDs[string(pub)] = id
	return id
}

// Len is the number of envelopes added.
func (b *Batch) Len() int { return len(b.entries) }

// Verify checks every envelope added, in one batch where it can, and
// returns for each, in the order added, nil or the error Verify gives.
// The batch is empty afterwards.
func (b *Batch) Verify(ctx context.Context) []error {
	errs := make([]error, len(b.entries))
	v := ed25519consensus.NewPreallocatedBatchVerifier(len(b.entries))
	var batched []int
	for i, e := range b.entries {
		if e.msg == nil {
			errs[i] = e.env.Verify(ctx, e.pub)
			continue
		}
		v.Add(e.pub, e.msg, e.sig)
		batched = append(batched, i)
	}
	if len(batched) > 0 && !v.Verify() {
		for _, i := range batched {
			errs[i] = b.entries[i].env.Verify(ctx, b.entries[i].pub)
		}
	}
	b.entries = b.entries[:0]
	return errs
}
