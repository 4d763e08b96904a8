package anchor_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	tproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/signed"
)

const testOrigin = "tapproof.local/log/flint"

// newLogKey returns a fresh note key pair named testOrigin.
func newLogKey(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func newDeviceKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testReading(device string, seq uint64) tapproof.Reading {
	return tapproof.Reading{
		Utility: "flint", Site: "site-1", Device: device, Seq: seq,
		Analyte: tapproof.Lead, Value: 3.5 + float64(seq), Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: time.Date(2025, 3, 1, 12, 0, int(seq), 0, time.UTC),
		Firmware:  strings.Repeat("ab", 32),
	}
}

func signReading(t testing.TB, key ed25519.PrivateKey, r tapproof.Reading) []byte {
	t.Helper()
	env, err := signed.SignReading(context.Background(), key, r)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func enrollment(device string, key ed25519.PrivateKey) tapproof.Enrollment {
	return tapproof.Enrollment{
		Device: device, Utility: "flint", Site: "site-1", Kind: tapproof.ASV,
		PublicKey: key.Public().(ed25519.PublicKey), Firmware: strings.Repeat("ab", 32),
		EnrolledAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func signEnrollment(t testing.TB, key ed25519.PrivateKey, device string) []byte {
	t.Helper()
	env, err := signed.SignEnrollment(context.Background(), key, enrollment(device, key))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// memLog is an in-memory RFC 6962 log with a signed checkpoint over all of
// its leaves, standing in for Trillian and the anchor.
type memLog struct {
	signer     note.Signer
	verifier   note.Verifier
	tree       *testonly.Tree
	leaves     [][]byte
	checkpoint []byte
}

func newMemLog(t testing.TB, leaves ...[]byte) *memLog {
	t.Helper()
	s, v := newLogKey(t)
	return newMemLogWithKey(t, s, v, leaves...)
}

func newMemLogWithKey(t testing.TB, s note.Signer, v note.Verifier, leaves ...[]byte) *memLog {
	t.Helper()
	l := &memLog{signer: s, verifier: v, tree: testonly.New(rfc6962.DefaultHasher), leaves: leaves}
	l.tree.AppendData(leaves...)
	cp, err := anchor.SignCheckpoint(s, l.tree.Size(), l.tree.Hash())
	if err != nil {
		t.Fatal(err)
	}
	l.checkpoint = cp
	return l
}

func (l *memLog) bundle(t testing.TB, index uint64) *anchor.Bundle {
	t.Helper()
	hashes, err := l.tree.InclusionProof(index, l.tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	p := tproof.TLogProof{Index: index, Checkpoint: l.checkpoint}
	for _, h := range hashes {
		p.Hashes = append(p.Hashes, [32]byte(h))
	}
	return &anchor.Bundle{Leaf: bytes.Clone(l.leaves[index]), TLogProof: string(p.Marshal())}
}

func (l *memLog) readingBundle(t testing.TB, index, enrollIndex uint64) *anchor.Bundle {
	b := l.bundle(t, index)
	b.Enrollment = l.bundle(t, enrollIndex)
	return b
}

// editProof rewrites the tlog-proof of b.
func editProof(t testing.TB, b *anchor.Bundle, edit func(*tproof.TLogProof)) {
	t.Helper()
	var p tproof.TLogProof
	if err := p.Unmarshal([]byte(b.TLogProof)); err != nil {
		t.Fatal(err)
	}
	edit(&p)
	b.TLogProof = string(p.Marshal())
}

// flipRootBit flips one bit of the root hash in a signed checkpoint's body.
func flipRootBit(t testing.TB, cp []byte) []byte {
	t.Helper()
	lines := strings.SplitN(string(cp), "\n", 4)
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	root[7] ^= 0x10
	lines[2] = base64.StdEncoding.EncodeToString(root)
	return []byte(strings.Join(lines, "\n"))
}

// flipSignatureBit flips one bit of the Ed25519 signature (not the key hash)
// on the last signature line of a signed note.
func flipSignatureBit(t testing.TB, cp []byte) []byte {
	t.Helper()
	s := strings.TrimSuffix(string(cp), "\n")
	i := strings.LastIndex(s, " ")
	sig, err := base64.StdEncoding.DecodeString(s[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	sig[4+10] ^= 0x01
	return []byte(s[:i+1] + base64.StdEncoding.EncodeToString(sig) + "\n")
}

func TestVerifyBundle(t *testing.T) {
	ctx := context.Background()
	k1, k2, k3, k4 := newDeviceKey(t), newDeviceKey(t), newDeviceKey(t), newDeviceKey(t)
	// An enrollment of k4's key for device d4, signed by k1: not self-signed.
	foreign, err := json.Marshal(enrollment("d4", k4))
	if err != nil {
		t.Fatal(err)
	}
	notSelfSigned, err := signed.Sign(ctx, k1, tapproof.EnrollmentPayloadType, foreign)
	if err != nil {
		t.Fatal(err)
	}
	l := newMemLog(t,
		signEnrollment(t, k1, "d1"),              // 0
		signReading(t, k1, testReading("d1", 1)), // 1
		signEnrollment(t, k2, "d2"),              // 2
		signReading(t, k2, testReading("d2", 1)), // 3
		signReading(t, k3, testReading("d3", 1)), // 4: before its enrollment
		signEnrollment(t, k3, "d3"),              // 5
		[]byte("not an envelope"),                // 6
		notSelfSigned,                            // 7
		signReading(t, k4, testReading("d4", 1)), // 8
		signReading(t, k1, testReading("d1", 2)), // 9
		signReading(t, k2, testReading("d1", 3)), // 10: d1's reading signed by d2's key
		signEnrollment(t, k1, "d1"),              // 11: a second enrollment of d1
		signReading(t, k1, testReading("d1", 4)), // 12
		[]byte(`{"payloadType":"x","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`), // 13
	)
	pub := func(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
	en1 := enrollment("d1", k1)
	other := newMemLog(t, l.leaves...) // same leaves, another log key and so another checkpoint

	tests := []struct {
		name      string
		bundle    func() *anchor.Bundle
		logKey    note.Verifier
		deviceKey ed25519.PublicKey
		want      *anchor.Verified // nil when failing
		wantCheck string
	}{
		{
			name:      "valid with device key",
			bundle:    func() *anchor.Bundle { return l.bundle(t, 1) },
			deviceKey: pub(k1),
			want:      &anchor.Verified{Origin: testOrigin, Checkpoint: l.checkpoint, Size: 14, Root: l.tree.Hash(), Index: 1, Reading: testReading("d1", 1)},
		},
		{
			name:   "valid with enrollment",
			bundle: func() *anchor.Bundle { return l.readingBundle(t, 9, 0) },
			want: &anchor.Verified{Origin: testOrigin, Checkpoint: l.checkpoint, Size: 14, Root: l.tree.Hash(), Index: 9, Reading: testReading("d1", 2),
				Enrollment: &en1, EnrollmentIndex: 0},
		},
		{
			name:      "valid with enrollment and matching device key",
			bundle:    func() *anchor.Bundle { return l.readingBundle(t, 12, 11) },
			deviceKey: pub(k1),
			want: &anchor.Verified{Origin: testOrigin, Checkpoint: l.checkpoint, Size: 14, Root: l.tree.Hash(), Index: 12, Reading: testReading("d1", 4),
				Enrollment: &en1, EnrollmentIndex: 11},
		},
		{
			name: "leaf bit flipped",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				b.Leaf[20] ^= 0x01
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckInclusion,
		},
		{
			name: "proof hash bit flipped",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				editProof(t, b, func(p *tproof.TLogProof) { p.Hashes[1][5] ^= 0x80 })
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckInclusion,
		},
		{
			name: "proof hash missing",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				editProof(t, b, func(p *tproof.TLogProof) { p.Hashes = p.Hashes[1:] })
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckInclusion,
		},
		{
			name: "index changed",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				editProof(t, b, func(p *tproof.TLogProof) { p.Index = 0 })
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckInclusion,
		},
		{
			name: "index beyond checkpoint",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				editProof(t, b, func(p *tproof.TLogProof) { p.Index = 14 })
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckInclusion,
		},
		{
			name: "checkpoint body bit flipped",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				editProof(t, b, func(p *tproof.TLogProof) { p.Checkpoint = flipRootBit(t, p.Checkpoint) })
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckCheckpoint,
		},
		{
			name: "checkpoint size changed",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				editProof(t, b, func(p *tproof.TLogProof) {
					p.Checkpoint = bytes.Replace(p.Checkpoint, []byte("\n14\n"), []byte("\n15\n"), 1)
				})
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckCheckpoint,
		},
		{
			name: "checkpoint signature bit flipped",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				editProof(t, b, func(p *tproof.TLogProof) { p.Checkpoint = flipSignatureBit(t, p.Checkpoint) })
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckCheckpoint,
		},
		{
			name:      "checkpoint signed by another key",
			bundle:    func() *anchor.Bundle { return other.bundle(t, 1) },
			deviceKey: pub(k1),
			wantCheck: anchor.CheckCheckpoint,
		},
		{
			name:      "wrong device key",
			bundle:    func() *anchor.Bundle { return l.bundle(t, 1) },
			deviceKey: pub(k2),
			wantCheck: anchor.CheckSignature,
		},
		{
			name:      "reading signed by another enrolled device",
			bundle:    func() *anchor.Bundle { return l.readingBundle(t, 10, 0) },
			wantCheck: anchor.CheckSignature,
		},
		{
			name:      "no device key and no enrollment",
			bundle:    func() *anchor.Bundle { return l.bundle(t, 1) },
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name:      "enrollment after reading",
			bundle:    func() *anchor.Bundle { return l.readingBundle(t, 4, 5) },
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name:      "enrollment of another device",
			bundle:    func() *anchor.Bundle { return l.readingBundle(t, 9, 2) },
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name:      "enrollment not self-signed",
			bundle:    func() *anchor.Bundle { return l.readingBundle(t, 8, 7) },
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name:      "enrollment entry is a reading",
			bundle:    func() *anchor.Bundle { return l.readingBundle(t, 9, 1) },
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name:      "enrollment of another key than the device key",
			bundle:    func() *anchor.Bundle { return l.readingBundle(t, 9, 0) },
			deviceKey: pub(k2),
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name: "enrollment under another checkpoint",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 9)
				b.Enrollment = other.bundle(t, 0)
				return b
			},
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name: "enrollment leaf bit flipped",
			bundle: func() *anchor.Bundle {
				b := l.readingBundle(t, 9, 0)
				b.Enrollment.Leaf[30] ^= 0x04
				return b
			},
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name: "nested enrollment",
			bundle: func() *anchor.Bundle {
				b := l.readingBundle(t, 9, 0)
				b.Enrollment.Enrollment = l.bundle(t, 0)
				return b
			},
			wantCheck: anchor.CheckEnrollment,
		},
		{
			name:      "leaf is not an envelope",
			bundle:    func() *anchor.Bundle { return l.bundle(t, 6) },
			deviceKey: pub(k1),
			wantCheck: anchor.CheckBundle,
		},
		{
			name:      "leaf is an enrollment",
			bundle:    func() *anchor.Bundle { return l.bundle(t, 0) },
			deviceKey: pub(k1),
			wantCheck: anchor.CheckBundle,
		},
		{
			name:      "leaf has another payload type",
			bundle:    func() *anchor.Bundle { return l.bundle(t, 13) },
			deviceKey: pub(k1),
			wantCheck: anchor.CheckBundle,
		},
		{
			name: "tlog-proof garbled",
			bundle: func() *anchor.Bundle {
				b := l.bundle(t, 1)
				b.TLogProof = strings.Replace(b.TLogProof, "tlog-proof@v1", "tlog-proof@v2", 1)
				return b
			},
			deviceKey: pub(k1),
			wantCheck: anchor.CheckBundle,
		},
		{
			name:      "empty bundle",
			bundle:    func() *anchor.Bundle { return &anchor.Bundle{} },
			deviceKey: pub(k1),
			wantCheck: anchor.CheckBundle,
		},
		{
			name:      "nil bundle",
			bundle:    func() *anchor.Bundle { return nil },
			wantCheck: anchor.CheckBundle,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logKey := tt.logKey
			if logKey == nil {
				logKey = l.verifier
			}
			got, err := anchor.VerifyBundle(ctx, tt.bundle(), logKey, tt.deviceKey)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("VerifyBundle() = %v, want success", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("VerifyBundle() mismatch (-want +got):\n%s", diff)
				}
				return
			}
			var ve *anchor.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("VerifyBundle() = %v, %v; want a *VerifyError with check %q", got, err, tt.wantCheck)
			}
			t.Logf("VerifyBundle() = %v", err)
			if ve.Check != tt.wantCheck {
				t.Errorf("VerifyBundle() failed check %q (%v), want %q", ve.Check, err, tt.wantCheck)
			}
			if got != nil {
				t.Errorf("VerifyBundle() = %+v with an error, want nil", got)
			}
		})
	}
}

func TestBundleJSONRoundTrip(t *testing.T) {
	k := newDeviceKey(t)
	l := newMemLog(t, signEnrollment(t, k, "d1"), signReading(t, k, testReading("d1", 1)), signReading(t, k, testReading("d1", 2)))
	b := l.readingBundle(t, 2, 0)
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got anchor.Bundle
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, &got); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}
	if _, err := anchor.VerifyBundle(context.Background(), &got, l.verifier, nil); err != nil {
		t.Errorf("VerifyBundle(round-tripped) = %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"leaf", "tlog_proof", "enrollment"} {
		if _, ok := m[k]; !ok {
			t.Errorf("bundle JSON %s lacks key %q", raw, k)
		}
	}
}

func TestOpenCheckpoint(t *testing.T) {
	s, v := newLogKey(t)
	root := rfc6962.DefaultHasher.HashLeaf([]byte("x"))
	cp, err := anchor.SignCheckpoint(s, 1, root)
	if err != nil {
		t.Fatal(err)
	}
	if want := testOrigin + "\n1\n" + base64.StdEncoding.EncodeToString(root) + "\n\n— " + testOrigin + " "; !strings.HasPrefix(string(cp), want) {
		t.Errorf("SignCheckpoint() = %q, want prefix %q", cp, want)
	}
	got, err := anchor.OpenCheckpoint(cp, v)
	if err != nil {
		t.Fatalf("OpenCheckpoint() = %v", err)
	}
	if got.Origin != testOrigin || got.Size != 1 || !bytes.Equal(got.Hash, root) {
		t.Errorf("OpenCheckpoint() = %+v, want origin %q size 1 root %x", got, testOrigin, root)
	}

	// A key of another name must not open it, even with the same origin text.
	skey, vkey, err := note.GenerateKey(rand.Reader, "tapproof.local/log/other")
	if err != nil {
		t.Fatal(err)
	}
	oSigner, _ := note.NewSigner(skey)
	ov, _ := note.NewVerifier(vkey)
	if _, err := anchor.OpenCheckpoint(cp, ov); err == nil {
		t.Error("OpenCheckpoint(other key) succeeded, want error")
	}
	// A checkpoint whose origin is not the key name is refused.
	forged, err := note.Sign(&note.Note{Text: testOrigin + "\n1\n" + base64.StdEncoding.EncodeToString(root) + "\n"}, oSigner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anchor.OpenCheckpoint(forged, ov); err == nil {
		t.Error("OpenCheckpoint(origin differs from key name) succeeded, want error")
	}
}

func FuzzVerifyBundle(f *testing.F) {
	k := newDeviceKey(f)
	l := newMemLog(f, signEnrollment(f, k, "d1"), signReading(f, k, testReading("d1", 1)), signReading(f, k, testReading("d1", 2)))
	for i := range uint64(3) {
		b := l.bundle(f, i)
		f.Add(b.Leaf, b.TLogProof)
	}
	f.Add([]byte("{}"), "c2sp.org/tlog-proof@v1\nindex 0\n\n")
	f.Fuzz(func(t *testing.T, leaf []byte, tlogProof string) {
		_, err := anchor.VerifyBundle(context.Background(), &anchor.Bundle{Leaf: leaf, TLogProof: tlogProof}, l.verifier, k.Public().(ed25519.PublicKey))
		if err == nil {
			return
		}
		if _, ok := errors.AsType[*anchor.VerifyError](err); !ok {
			t.Errorf("VerifyBundle() = %v (%T), want a *VerifyError", err, err)
		}
	})
}

func testLabSample(id string, ugL float64) tapproof.LabSample {
	at := time.Date(2025, 8, 4, 6, 30, 0, 0, time.FixedZone("EDT", -4*3600))
	return tapproof.LabSample{Lab: "state-lab", SampleID: id, Utility: "flint", Site: "home-01", Tier: 1,
		LeadServiceLine: true, Liter: tapproof.FirstLiter, Analyte: tapproof.Lead, Value: ugL / 1000,
		Unit: tapproof.MilligramsPerLiter, DetectionLimit: 0.001, CollectedAt: at, AnalyzedAt: at.Add(50 * time.Hour),
		Period: "2025H2", Method: "EPA 200.8"}
}

func signLabSample(t testing.TB, key ed25519.PrivateKey, v any) []byte {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signed.Sign(context.Background(), key, tapproof.LabSamplePayloadType, p)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestVerifyEntry: a lab sample's bundle, the proof an individual
// compliance alert links, verifies its inclusion and, given its lab's keys,
// its signature; without them it says the signature was not checked. A
// reading's verifies as with VerifyBundle.
func TestVerifyEntry(t *testing.T) {
	ctx := context.Background()
	lab, oldLab, stranger, k1 := newDeviceKey(t), newDeviceKey(t), newDeviceKey(t), newDeviceKey(t)
	s1, s2, forged := testLabSample("L2025-001", 22), testLabSample("L2025-002", 3), testLabSample("L2025-003", 2)
	other := testLabSample("L2025-004", 4)
	other.Lab = "other-lab"
	l := newMemLog(t,
		signEnrollment(t, k1, "d1"),              // 0
		signLabSample(t, lab, s1),                // 1
		signReading(t, k1, testReading("d1", 1)), // 2
		signLabSample(t, oldLab, s2),             // 3: signed with the lab's earlier key
		signLabSample(t, stranger, forged),       // 4: logged, but signed by no key of the lab
		signLabSample(t, lab, map[string]any{"lab": "state-lab", "sample_id": "L2025-005", "unknown": 1}), // 5
		signLabSample(t, lab, other), // 6: state-lab's key on other-lab's sample
	)
	pub := func(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
	labKeys := map[string][]ed25519.PublicKey{"state-lab": {pub(lab), pub(oldLab)}}
	verified := func(index uint64, s tapproof.LabSample, checked bool) *anchor.Verified {
		return &anchor.Verified{Origin: testOrigin, Checkpoint: l.checkpoint, Size: 7, Root: l.tree.Hash(), Index: index,
			LabSample: &s, LabSignatureChecked: checked}
	}
	en1 := enrollment("d1", k1)
	tests := []struct {
		name      string
		bundle    func() *anchor.Bundle
		logKey    note.Verifier
		keys      anchor.Keys
		want      *anchor.Verified // nil when failing
		wantCheck string
	}{
		{name: "lab sample, with its lab's key", bundle: func() *anchor.Bundle { return l.bundle(t, 1) },
			keys: anchor.Keys{Labs: labKeys}, want: verified(1, s1, true)},
		{name: "lab sample signed with the lab's earlier key", bundle: func() *anchor.Bundle { return l.bundle(t, 3) },
			keys: anchor.Keys{Labs: labKeys}, want: verified(3, s2, true)},
		{name: "lab sample, no lab key: its signature is not checked", bundle: func() *anchor.Bundle { return l.bundle(t, 1) },
			want: verified(1, s1, false)},
		{name: "forged lab sample, no lab key: included, and not said to be signed", bundle: func() *anchor.Bundle { return l.bundle(t, 4) },
			want: verified(4, forged, false)},
		{name: "wrong lab key", bundle: func() *anchor.Bundle { return l.bundle(t, 1) },
			keys: anchor.Keys{Labs: map[string][]ed25519.PublicKey{"state-lab": {pub(stranger)}}}, wantCheck: anchor.CheckSignature},
		{name: "forged lab sample, with the lab's keys", bundle: func() *anchor.Bundle { return l.bundle(t, 4) },
			keys: anchor.Keys{Labs: labKeys}, wantCheck: anchor.CheckSignature},
		{name: "keys of another lab only", bundle: func() *anchor.Bundle { return l.bundle(t, 1) },
			keys: anchor.Keys{Labs: map[string][]ed25519.PublicKey{"other-lab": {pub(lab)}}}, wantCheck: anchor.CheckSignature},
		{name: "another lab's sample signed with this lab's key", bundle: func() *anchor.Bundle { return l.bundle(t, 6) },
			keys: anchor.Keys{Labs: labKeys}, wantCheck: anchor.CheckSignature},
		{name: "lab sample tampered", bundle: func() *anchor.Bundle {
			b := l.bundle(t, 1)
			b.Leaf = signLabSample(t, lab, testLabSample("L2025-001", 2)) // the lab's own key, another value
			return b
		}, keys: anchor.Keys{Labs: labKeys}, wantCheck: anchor.CheckInclusion},
		{name: "lab sample tampered, no lab key", bundle: func() *anchor.Bundle {
			b := l.bundle(t, 1)
			b.Leaf[40] ^= 0x01
			return b
		}, wantCheck: anchor.CheckInclusion},
		{name: "lab sample under another log's checkpoint", bundle: func() *anchor.Bundle { return newMemLog(t, l.leaves...).bundle(t, 1) },
			keys: anchor.Keys{Labs: labKeys}, wantCheck: anchor.CheckCheckpoint},
		{name: "lab sample with an enrollment", bundle: func() *anchor.Bundle { return l.readingBundle(t, 1, 0) },
			keys: anchor.Keys{Labs: labKeys}, wantCheck: anchor.CheckBundle},
		{name: "lab sample payload with an unknown field", bundle: func() *anchor.Bundle { return l.bundle(t, 5) },
			keys: anchor.Keys{Labs: labKeys}, wantCheck: anchor.CheckBundle},
		{name: "reading, with enrollment", bundle: func() *anchor.Bundle { return l.readingBundle(t, 2, 0) },
			keys: anchor.Keys{Labs: labKeys},
			want: &anchor.Verified{Origin: testOrigin, Checkpoint: l.checkpoint, Size: 7, Root: l.tree.Hash(), Index: 2, Reading: testReading("d1", 1),
				Enrollment: &en1, EnrollmentIndex: 0}},
		{name: "reading, wrong device key", bundle: func() *anchor.Bundle { return l.bundle(t, 2) },
			keys: anchor.Keys{Device: pub(lab)}, wantCheck: anchor.CheckSignature},
		{name: "an enrollment is neither", bundle: func() *anchor.Bundle { return l.bundle(t, 0) },
			keys: anchor.Keys{Device: pub(k1)}, wantCheck: anchor.CheckBundle},
		{name: "no bundle", bundle: func() *anchor.Bundle { return nil }, wantCheck: anchor.CheckBundle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logKey := tt.logKey
			if logKey == nil {
				logKey = l.verifier
			}
			got, err := anchor.VerifyEntry(ctx, tt.bundle(), logKey, tt.keys)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("VerifyEntry() = %v, want success", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("VerifyEntry() mismatch (-want +got):\n%s", diff)
				}
				return
			}
			ve, ok := errors.AsType[*anchor.VerifyError](err)
			if !ok || ve.Check != tt.wantCheck || got != nil {
				t.Fatalf("VerifyEntry() = %+v, %v; want a *VerifyError with check %q", got, err, tt.wantCheck)
			}
			t.Logf("VerifyEntry() = %v", err)
		})
	}
	// VerifyBundle keeps verifying readings only.
	if _, err := anchor.VerifyBundle(ctx, l.bundle(t, 1), l.verifier, pub(lab)); err == nil {
		t.Error("VerifyBundle(a lab sample's bundle) succeeded, want the bundle check to fail: it holds no reading")
	} else if ve, ok := errors.AsType[*anchor.VerifyError](err); !ok || ve.Check != anchor.CheckBundle {
		t.Errorf("VerifyBundle(a lab sample's bundle) = %v, want a bundle check failure", err)
	}
}
