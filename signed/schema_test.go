package signed_test

// The wire contract of docs/devices.md, checked against the code: the JSON
// Schemas in testdata/schemas accept what signed.SignReading and
// signed.SignEnrollment produce, and refuse what tapproof refuses; the
// envelope a client in another language builds by hand verifies; and the
// worked example printed in the document is what the code computes.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
)

const (
	readingSchemaFile    = "../testdata/schemas/reading.schema.json"
	enrollmentSchemaFile = "../testdata/schemas/enrollment.schema.json"
	devicesDoc           = "../docs/devices.md"
)

func compileSchema(t *testing.T, path string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat() // date-time is checked, not only annotated
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}

func validate(s *jsonschema.Schema, payload []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

var (
	sampledAt = time.Date(2026, 11, 1, 8, 0, 0, 123_000_000, time.UTC)
	received  = sampledAt.Add(time.Minute) // when tapproof takes the reading
	firmware  = hex.EncodeToString(sha(exampleFirmware))
)

// exampleFirmware stands for a firmware image; its SHA-256 is the digest
// devices report.
const exampleFirmware = "tapproof example firmware 1.0"

func sha(s string) []byte { b := sha256.Sum256([]byte(s)); return b[:] }

// leadReading is a valid reading of a lead sensor.
func leadReading() tapproof.Reading {
	return tapproof.Reading{Utility: "flint", Site: "site-3", Device: "flint-site-3-pb1", Seq: 42,
		Analyte: tapproof.Lead, Value: 4.2, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: sampledAt, Firmware: firmware, DetectionLimit: 0.5}
}

// decodeReason runs the checks of a reading envelope that ingest makes
// without its registry and journal: parse, decode the payload, normalise.
// It returns the rejection reason, or "" if the reading passes them.
func decodeReason(t *testing.T, raw []byte) tapproof.Reason {
	t.Helper()
	env, err := signed.Parse(raw, 0)
	if err == nil {
		var r tapproof.Reading
		if r, err = env.Reading(); err == nil {
			_, err = r.Normalize(received, 0)
		}
	}
	if err == nil {
		return ""
	}
	var rej *tapproof.Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("error %v is not a *tapproof.Rejection", err)
	}
	return rej.Reason
}

func TestReadingSchemaAcceptsSignedReadings(t *testing.T) {
	schema := compileSchema(t, readingSchemaFile)
	k := key(t)
	nirs := func(a tapproof.Analyte, u tapproof.Unit, v float64) tapproof.Reading {
		r := leadReading()
		r.Device, r.Method, r.Model, r.DetectionLimit = "flint-nirs1", tapproof.NIRS, "pls-snv-2026.1", 0
		r.Analyte, r.Unit, r.Value = a, u, v
		return r
	}
	edit := func(f func(r *tapproof.Reading)) tapproof.Reading {
		r := leadReading()
		f(&r)
		return r
	}
	for name, r := range map[string]tapproof.Reading{
		"lead ASV": leadReading(),
		"lead in mg/L by lab": edit(func(r *tapproof.Reading) {
			r.Method, r.Unit, r.Value, r.DetectionLimit = tapproof.Lab, tapproof.MilligramsPerLiter, 0.0151, 0.001
		}),
		"copper in ug/L": edit(func(r *tapproof.Reading) { r.Analyte, r.Method, r.Value = tapproof.Copper, tapproof.Fluorescence, 130 }),
		"NIRS turbidity": nirs(tapproof.Turbidity, tapproof.NTU, 0.31),
		"NIRS toc":       nirs(tapproof.TOC, tapproof.MilligramsPerLiter, 2.1),
		"NIRS iron":      nirs(tapproof.Iron, tapproof.MilligramsPerLiter, 0.09),
		"zero, no detection limit, offset and nanoseconds": edit(func(r *tapproof.Reading) {
			r.Value, r.DetectionLimit = 0, 0
			r.SampledAt = sampledAt.Add(456789).In(time.FixedZone("", -5*3600))
		}),
		"limits": edit(func(r *tapproof.Reading) {
			r.Seq, r.Value, r.DetectionLimit = math.MaxUint64, 100_000, 100_000
			r.Utility, r.Site, r.Device = strings.Repeat("u", 63), "0", "9-"
		}),
		"upper-case firmware digest": edit(func(r *tapproof.Reading) { r.Firmware = strings.ToUpper(firmware) }),
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := signed.SignReading(t.Context(), k, r)
			if err != nil {
				t.Fatal(err)
			}
			env, err := signed.Parse(raw, 0)
			if err != nil {
				t.Fatal(err)
			}
			if env.PayloadType() != tapproof.ReadingPayloadType {
				t.Fatalf("payload type %q", env.PayloadType())
			}
			if err := validate(schema, env.Payload); err != nil {
				t.Errorf("schema refuses %s:\n%v", env.Payload, err)
			}
			if reason := decodeReason(t, raw); reason != "" {
				t.Errorf("tapproof rejects the fixture as %s", reason)
			}
		})
	}
}

// payloadCase is a reading payload the schema must refuse, made by editing
// the JSON of a valid one. reason is what tapproof rejects it as; ""
// records that tapproof accepts it and the schema is stricter.
type payloadCase struct {
	name   string
	edit   func(m map[string]any)
	reason tapproof.Reason
}

func del(field string) func(map[string]any) { return func(m map[string]any) { delete(m, field) } }

func set(field string, v any) func(map[string]any) { return func(m map[string]any) { m[field] = v } }

// edits applies several edits in turn.
func edits(fs ...func(map[string]any)) func(map[string]any) {
	return func(m map[string]any) {
		for _, f := range fs {
			f(m)
		}
	}
}

// edited returns the JSON of v with e applied.
func edited(t *testing.T, v any, e func(map[string]any)) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	e(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadingSchemaRefusesWhatTapproofRefuses(t *testing.T) {
	schema := compileSchema(t, readingSchemaFile)
	k := key(t)
	const (
		malformed = tapproof.ReasonMalformed
		invalid   = tapproof.ReasonInvalid
		absurd    = tapproof.ReasonAbsurd
		accepted  = tapproof.Reason("")
	)
	for _, c := range []payloadCase{
		{"missing utility", del("utility"), invalid},
		{"missing site", del("site"), invalid},
		{"missing device", del("device"), invalid},
		{"missing seq", del("seq"), malformed},
		{"missing analyte", del("analyte"), invalid},
		{"missing unit", del("unit"), invalid},
		{"missing method", del("method"), invalid},
		{"missing sampled_at", del("sampled_at"), malformed},
		{"missing firmware_sha256", del("firmware_sha256"), malformed},
		// Go cannot tell an absent value from 0.
		{"missing value", del("value"), accepted},

		{"bad id: upper case", set("device", "Flint-Site-3-PB1"), invalid},
		{"bad id: leading hyphen", set("site", "-site-3"), invalid},
		{"bad id: dot", set("utility", "flint.mi"), invalid},
		{"bad id: underscore", set("site", "site_3"), invalid},
		{"bad id: 64 characters", set("device", strings.Repeat("d", 64)), invalid},
		{"bad id: empty", set("utility", ""), invalid},

		{"seq 0", set("seq", 0), malformed},
		{"seq negative", set("seq", -1), malformed},
		{"seq fraction", set("seq", 1.5), malformed},
		{"seq above 64 bits", set("seq", json.Number("18446744073709551616")), malformed},
		{"seq as string", set("seq", "42"), malformed},

		{"unknown analyte", set("analyte", "arsenic"), invalid},
		{"analyte in upper case", set("analyte", "Lead"), invalid},
		{"unknown unit", set("unit", "ppb"), invalid},
		{"unit of another analyte", set("unit", "[NTU]"), invalid},
		{"turbidity in mg/L", edits(set("analyte", "turbidity"), set("unit", "mg/L")), invalid},
		{"unknown method", set("method", "ICP-MS"), invalid},
		{"NIRS without model", set("method", "NIRS"), invalid},
		{"NIRS with empty model", edits(set("method", "NIRS"), set("model", "")), invalid},

		{"negative value", set("value", -0.1), absurd},
		{"lead above 100000 ug/L", set("value", 100_001), absurd},
		{"lead above 100 mg/L", edits(set("unit", "mg/L"), set("value", 100.5)), absurd},
		{"copper above 1000 mg/L", edits(set("analyte", "copper"), set("unit", "mg/L"), set("value", 1001)), absurd},
		{"negative detection limit", set("detection_limit", -0.5), absurd},
		{"value as string", set("value", "4.2"), malformed},

		{"sampled_at without T", set("sampled_at", "2026-11-01 08:00:00Z"), malformed},
		{"sampled_at in lower case", set("sampled_at", "2026-11-01t08:00:00.123z"), malformed},
		{"sampled_at without zone", set("sampled_at", "2026-11-01T08:00:00"), malformed},
		{"sampled_at date only", set("sampled_at", "2026-11-01"), malformed},
		{"sampled_at as Unix time", set("sampled_at", 1793520000), malformed},
		{"sampled_at 31 November", set("sampled_at", "2026-11-31T08:00:00Z"), malformed},

		{"firmware digest too short", set("firmware_sha256", firmware[:62]), malformed},
		{"firmware digest not hex", set("firmware_sha256", strings.Repeat("zz", 32)), malformed},

		{"extra field", set("battery_v", 3.3), malformed},
		{"status field of a device", set("status", "active"), malformed},

		// Go's decoder is lenient here; the contract is not.
		{"field name in another case", edits(del("utility"), set("Utility", "flint")), accepted},
		{"null model", set("model", nil), accepted},
		{"unit with spaces", set("unit", " ug/L "), accepted},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload := edited(t, leadReading(), c.edit)
			if validate(schema, payload) == nil {
				t.Errorf("schema accepts %s", payload)
			}
			raw, err := signed.Sign(t.Context(), k, tapproof.ReadingPayloadType, payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeReason(t, raw); got != c.reason {
				if c.reason == accepted {
					t.Errorf("tapproof now rejects %s as %s: the schema and the code agree, move the case", payload, got)
				} else {
					t.Errorf("tapproof rejects %s as %q, want %q", payload, got, c.reason)
				}
			}
		})
	}
}

// enrollRefusal applies the checks of the admin API's enrollment
// (cmd/tapproof's platform.Enroll) that need no registry.
func enrollRefusal(t *testing.T, raw []byte) error {
	t.Helper()
	env, err := signed.Parse(raw, 64<<10)
	if err != nil {
		return err
	}
	en, err := env.Enrollment()
	if err != nil {
		return err
	}
	if err := env.Verify(t.Context(), en.PublicKey); err != nil {
		return err
	}
	d := tapproof.Device{ID: en.Device, Utility: en.Utility, Site: en.Site, Kind: en.Kind, PublicKey: en.PublicKey,
		Firmware: en.Firmware, Status: tapproof.DeviceActive, EnrolledAt: en.EnrolledAt}
	return d.Validate()
}

func exampleDevice(pub ed25519.PublicKey) tapproof.Device {
	return tapproof.Device{ID: "flint-site-3-pb1", Utility: "flint", Site: "site-3", Kind: tapproof.ASV,
		PublicKey: pub, Firmware: firmware, Status: tapproof.DeviceActive,
		EnrolledAt: time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)}
}

func TestEnrollmentSchema(t *testing.T) {
	schema := compileSchema(t, enrollmentSchemaFile)
	k := key(t)
	d := exampleDevice(k.Public().(ed25519.PublicKey))
	for _, kind := range []tapproof.Method{tapproof.ASV, tapproof.Fluorescence, tapproof.NIRS, tapproof.Lab} {
		d.Kind = kind
		raw, err := signed.SignEnrollment(t.Context(), k, d.Enrollment())
		if err != nil {
			t.Fatal(err)
		}
		env, err := signed.Parse(raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		if env.PayloadType() != tapproof.EnrollmentPayloadType {
			t.Fatalf("payload type %q", env.PayloadType())
		}
		if err := validate(schema, env.Payload); err != nil {
			t.Errorf("schema refuses %s:\n%v", env.Payload, err)
		}
		if err := enrollRefusal(t, raw); err != nil {
			t.Errorf("tapproof refuses the fixture: %v", err)
		}
	}

	d.Kind = tapproof.ASV
	pub := base64.StdEncoding.EncodeToString(d.PublicKey)
	for _, c := range []struct {
		name    string
		edit    func(map[string]any)
		refused bool // by tapproof; false where the schema is stricter
	}{
		{"missing public_key", del("public_key"), true},
		{"public_key of 31 bytes", set("public_key", base64.StdEncoding.EncodeToString(d.PublicKey[:31])), true},
		{"public_key unpadded", set("public_key", strings.TrimRight(pub, "=")), true},
		{"public_key in hex", set("public_key", hex.EncodeToString(d.PublicKey)), true},
		{"missing firmware_sha256", del("firmware_sha256"), true},
		{"unknown kind", set("kind", "sonar"), true},
		{"bad device id", set("device", "Pb 1"), true},
		{"missing site", del("site"), true},
		{"status field of a device", set("status", "active"), true},
		{"enrolled_at not RFC 3339", set("enrolled_at", "2026-10-01"), true},
		// Device.Validate does not look at enrolled_at.
		{"missing enrolled_at", del("enrolled_at"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload := edited(t, d.Enrollment(), c.edit)
			if validate(schema, payload) == nil {
				t.Errorf("schema accepts %s", payload)
			}
			raw, err := signed.Sign(t.Context(), k, tapproof.EnrollmentPayloadType, payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := enrollRefusal(t, raw); (err != nil) != c.refused {
				t.Errorf("tapproof's enrollment checks of %s: %v, want refused %v", payload, err, c.refused)
			}
		})
	}
}

// pae is DSSE's pre-authentication encoding, as docs/devices.md gives it.
func pae(payloadType string, body []byte) []byte {
	s := "DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(body)) + " "
	return append([]byte(s), body...)
}

// handEnvelope builds an envelope as docs/devices.md tells a client in
// another language to: no keyid, standard base64.
func handEnvelope(key ed25519.PrivateKey, payloadType string, body []byte) []byte {
	sig := ed25519.Sign(key, pae(payloadType, body))
	return []byte(`{"payloadType":"` + payloadType + `","payload":"` + base64.StdEncoding.EncodeToString(body) +
		`","signatures":[{"sig":"` + base64.StdEncoding.EncodeToString(sig) + `"}]}`)
}

func TestHandBuiltEnvelope(t *testing.T) {
	k := key(t)
	pub := k.Public().(ed25519.PublicKey)
	body, err := json.Marshal(leadReading())
	if err != nil {
		t.Fatal(err)
	}
	raw := handEnvelope(k, tapproof.ReadingPayloadType, body)
	env, err := signed.Parse(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Verify(t.Context(), pub); err != nil {
		t.Errorf("Verify of a hand-built envelope = %v", err)
	}
	if reason := decodeReason(t, raw); reason != "" {
		t.Errorf("hand-built envelope rejected as %s", reason)
	}

	// signed.Sign computes the same signature: Ed25519 is deterministic.
	lib, err := signed.Sign(t.Context(), k, tapproof.ReadingPayloadType, body)
	if err != nil {
		t.Fatal(err)
	}
	var le, he struct {
		Signatures []struct{ KeyID, Sig string }
	}
	if err := json.Unmarshal(lib, &le); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &he); err != nil {
		t.Fatal(err)
	}
	if le.Signatures[0].Sig != he.Signatures[0].Sig {
		t.Errorf("signed.Sign's signature %s differs from ed25519(PAE) %s", le.Signatures[0].Sig, he.Signatures[0].Sig)
	}
	libKeyID := le.Signatures[0].KeyID

	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(k, pae(tapproof.ReadingPayloadType, body)))
	payload := base64.StdEncoding.EncodeToString(body)
	envelope := func(signature string) []byte {
		return []byte(`{"payloadType":"` + tapproof.ReadingPayloadType + `","payload":"` + payload + `","signatures":[` + signature + `]}`)
	}
	for _, c := range []struct {
		name string
		raw  []byte
		want tapproof.Reason // of Parse, then Verify; "" if both pass
	}{
		{"empty keyid", envelope(`{"keyid":"","sig":"` + sig + `"}`), ""},
		{"keyid of signed.Sign", envelope(`{"keyid":"` + libKeyID + `","sig":"` + sig + `"}`), ""},
		{"other keyid", envelope(`{"keyid":"sensor-1","sig":"` + sig + `"}`), tapproof.ReasonBadSignature},
		{"URL-safe base64 signature", envelope(`{"sig":"` + base64.URLEncoding.EncodeToString(ed25519.Sign(k, pae(tapproof.ReadingPayloadType, body))) + `"}`), ""},
		{"signature over the body only", envelope(`{"sig":"` + base64.StdEncoding.EncodeToString(ed25519.Sign(k, body)) + `"}`), tapproof.ReasonBadSignature},
		{"no signature", envelope(``), tapproof.ReasonMalformed},
		{"extra signature field", envelope(`{"sig":"` + sig + `","cert":""}`), tapproof.ReasonMalformed},
		{"extra envelope field", []byte(strings.Replace(string(envelope(`{"sig":"`+sig+`"}`)), `{`, `{"version":1,`, 1)), tapproof.ReasonMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, err := signed.Parse(c.raw, 0)
			if err == nil {
				err = env.Verify(t.Context(), pub)
			}
			var got tapproof.Reason
			if rej := (*tapproof.Rejection)(nil); errors.As(err, &rej) {
				got = rej.Reason
			} else if err != nil {
				t.Fatalf("error %v is not a rejection", err)
			}
			if got != c.want {
				t.Errorf("%s: %v, want %q", c.raw, err, c.want)
			}
		})
	}
}

// userNkey encodes pub as a NATS user nkey, as docs/devices.md describes:
// base32 (no padding) of the prefix byte 'U' (20<<3), the key, and the
// CRC-16/XMODEM of both, little-endian.
func userNkey(pub ed25519.PublicKey) string {
	raw := append([]byte{20 << 3}, pub...)
	var crc uint16
	for _, b := range raw {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	raw = binary.LittleEndian.AppendUint16(raw, crc)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
}

// TestDevicesDocExample recomputes the worked example of docs/devices.md
// from its key and checks that the document prints exactly those values.
func TestDevicesDocExample(t *testing.T) {
	doc, err := os.ReadFile(devicesDoc)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8032, section 7.1, test 1.
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	k := ed25519.NewKeyFromSeed(seed)
	pub := k.Public().(ed25519.PublicKey)

	r := leadReading()
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	en, err := json.Marshal(exampleDevice(pub).Enrollment())
	if err != nil {
		t.Fatal(err)
	}
	p := pae(tapproof.ReadingPayloadType, body)
	sig := ed25519.Sign(k, p)
	raw := handEnvelope(k, tapproof.ReadingPayloadType, body)
	if reason := decodeReason(t, raw); reason != "" {
		t.Fatalf("example rejected as %s", reason)
	}
	enRaw := handEnvelope(k, tapproof.EnrollmentPayloadType, en)
	if err := enrollRefusal(t, enRaw); err != nil {
		t.Fatalf("example enrollment refused: %v", err)
	}
	for name, want := range map[string]string{
		"seed":                hex.EncodeToString(seed),
		"public key":          hex.EncodeToString(pub),
		"public key b64":      base64.StdEncoding.EncodeToString(pub),
		"nkey":                userNkey(pub),
		"firmware":            firmware,
		"payload":             string(body),
		"enrollment":          string(en),
		"PAE":                 string(p),
		"signature":           base64.StdEncoding.EncodeToString(sig),
		"envelope":            string(raw),
		"enrollment envelope": string(enRaw),
		"enrollment type":     tapproof.EnrollmentPayloadType,
		"reading type":        tapproof.ReadingPayloadType,
		"subject":             "tapproof.readings." + r.Utility + "." + r.Site + "." + r.Device,
		"reading schema":      strings.TrimPrefix(readingSchemaFile, "../"),
		"enrollment schema":   strings.TrimPrefix(enrollmentSchemaFile, "../"),
	} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("%s does not show the %s:\n%s", devicesDoc, name, want)
		}
	}
	for _, reason := range tapproof.Reasons {
		if !bytes.Contains(doc, []byte("`"+string(reason)+"`")) {
			t.Errorf("%s does not list the rejection reason %s", devicesDoc, reason)
		}
	}
}
