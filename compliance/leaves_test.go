package compliance_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/signed"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// seededKey returns a deterministic key, so that the fixture's envelopes
// (Ed25519 signatures are deterministic) are the same on every run.
func seededKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("tapproof compliance fixture: " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

var (
	labKey      = seededKey("acme-labs")
	reviewerKey = seededKey("mi-egle-rev1")
	rogueKey    = seededKey("rogue")
)

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

var fixtureKeys = compliance.KeySet{
	Labs:      map[string][]ed25519.PublicKey{"acme-labs": {pub(labKey)}},
	Reviewers: map[string][]ed25519.PublicKey{"mi-egle-rev1": {pub(reviewerKey)}},
}

func sign(t testing.TB, key ed25519.PrivateKey, payloadType string, v any) []byte {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signed.Sign(context.Background(), key, payloadType, p)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// fixture is a small log of utility flint (Michigan, action level 12 µg/L in
// 2026H2):
//
//	0      a sensor reading (not a compliance entry)
//	1      a leaf that is not an envelope
//	2-13   twelve lead samples at eleven sites; site s-1 has a lead service
//	       line, first liter 6, fifth 0.014 mg/L; s-2 is below detection
//	14     a 2026H1 sample from a lab nobody trusts (ignored)
//	15     a copper sample (ignored by the lead report)
//	16     a valid invalidation of the 40 µg/L sample at leaf 12
//	17     an invalidation of leaf 11 (12.8) claiming the reviewer, signed by another key
//	18     an invalidation of leaf 3 (14) by a reviewer nobody trusts
//
// Counted: 0 2 3 4 5 7 9 11 12.8 14, n = 10, rank 9: 12.8 > 12, an
// exceedance. Had leaves 17 and 18 applied, the 90th percentile would be 9.
func fixture(t testing.TB) []tapproof.Leaf {
	t.Helper()
	at := time.Date(2026, 8, 3, 6, 30, 0, 0, time.UTC)
	var leaves []tapproof.Leaf
	add := func(b []byte) { leaves = append(leaves, tapproof.Leaf{Index: uint64(len(leaves)), Bytes: b}) }

	r, err := signed.SignReading(context.Background(), seededKey("sensor"), tapproof.Reading{
		Utility: "flint", Site: "s-1", Device: "asv-1", Seq: 1, Analyte: tapproof.Lead, Value: 80,
		Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV, SampledAt: at, Firmware: strings.Repeat("ab", 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	add(r)
	add([]byte(`{"notice":"tier-1","sha256":"00"}`))

	lab := func(id, site string, lsl bool, l tapproof.Liter, v float64, u tapproof.Unit, below bool) tapproof.LabSample {
		dl := 1.0
		if u == tapproof.MilligramsPerLiter {
			dl = 0.001
		}
		return tapproof.LabSample{
			Lab: "acme-labs", SampleID: id, Utility: "flint", Site: site, Tier: 1, LeadServiceLine: lsl, Liter: l,
			Analyte: tapproof.Lead, Value: v, Unit: u, DetectionLimit: dl, BelowDetection: below,
			CollectedAt: at, AnalyzedAt: at.Add(50 * time.Hour), Period: "2026H2", Method: "EPA 200.8",
		}
	}
	ug, mg := tapproof.MicrogramsPerLiter, tapproof.MilligramsPerLiter
	for i, s := range []tapproof.LabSample{
		lab("L-101", "s-1", true, tapproof.FirstLiter, 6, ug, false),
		lab("L-102", "s-1", true, tapproof.FifthLiter, 0.014, mg, false),
		lab("L-103", "s-2", false, tapproof.FirstLiter, 0, ug, true),
		lab("L-104", "s-3", false, tapproof.FirstLiter, 2, ug, false),
		lab("L-105", "s-4", false, tapproof.FirstLiter, 3, ug, false),
		lab("L-106", "s-5", false, tapproof.FirstLiter, 4, ug, false),
		lab("L-107", "s-6", false, tapproof.FirstLiter, 5, ug, false),
		lab("L-108", "s-7", false, tapproof.FirstLiter, 7, ug, false),
		lab("L-109", "s-8", false, tapproof.FirstLiter, 11, ug, false),
		lab("L-110", "s-9", false, tapproof.FirstLiter, 0.0128, mg, false),
		lab("L-111", "s-10", false, tapproof.FirstLiter, 40, ug, false),
		lab("L-112", "s-11", false, tapproof.FirstLiter, 9, ug, false),
	} {
		if s.Site != "s-1" { // the pair shares its collection day
			s.CollectedAt = s.CollectedAt.Add(time.Duration(i) * 24 * time.Hour)
			s.AnalyzedAt = s.CollectedAt.Add(50 * time.Hour)
		}
		add(sign(t, labKey, tapproof.LabSamplePayloadType, s))
	}
	h1 := lab("X-1", "s-3", false, tapproof.FirstLiter, 90, ug, false)
	h1.Lab, h1.Period, h1.CollectedAt, h1.AnalyzedAt = "shady-labs", "2026H1", at.AddDate(0, -2, 0), at.AddDate(0, -2, 1)
	add(sign(t, seededKey("shady-labs"), tapproof.LabSamplePayloadType, h1))
	cu := lab("L-113", "s-3", false, tapproof.FirstLiter, 0.9, mg, false)
	cu.Analyte = tapproof.Copper
	add(sign(t, labKey, tapproof.LabSamplePayloadType, cu))

	inv := func(sampleID string, index uint64, reviewer, reason string) tapproof.Invalidation {
		return tapproof.Invalidation{Utility: "flint", Lab: "acme-labs", SampleID: sampleID, SampleIndex: index,
			Reason: reason, Reviewer: reviewer, DecidedAt: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	}
	add(sign(t, reviewerKey, tapproof.InvalidationPayloadType, inv("L-111", 12, "mi-egle-rev1", "sampled after a filter was installed")))
	add(sign(t, rogueKey, tapproof.InvalidationPayloadType, inv("L-110", 11, "mi-egle-rev1", "resident flushed the tap")))
	add(sign(t, rogueKey, tapproof.InvalidationPayloadType, inv("L-102", 3, "city-of-flint", "not a lead service line after all")))

	// The records of the notices sent (tapproof.NoticeRecord): the Tier 1
	// notice 5.5 hours after the alert, the consumer notice of leaf 3 four
	// days after, of leaf 11 the next day (then a second record of it,
	// which does not count), of leaf 12 none.
	notice := func(alert string, class tapproof.AlertClass, raised time.Time, after time.Duration) []byte {
		b, err := json.Marshal(map[string]any{
			"type": tapproof.NoticeRecordType, "alert_id": alert, "class": class, "msg_type": "Alert", "utility": "flint",
			"template": "tier1-lead-ale", "template_version": 1, "text_sha256": strings.Repeat("5e", 32), "recipients": 1200,
			"alert_raised_at": raised, "sent_at": raised.Add(after),
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raised := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	add(notice("system_exceedance-flint-lead-2026h2", tapproof.SystemExceedance, raised, 5*time.Hour+30*time.Minute))
	add(notice("individual_compliance-acme-labs.flint-3", tapproof.IndividualCompliance, at.Add(50*time.Hour), 96*time.Hour))
	add(notice("individual_compliance-acme-labs.flint-11", tapproof.IndividualCompliance, at.Add(290*time.Hour), 24*time.Hour))
	add(notice("individual_compliance-acme-labs.flint-11", tapproof.IndividualCompliance, at.Add(290*time.Hour), 2400*time.Hour))
	return leaves
}

var michigan = compliance.Params{Utility: "flint", Period: "2026H2", Rounding: compliance.HalfUp,
	Rules: tapproof.RuleBook{Jurisdictions: map[string]tapproof.Jurisdiction{"flint": "US-MI"}}}

func TestFromLeaves(t *testing.T) {
	leaves := fixture(t)
	rep, err := compliance.FromLeaves(t.Context(), leaves, fixtureKeys, michigan)
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 10 || rep.P90 != 12.8 || rep.Ranks[0] != 9 || !rep.Exceedance || rep.Rule != "us-mi-lead@v1" || rep.Leaves != 23 {
		t.Errorf("FromLeaves = n %d p90 %v ranks %v exceedance %t rule %s over %d leaves; want 10, 12.8, [9], true, us-mi-lead@v1, 23",
			rep.N, rep.P90, rep.Ranks, rep.Exceedance, rep.Rule, rep.Leaves)
	}
	// The notices due: the Tier 1 notice and one consumer notice per
	// sample above 12 ppb, each with the earliest record of its alert.
	type notice struct {
		Alert  string
		Status compliance.NoticeStatus
		Index  uint64
	}
	var notices []notice
	for _, c := range rep.Notices {
		notices = append(notices, notice{c.AlertID, c.Status, c.Index})
	}
	if diff := cmp.Diff([]notice{
		{"system_exceedance-flint-lead-2026h2", compliance.NoticeOnTime, 19},
		{"individual_compliance-acme-labs.flint-3", compliance.NoticeLate, 20},
		{"individual_compliance-acme-labs.flint-11", compliance.NoticeOnTime, 21},
		{"individual_compliance-acme-labs.flint-12", compliance.NoticeNotFound, 0},
	}, notices); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	strict := michigan
	strict.Deadlines.Tier1 = 5 * time.Hour
	if rep, err := compliance.FromLeaves(t.Context(), leaves, fixtureKeys, strict); err != nil || rep.Notices[0].Status != compliance.NoticeLate {
		t.Errorf("Tier 1 notice after 5.5 hours against a 5-hour clock: %+v, %v; want late", rep.Notices, err)
	}

	type outcome struct {
		Index   uint64
		Applied bool
		Unknown bool // the error wraps ErrUnknownSigner's text
	}
	var got []outcome
	for _, o := range rep.Invalidations {
		got = append(got, outcome{o.Index, o.Applied, strings.Contains(o.Error, compliance.ErrUnknownSigner.Error())})
	}
	if diff := cmp.Diff([]outcome{{16, true, false}, {17, false, true}, {18, false, true}}, got); diff != "" {
		t.Errorf("Invalidations (-want +got):\n%s", diff)
	}
	if len(rep.Exclusions) != 1 || rep.Exclusions[0].SampleIndex != 12 {
		t.Errorf("Exclusions = %+v, want the sample at leaf 12", rep.Exclusions)
	}

	// The same figures from the decoded entries.
	var ss []compliance.Sample
	for _, s := range rep.Samples {
		ss = append(ss, s.Sample)
	}
	direct, err := compliance.Compute(michigan, ss, []compliance.Invalidation{{
		Index: 16, Invalidation: rep.Invalidations[0].Invalidation,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if direct.P90 != rep.P90 || direct.N != rep.N {
		t.Errorf("Compute on the decoded entries = p90 %v n %d, FromLeaves %v %d", direct.P90, direct.N, rep.P90, rep.N)
	}

	// Order of the leaves does not matter.
	rev := make([]tapproof.Leaf, len(leaves))
	for i, l := range leaves {
		rev[len(leaves)-1-i] = l
	}
	again, err := compliance.FromLeaves(t.Context(), rev, fixtureKeys, michigan)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep, again); diff != "" {
		t.Errorf("FromLeaves of the reversed leaves (-want +got):\n%s", diff)
	}

	// If the rogue reviewer's key were trusted, Flint would pass: the
	// report depends on the key set, and says so.
	trusting := compliance.KeySet{Labs: fixtureKeys.Labs, Reviewers: map[string][]ed25519.PublicKey{
		"mi-egle-rev1": {pub(reviewerKey), pub(rogueKey)}, "city-of-flint": {pub(rogueKey)},
	}}
	fooled, err := compliance.FromLeaves(t.Context(), leaves, trusting, michigan)
	if err != nil {
		t.Fatal(err)
	}
	if fooled.P90 != 9 || fooled.Exceedance || len(fooled.Exclusions) != 3 {
		t.Errorf("FromLeaves trusting the rogue key = p90 %v exceedance %t, %d exclusions; want 9, false, 3",
			fooled.P90, fooled.Exceedance, len(fooled.Exclusions))
	}

	copper := michigan
	copper.Analyte = tapproof.Copper
	cu, err := compliance.FromLeaves(t.Context(), leaves, fixtureKeys, copper)
	if err != nil {
		t.Fatal(err)
	}
	if cu.N != 1 || cu.P90 != 0.9 || cu.Exceedance || len(cu.Invalidations) != 0 {
		t.Errorf("copper FromLeaves = n %d p90 %v exceedance %t, %d invalidations; want 1, 0.9, false, 0", cu.N, cu.P90, cu.Exceedance, len(cu.Invalidations))
	}
}

// TestFromLeavesGolden pins the whole report, as the CLI's --json prints it.
func TestFromLeavesGolden(t *testing.T) {
	leaves := fixture(t)
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, l := range leaves {
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := compliance.FromLeaves(t.Context(), leaves, fixtureKeys, michigan)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := json.MarshalIndent(fixtureKeys, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"flint-2026H2.report.txt":   text.Bytes(),
		"flint-2026H2.leaves.jsonl": in.Bytes(),
		"flint-2026H2.report.json":  append(out, '\n'),
		"keys.json":                 append(keys, '\n'),
	}
	for name, b := range files {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if diff := cmp.Diff(string(want), string(b)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}

	// The fixture file, read back, gives the same report.
	f, err := os.Open(filepath.Join("testdata", "flint-2026H2.leaves.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read, err := compliance.ReadLeaves(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(leaves, read); diff != "" {
		t.Errorf("ReadLeaves (-want +got):\n%s", diff)
	}
}

func TestFromLeavesRefuses(t *testing.T) {
	leaves := fixture(t)
	otherLab := seededKey("other-lab")
	forged := tapproof.LabSample{
		Lab: "acme-labs", SampleID: "L-999", Utility: "flint", Site: "s-12", Tier: 2, Liter: tapproof.FirstLiter,
		Analyte: tapproof.Lead, Value: 1, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1,
		CollectedAt: time.Date(2026, 8, 1, 6, 0, 0, 0, time.UTC), AnalyzedAt: time.Date(2026, 8, 2, 6, 0, 0, 0, time.UTC), Period: "2026H2",
	}
	unknownLab := forged
	unknownLab.Lab = "other-lab"
	dup := leaves[5]
	dup.Bytes = leaves[6].Bytes
	badSample := forged
	badSample.Tier = 9
	for _, tc := range []struct {
		name  string
		extra tapproof.Leaf
		index uint64
		check func(error) bool
	}{
		{"a sample of acme-labs signed by another key", tapproof.Leaf{Index: 23, Bytes: sign(t, otherLab, tapproof.LabSamplePayloadType, forged)},
			23, func(err error) bool { return errors.Is(err, compliance.ErrUnknownSigner) }},
		{"a sample of a lab without keys", tapproof.Leaf{Index: 23, Bytes: sign(t, otherLab, tapproof.LabSamplePayloadType, unknownLab)},
			23, func(err error) bool { return errors.Is(err, compliance.ErrUnknownSigner) }},
		{"an invalid sample of the period", tapproof.Leaf{Index: 23, Bytes: sign(t, labKey, tapproof.LabSamplePayloadType, badSample)},
			23, func(err error) bool { return strings.Contains(err.Error(), "tier 9") }},
		{"a lab sample that does not decode", tapproof.Leaf{Index: 23, Bytes: sign(t, labKey, tapproof.LabSamplePayloadType, map[string]int{"lab": 1})},
			23, func(err error) bool { return err != nil }},
		{"two leaves at one index", dup, 5, func(err error) bool { return strings.Contains(err.Error(), "given twice") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compliance.FromLeaves(t.Context(), append(fixture(t), tc.extra), fixtureKeys, michigan)
			var le *compliance.LeafError
			if !errors.As(err, &le) || le.Index != tc.index || !tc.check(err) {
				t.Errorf("FromLeaves = %v, want a *LeafError at leaf %d", err, tc.index)
			}
		})
	}
	// The same leaf twice is harmless.
	if _, err := compliance.FromLeaves(t.Context(), append(leaves, leaves[4]), fixtureKeys, michigan); err != nil {
		t.Errorf("FromLeaves with a leaf repeated = %v", err)
	}
}

func TestReadLeavesRejects(t *testing.T) {
	for _, in := range []string{
		`{"index":1}`,
		`{"leaf":"AA=="}`,
		`{"index":1,"leaf":"not base64!"}`,
		`{"index":1,"leaf":"AA==","extra":true}`,
		`{"index":-1,"leaf":"AA=="}`,
		`[1,2]`,
		`{"index":1,"leaf":"AA=="} {`,
	} {
		if _, err := compliance.ReadLeaves(strings.NewReader(in)); err == nil {
			t.Errorf("ReadLeaves(%s) = nil error", in)
		}
	}
	got, err := compliance.ReadLeaves(strings.NewReader("{\"index\":3,\"leaf\":\"AAE=\"}\n\n{\"index\":4,\"leaf\":\"Ag==\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tapproof.Leaf{{Index: 3, Bytes: []byte{0, 1}}, {Index: 4, Bytes: []byte{2}}}, got); diff != "" {
		t.Errorf("ReadLeaves (-want +got):\n%s", diff)
	}
}

// FuzzFromLeaves feeds arbitrary log entries, in the file format, to
// ReadLeaves and FromLeaves: they may refuse, never panic, and a report's
// figures must be consistent.
func FuzzFromLeaves(f *testing.F) {
	var b bytes.Buffer
	for _, l := range fixture(f) {
		json.NewEncoder(&b).Encode(l)
	}
	f.Add(b.Bytes())
	f.Add([]byte(`{"index":0,"leaf":"e30="}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		leaves, err := compliance.ReadLeaves(bytes.NewReader(in))
		if err != nil {
			return
		}
		rep, err := compliance.FromLeaves(context.Background(), leaves, fixtureKeys, michigan)
		if err != nil {
			return
		}
		if rep.N != len(rep.Counted) || rep.N > len(rep.Samples) || rep.Exceedance && rep.P90 <= rep.ActionLevel {
			t.Errorf("inconsistent report: n %d, %d counted, %d samples, p90 %v, exceedance %t",
				rep.N, len(rep.Counted), len(rep.Samples), rep.P90, rep.Exceedance)
		}
	})
}

func TestKeySetValidate(t *testing.T) {
	good := make(ed25519.PublicKey, ed25519.PublicKeySize)
	for name, tc := range map[string]struct {
		ks compliance.KeySet
		ok bool
	}{
		"valid":          {compliance.KeySet{Labs: map[string][]ed25519.PublicKey{"acme-labs": {good}}}, true},
		"a bad lab id":   {compliance.KeySet{Labs: map[string][]ed25519.PublicKey{"Acme Labs": {good}}}, false},
		"a short key":    {compliance.KeySet{Reviewers: map[string][]ed25519.PublicKey{"mi-egle-rev1": {good[:31]}}}, false},
		"no keys at all": {compliance.KeySet{}, true},
		"an id, no key":  {compliance.KeySet{Labs: map[string][]ed25519.PublicKey{"acme-labs": nil}}, true},
		"a bad reviewer": {compliance.KeySet{Reviewers: map[string][]ed25519.PublicKey{"a.b": {good}}}, false},
	} {
		if err := tc.ks.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v, want ok %t", name, err, tc.ok)
		}
	}
	ks := compliance.KeySet{Labs: map[string][]ed25519.PublicKey{"acme-labs": {good}, "empty": nil}}
	c := ks.Clone()
	if _, ok := c.Lab("empty"); ok {
		t.Error("Clone kept a lab without keys")
	}
	c.Labs["acme-labs"][0] = nil
	if ks.Labs["acme-labs"][0] == nil {
		t.Error("Clone shares its key slices with the original")
	}
	if keys, ok := ks.Lab("acme-labs"); !ok || len(keys) != 1 {
		t.Errorf("Lab(acme-labs) = %d keys, %t", len(keys), ok)
	}
}
