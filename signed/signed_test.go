package signed_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
)

func key(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var reading = tapproof.Reading{Utility: "u", Site: "s", Device: "d", Seq: 7, Analyte: tapproof.Lead, Value: 3.5,
	Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV, SampledAt: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC),
	Firmware: strings.Repeat("0f", 32)}

func TestSignParseVerifyRoundTrip(t *testing.T) {
	k := key(t)
	raw, err := signed.SignReading(t.Context(), k, reading)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signed.Parse(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Verify(t.Context(), k.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("Verify with the signing key = %v", err)
	}
	got, err := env.Reading()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reading, got); diff != "" {
		t.Errorf("Reading (-want +got):\n%s", diff)
	}
	if _, err := env.Enrollment(); !isReason(err, tapproof.ReasonMalformed) {
		t.Errorf("Enrollment() of a reading = %v, want malformed", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	k, other := key(t), key(t)
	raw, err := signed.SignReading(t.Context(), k, reading)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signed.Parse(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Verify(t.Context(), other.Public().(ed25519.PublicKey)); !isReason(err, tapproof.ReasonBadSignature) {
		t.Errorf("Verify with another key = %v, want bad_signature", err)
	}
	// The payload changed after signing: value 3.5 becomes 1.5.
	r2 := reading
	r2.Value = 1.5
	forged, _ := signed.SignReading(t.Context(), other, r2)
	swapped := bytes.Replace(raw, []byte(payloadOf(t, raw)), []byte(payloadOf(t, forged)), 1)
	se, err := signed.Parse(swapped, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := se.Verify(t.Context(), k.Public().(ed25519.PublicKey)); !isReason(err, tapproof.ReasonBadSignature) {
		t.Errorf("Verify of a swapped payload = %v, want bad_signature", err)
	}
}

func payloadOf(t *testing.T, raw []byte) string {
	i := bytes.Index(raw, []byte(`"payload":"`))
	if i < 0 {
		t.Fatalf("no payload in %s", raw)
	}
	rest := raw[i+len(`"payload":"`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func TestParseRejects(t *testing.T) {
	k := key(t)
	good, _ := signed.SignReading(t.Context(), k, reading)
	tests := []struct {
		name string
		raw  []byte
		want tapproof.Reason
	}{
		{"empty", nil, tapproof.ReasonMalformed},
		{"not json", []byte("hello"), tapproof.ReasonMalformed},
		{"trailing data", append(append([]byte{}, good...), []byte(" {}")...), tapproof.ReasonMalformed},
		{"unknown field", bytes.Replace(good, []byte(`{"payloadType"`), []byte(`{"x":1,"payloadType"`), 1), tapproof.ReasonMalformed},
		{"no signatures", []byte(`{"payloadType":"a","payload":"","signatures":[]}`), tapproof.ReasonMalformed},
		{"bad base64", []byte(`{"payloadType":"a","payload":"!!","signatures":[{"sig":"AA=="}]}`), tapproof.ReasonMalformed},
		{"oversized", bytes.Repeat([]byte(" "), signed.MaxEnvelopeSize+1), tapproof.ReasonOversized},
	}
	for _, tt := range tests {
		_, err := signed.Parse(tt.raw, 0)
		if !isReason(err, tt.want) {
			t.Errorf("Parse(%s) = %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestSignEnrollmentNeedsMatchingKey(t *testing.T) {
	k, other := key(t), key(t)
	en := tapproof.Enrollment{Device: "d", Utility: "u", Site: "s", Kind: tapproof.ASV, PublicKey: other.Public().(ed25519.PublicKey)}
	if _, err := signed.SignEnrollment(t.Context(), k, en); err == nil {
		t.Error("SignEnrollment with a key other than the enrolled one succeeded")
	}
}

func isReason(err error, r tapproof.Reason) bool {
	var rej *tapproof.Rejection
	return errors.As(err, &rej) && rej.Reason == r
}

// FuzzParse feeds arbitrary bytes to the envelope and payload decoders:
// they must never panic, and must fail only with a *tapproof.Rejection.
func FuzzParse(f *testing.F) {
	k := key(f)
	good, _ := signed.SignReading(f.Context(), k, reading)
	f.Add(good)
	f.Add([]byte(`{"payloadType":"application/vnd.tapproof.reading.v1+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, err := signed.Parse(raw, 0)
		if err != nil {
			var rej *tapproof.Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Parse error %v is not a Rejection", err)
			}
			return
		}
		if _, err := env.Reading(); err != nil {
			var rej *tapproof.Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Reading error %v is not a Rejection", err)
			}
		}
		_ = env.Verify(t.Context(), k.Public().(ed25519.PublicKey))
	})
}

// TestPayloadsDecodeStrictly: every payload decoder refuses another
// payload type, an unknown field and trailing data, as malformed.
func TestPayloadsDecodeStrictly(t *testing.T) {
	k := key(t)
	decoders := map[string]func(*signed.Envelope) error{
		tapproof.ReadingPayloadType:      func(e *signed.Envelope) error { _, err := e.Reading(); return err },
		tapproof.EnrollmentPayloadType:   func(e *signed.Envelope) error { _, err := e.Enrollment(); return err },
		tapproof.LabSamplePayloadType:    func(e *signed.Envelope) error { _, err := e.LabSample(); return err },
		tapproof.InvalidationPayloadType: func(e *signed.Envelope) error { _, err := e.Invalidation(); return err },
	}
	for typ, decode := range decoders {
		for _, tt := range []struct {
			name, payloadType, payload string
			ok                         bool
		}{
			{"a known field", typ, `{"utility":"u"}`, true},
			{"an unknown field", typ, `{"utility":"u","extra":1}`, false},
			{"trailing data", typ, `{"utility":"u"} {}`, false},
			{"another payload type", "application/vnd.example+json", `{"utility":"u"}`, false},
		} {
			raw, err := signed.Sign(t.Context(), k, tt.payloadType, []byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			env, err := signed.Parse(raw, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = decode(env)
			if tt.ok && err != nil {
				t.Errorf("%s with %s: %v", typ, tt.name, err)
			}
			if !tt.ok && !isReason(err, tapproof.ReasonMalformed) {
				t.Errorf("%s with %s = %v, want malformed", typ, tt.name, err)
			}
		}
	}
}

func TestVerifyAny(t *testing.T) {
	k, other := key(t), key(t)
	raw, err := signed.SignReading(t.Context(), k, reading)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signed.Parse(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	pub, otherPub := k.Public().(ed25519.PublicKey), other.Public().(ed25519.PublicKey)
	if err := env.VerifyAny(t.Context(), []ed25519.PublicKey{otherPub, pub}); err != nil {
		t.Errorf("VerifyAny with the signer's key second = %v", err)
	}
	for name, keys := range map[string][]ed25519.PublicKey{"no key": nil, "another key": {otherPub}} {
		if err := env.VerifyAny(t.Context(), keys); !isReason(err, tapproof.ReasonUnknownSigner) {
			t.Errorf("VerifyAny with %s = %v, want unknown_signer", name, err)
		}
	}
}

// TestLoggedReading: a logged leaf decodes back to the reading as accepted,
// in canonical units, and a leaf of another kind does not pass for one.
func TestLoggedReading(t *testing.T) {
	k := key(t)
	r := reading
	r.Value, r.Unit = 0.016, tapproof.MilligramsPerLiter
	raw, err := signed.SignReading(t.Context(), k, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := signed.LoggedReading(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Normalize(r.SampledAt, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" || got.Unit != tapproof.MicrogramsPerLiter {
		t.Errorf("LoggedReading = %v %s, want the accepted form (-want +got):\n%s", got.Value, got.Unit, diff)
	}
	if _, err := signed.LoggedLabSample(raw); !isReason(err, tapproof.ReasonMalformed) {
		t.Errorf("LoggedLabSample of a reading = %v, want malformed", err)
	}
	if _, err := signed.LoggedReading([]byte(`{"type":"tapproof.notice.v1"}`)); err == nil {
		t.Error("LoggedReading of a notice record succeeded")
	}
}
