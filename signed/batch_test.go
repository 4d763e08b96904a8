package signed_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
)

// TestBatchAgreesWithVerify: a batch gives, envelope by envelope, what
// Verify gives: nil for each envelope its key signed (signed by tapproof's
// signer with a key id, or by hand without one), Verify's error for a
// forged signature, one by another key, one naming another key's id, and
// an envelope signed twice is checked alone and passes.
func TestBatchAgreesWithVerify(t *testing.T) {
	ctx := t.Context()
	k1, k2 := key(t), key(t)
	pub1, pub2 := k1.Public().(ed25519.PublicKey), k2.Public().(ed25519.PublicKey)
	sign := func(k ed25519.PrivateKey, seq uint64) []byte {
		r := reading
		r.Seq = seq
		raw, err := signed.SignReading(ctx, k, r)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// edit rewrites an envelope's signatures.
	edit := func(raw []byte, f func(sigs []map[string]string) []map[string]string) []byte {
		var env map[string]any
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatal(err)
		}
		var sigs []map[string]string
		b, _ := json.Marshal(env["signatures"])
		if err := json.Unmarshal(b, &sigs); err != nil {
			t.Fatal(err)
		}
		env["signatures"] = f(sigs)
		out, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	forged := edit(sign(k1, 900), func(s []map[string]string) []map[string]string {
		sig, _ := base64.StdEncoding.DecodeString(s[0]["sig"])
		sig[5] ^= 1
		s[0]["sig"] = base64.StdEncoding.EncodeToString(sig)
		return s
	})
	otherKeyID := edit(sign(k1, 901), func(s []map[string]string) []map[string]string {
		s[0]["keyid"] = "SHA256:someone-else"
		return s
	})
	twice := edit(sign(k1, 902), func(s []map[string]string) []map[string]string {
		var other map[string]any
		_ = json.Unmarshal(sign(k2, 902), &other)
		o := other["signatures"].([]any)[0].(map[string]any)
		return append([]map[string]string{{"keyid": o["keyid"].(string), "sig": o["sig"].(string)}}, s...)
	})
	body, _ := json.Marshal(reading)
	cases := []struct {
		name string
		raw  []byte
		pub  ed25519.PublicKey
		ok   bool
	}{
		{"signed", sign(k1, 1), pub1, true},
		{"forged", forged, pub1, false},
		{"by another key", sign(k2, 2), pub1, false},
		{"naming another key id", otherKeyID, pub1, false},
		{"signed twice, once by the key", twice, pub1, true},
		{"by hand, without a key id", handEnvelope(k2, tapproof.ReadingPayloadType, body), pub2, true},
	}
	// Each case among valid envelopes, so that a bad one fails its batch.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b signed.Batch
			var envs []*signed.Envelope
			var pubs []ed25519.PublicKey
			for i := range 40 {
				raw, pub := sign(k2, uint64(100+i)), pub2
				if i == 17 {
					raw, pub = c.raw, c.pub
				}
				env, err := signed.Parse(raw, 0)
				if err != nil {
					t.Fatal(err)
				}
				b.Add(env, pub)
				envs, pubs = append(envs, env), append(pubs, pub)
			}
			errs := b.Verify(ctx)
			if len(errs) != 40 || b.Len() != 0 {
				t.Fatalf("Verify gave %d results and left %d queued, want 40 and 0", len(errs), b.Len())
			}
			for i, err := range errs {
				want := envs[i].Verify(ctx, pubs[i])
				if fmt.Sprint(err) != fmt.Sprint(want) {
					t.Errorf("envelope %d: batch says %v, Verify says %v", i, err, want)
				}
				if i == 17 && (err == nil) != c.ok {
					t.Errorf("the %s envelope: batch error %v, want ok=%v", c.name, err, c.ok)
				}
			}
		})
	}
	var empty signed.Batch
	if errs := empty.Verify(ctx); len(errs) != 0 {
		t.Errorf("an empty batch gave %v", errs)
	}
}

// BenchmarkVerifyAlone and BenchmarkBatch check 64 readings of 8 devices,
// one at a time and in one batch, as a monitor does a page of a log.
func BenchmarkVerifyAlone(b *testing.B) {
	envs, pubs := benchEnvelopes(b, 64)
	for b.Loop() {
		for i, env := range envs {
			if err := env.Verify(b.Context(), pubs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkBatch(b *testing.B) {
	envs, pubs := benchEnvelopes(b, 64)
	var batch signed.Batch
	for b.Loop() {
		for i, env := range envs {
			batch.Add(env, pubs[i])
		}
		for _, err := range batch.Verify(b.Context()) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchEnvelopes(b *testing.B, n int) ([]*signed.Envelope, []ed25519.PublicKey) {
	var keys []ed25519.PrivateKey
	for range 8 {
		keys = append(keys, key(b))
	}
	var envs []*signed.Envelope
	var pubs []ed25519.PublicKey
	for i := range n {
		k := keys[i%len(keys)]
		r := reading
		r.Seq = uint64(i + 1)
		raw, err := signed.SignReading(b.Context(), k, r)
		if err != nil {
			b.Fatal(err)
		}
		env, err := signed.Parse(raw, 0)
		if err != nil {
			b.Fatal(err)
		}
		envs, pubs = append(envs, env), append(pubs, k.Public().(ed25519.PublicKey))
	}
	return envs, pubs
}

// TestStrongKey: a key of small order (here the identity point), under
// which a signature anyone can make verifies for any message, is weak; so
// is 32 bytes that are no point; a generated key is strong.
func TestStrongKey(t *testing.T) {
	identity := make(ed25519.PublicKey, 32)
	identity[0] = 1 // the encoding of the neutral point
	forged := make([]byte, 64)
	forged[0] = 1 // R = identity, S = 0
	if !ed25519.Verify(identity, []byte("any message at all"), forged) {
		t.Fatal("the forged signature does not verify under the identity key: the premise of the test is wrong")
	}
	if err := signed.StrongKey(identity); err == nil || !strings.Contains(err.Error(), "small order") {
		t.Errorf("StrongKey(identity) = %v, want refused for small order", err)
	}
	notPoint := make(ed25519.PublicKey, 32)
	notPoint[0] = 2 // y = 2 has no x on the curve
	if err := signed.StrongKey(notPoint); err == nil {
		t.Errorf("StrongKey(not a point) = nil, want refused")
	}
	if err := signed.StrongKey(key(t).Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("StrongKey of a generated key = %v", err)
	}
}
