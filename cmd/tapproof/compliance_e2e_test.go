package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
	"github.com/tapproof/tapproof/simulate"
)

// startServeCompliance starts serve on the stack with compliance keys and a
// rounding rule.
func startServeCompliance(t *testing.T, st *localstack.Stack, dataDir string, keys compliance.KeySet, rounding compliance.Rounding) *instance {
	t.Helper()
	cfg := testServeConfig(t, st, dataDir)
	cfg.ComplianceKeys, cfg.Rounding = keys, rounding
	return startServeConfig(t, cfg)
}

// startComplianceUtility starts serve with keys and half-up rounding, and
// enrolls a sensor of utility so that its log exists. It returns the
// instance, its parties' connections and the number of enrollments.
func startComplianceUtility(t *testing.T, st *localstack.Stack, keys compliance.KeySet, utility string) (*instance, *devices, uint64) {
	t.Helper()
	in := startServeCompliance(t, st, t.TempDir(), keys, compliance.HalfUp)
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 1, LeadPerSite: 1, NIRSPerUtil: -1, UtilityNames: []string{utility}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(t.Context(), in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	return in, devicesOf(t, in), uint64(len(fleet.Sensors))
}

// TestComplianceEndToEnd runs a monitoring period on the real stack: a
// certified lab publishes the period's lead samples, the API reports the
// 90th percentile of 40 CFR 141.80(c)(3) and whether it exceeds the action
// level, the one sample above it raises one individual compliance alert, a
// state reviewer's invalidation excludes a sample and is listed, one signed
// by an unknown key is refused, and `tapproof compliance` recomputes the
// same figures from the served leaves under each rounding rule.
func TestComplianceEndToEnd(t *testing.T) {
	st := localstack.ForTest(t)
	labPub, labKey, _ := ed25519.GenerateKey(rand.Reader)
	revPub, revKey, _ := ed25519.GenerateKey(rand.Reader)
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	const lab, reviewer, utility, period = "state-lab", "mi-egle-1", "flint", "2025H2"
	keys := compliance.KeySet{
		Labs:      map[string][]ed25519.PublicKey{lab: {labPub}},
		Reviewers: map[string][]ed25519.PublicKey{reviewer: {revPub}},
	}
	in, dev, enrolled := startComplianceUtility(t, st, keys, utility)
	ctx := t.Context()
	sign := func(key ed25519.PrivateKey, payloadType string, v any) []byte {
		t.Helper()
		p, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := signed.Sign(ctx, key, payloadType, p)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// The lab publishes samples and the reviewer invalidations, each on
	// its own connection and subjects.
	publish := func(subject string, raw []byte, id string) {
		t.Helper()
		js := dev.party(broker.Lab, lab, labKey)
		if strings.HasPrefix(subject, journal.InvalidationsSubject) {
			js = dev.party(broker.Reviewer, reviewer, revKey)
		}
		if _, err := js.Publish(ctx, subject, raw, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}

	// Ten lead samples, one above 15 ppb and one at exactly 15 ppb.
	values := []float64{2, 3, 3, 4, 5, 6, 8, 9, 15, 22}
	var samples []tapproof.LabSample
	for i, v := range values {
		at := time.Date(2025, 8, 4+i, 6, 30, 0, 0, time.FixedZone("EDT", -4*3600))
		s := tapproof.LabSample{Lab: lab, SampleID: fmt.Sprintf("L2025-%03d", i+1), Utility: utility,
			Site: fmt.Sprintf("home-%02d", i+1), Tier: 1, LeadServiceLine: i%2 == 0, Liter: tapproof.FirstLiter,
			Analyte: tapproof.Lead, Value: v / 1000, Unit: tapproof.MilligramsPerLiter, DetectionLimit: 0.001,
			CollectedAt: at, AnalyzedAt: at.Add(50 * time.Hour), Period: period, Method: "EPA 200.8"}
		samples = append(samples, s)
		publish(journal.LabSamplesSubject+"."+utility+"."+lab, sign(labKey, tapproof.LabSamplePayloadType, s), "sample-"+s.SampleID)
	}
	// A sample signed by a key no lab holds.
	forged := samples[0]
	forged.SampleID = "L2025-999"
	publish(journal.LabSamplesSubject+"."+utility+"."+lab, sign(strangerKey, tapproof.LabSamplePayloadType, forged), "forged-sample")
	// A sample for a utility that has no log: no replica leads its ingest,
	// so the leader's stray sweep decides it, refused, rather than leave
	// it waiting in the readings stream for ever.
	invalidBefore := metricValue(t, in.api, `tapproof_ingest_rejected_total{reason="invalid"}`)
	nowhere := samples[0]
	nowhere.Utility, nowhere.SampleID = "atlantis", "L2025-998"
	publish(journal.LabSamplesSubject+".atlantis."+lab, sign(labKey, tapproof.LabSamplePayloadType, nowhere), "nowhere-sample")
	defer poll.Until(t, 45*time.Second, func() error {
		if got := metricValue(t, in.api, `tapproof_ingest_rejected_total{reason="invalid"}`) - invalidBefore; got != 1 {
			return fmt.Errorf("invalid rejections rose by %v, want 1: the sample for a utility with no log", got)
		}
		return nil
	})

	report := func(query string) compliance.Report {
		t.Helper()
		var rep compliance.Report
		poll.Until(t, 30*time.Second, func() error {
			code, b := get(t, in.api+"/v1/compliance/"+utility+"/"+period+query)
			if code != 200 {
				return fmt.Errorf("GET report = %d %s", code, b)
			}
			rep = compliance.Report{}
			return json.Unmarshal(b, &rep)
		})
		return rep
	}
	var rep compliance.Report
	poll.Until(t, 30*time.Second, func() error {
		rep = report("?analyte=lead")
		if len(rep.Samples) != len(values) {
			return fmt.Errorf("report has %d samples, want %d", len(rep.Samples), len(values))
		}
		return nil
	})
	// n = 10: rank 0.9 × 10 = 9, the 9th lowest, 15 ppb: not above 15.
	if rep.N != 10 || rep.P90 != 15 || rep.RankExact != "9" || rep.Exceedance || rep.ActionLevel != 15 ||
		rep.Rounding != compliance.HalfUp || !strings.HasPrefix(rep.Rule, "us-lead-") {
		t.Errorf("report = n %d, p90 %v (rank %s, %s), exceedance %t, level %v, rule %s; want n 10, p90 15 at rank 9, no exceedance at 15 under the federal rule",
			rep.N, rep.P90, rep.RankExact, rep.Rounding, rep.Exceedance, rep.ActionLevel, rep.Rule)
	}
	if len(rep.IndividualExceedances) != 1 || rep.IndividualExceedances[0].Value != 22 {
		t.Errorf("individual exceedances = %+v, want the 22 ppb sample", rep.IndividualExceedances)
	}

	// The samples are points in InfluxDB too, for the compliance dashboard.
	poll.Until(t, 30*time.Second, func() error {
		if got := influxCount(t, st, `utility='flint' AND method='lab'`); got != len(values) {
			return fmt.Errorf("lab points in InfluxDB = %d, want %d", got, len(values))
		}
		return nil
	})

	// The 22 ppb sample raised one individual compliance alert: its
	// consumer notice is recorded in the log, on time. The alert is the
	// home's own: GET /v1/alerts does not list it.
	high := rep.Samples[len(rep.Samples)-1]
	poll.Until(t, 20*time.Second, func() error {
		var got []string
		for _, nc := range report("").Notices {
			if nc.Class == tapproof.IndividualCompliance && nc.Status == compliance.NoticeOnTime {
				got = append(got, nc.AlertID)
			}
		}
		if want := tapproof.IndividualAlertID(utility, lab, high.Index); len(got) != 1 || got[0] != want {
			return fmt.Errorf("consumer notices on time = %v, want [%s], the 22 ug/L sample's at leaf %d", got, want, high.Index)
		}
		return nil
	})
	_, b := get(t, in.api+"/v1/alerts")
	if strings.Contains(string(b), string(tapproof.IndividualCompliance)) {
		t.Errorf("GET /v1/alerts lists a home's own result:\n%s", b)
	}

	// A reviewer invalidates the 22 ppb sample; a forger tries the same
	// with a key of their own.
	inv := tapproof.Invalidation{Utility: utility, Lab: lab, SampleID: high.SampleID, SampleIndex: high.Index,
		Reason: "collected after a service line replacement, outside the sampling protocol", Reviewer: reviewer,
		DecidedAt: time.Now().UTC().Truncate(time.Second)}
	rejectedBefore := metricValue(t, in.api, `tapproof_ingest_rejected_total{reason="unknown_signer"}`)
	invSubject := journal.InvalidationsSubject + "." + utility + "." + reviewer
	publish(invSubject, sign(strangerKey, tapproof.InvalidationPayloadType, inv), "forged-invalidation")
	publish(invSubject, sign(revKey, tapproof.InvalidationPayloadType, inv), "invalidation")
	poll.Until(t, 30*time.Second, func() error {
		if got := metricValue(t, in.api, `tapproof_ingest_rejected_total{reason="unknown_signer"}`); got != rejectedBefore+1 {
			return fmt.Errorf("unknown_signer rejections = %v, want %v (the forged invalidation)", got, rejectedBefore+1)
		}
		rep = report("")
		if len(rep.Exclusions) != 1 {
			return fmt.Errorf("exclusions = %+v, want 1", rep.Exclusions)
		}
		return nil
	})
	if got := metricValue(t, in.api, `tapproof_ingest_rejected_total{reason="unknown_signer"}`); got != 2 {
		t.Errorf("unknown_signer rejections = %v, want 2 (forged sample and forged invalidation)", got)
	}
	ex := rep.Exclusions[0]
	if ex.SampleIndex != high.Index || ex.Value != 22 || ex.Reviewer != reviewer || ex.Reason != inv.Reason {
		t.Errorf("exclusion = %+v, want sample at leaf %d by %s", ex, high.Index, reviewer)
	}
	// n = 9: rank 0.9 × 9 = 8.1, half-up 8: 9 ppb.
	if rep.N != 9 || rep.P90 != 9 || rep.RankExact != "8.1" || rep.Exceedance {
		t.Errorf("after the invalidation: n %d, p90 %v (rank %s), exceedance %t; want n 9, p90 9 (rank 8.1 → 8)", rep.N, rep.P90, rep.RankExact, rep.Exceedance)
	}
	// The alert stands: an invalidation never withdraws a consumer notice.
	if len(rep.IndividualExceedances) != 1 {
		t.Errorf("individual exceedances after the invalidation = %d, want 1", len(rep.IndividualExceedances))
	}

	// Anyone recomputes from the served leaves, under each rounding rule.
	leavesURL := in.api + "/v1/compliance/" + utility + "/leaves"
	for _, tc := range []struct {
		rounding compliance.Rounding
		p90      float64
	}{{compliance.HalfUp, 9}, {compliance.HalfEven, 9}, {compliance.Up, 15}} {
		out, err := runCmd(t, "compliance", "--utility", utility, "--period", period, "--leaves", leavesURL,
			"--rounding", string(tc.rounding), "--lab-key", lab+"="+b64(labPub), "--reviewer-key", reviewer+"="+b64(revPub), "--json")
		if err != nil {
			t.Fatalf("tapproof compliance --rounding %s: %v\n%s", tc.rounding, err, out)
		}
		var got compliance.Report
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("tapproof compliance --json: %v\n%s", err, out)
		}
		if got.P90 != tc.p90 || got.N != 9 || len(got.Exclusions) != 1 || got.Rounding != tc.rounding {
			t.Errorf("recomputed with %s: p90 %v, n %d, %d exclusions; want p90 %v, n 9, 1 exclusion", tc.rounding, got.P90, got.N, len(got.Exclusions), tc.p90)
		}
	}

	// Every compliance entry is in the verifiable log: a published
	// checkpoint covers the last one, the invalidation.
	if len(rep.Invalidations) != 1 || !rep.Invalidations[0].Applied {
		t.Fatalf("invalidations = %+v, want one, applied", rep.Invalidations)
	}
	last := rep.Invalidations[0].Index
	if min := enrolled + uint64(len(values)); last < min {
		t.Errorf("invalidation at leaf %d, want after the %d enrollments and %d samples", last, enrolled, len(values))
	}
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, utility).Size; got <= last {
			return fmt.Errorf("checkpoint size = %d, want > %d", got, last)
		}
		return nil
	})
}

func b64(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }

// TestSystemExceedanceEndToEnd: the moment the log's samples put a
// monitoring period's 90th percentile above the action level, tapproof
// raises the system action level exceedance alert, the one that calls for a
// Tier 1 public notice within 24 hours, once, and records its notice in the
// log. A further sample recomputes the period and raises nothing more.
func TestSystemExceedanceEndToEnd(t *testing.T) {
	st := localstack.ForTest(t)
	labPub, labKey, _ := ed25519.GenerateKey(rand.Reader)
	const lab, utility, period = "state-lab", "flint", "2026H1"
	in, dev, enrolled := startComplianceUtility(t, st, compliance.KeySet{Labs: map[string][]ed25519.PublicKey{lab: {labPub}}}, utility)
	js := dev.party(broker.Lab, lab, labKey)
	ctx := t.Context()
	n := 0
	publish := func(ppb ...float64) {
		t.Helper()
		for _, v := range ppb {
			n++
			at := time.Date(2026, 3, n, 7, 0, 0, 0, time.UTC)
			s := tapproof.LabSample{Lab: lab, SampleID: fmt.Sprintf("S-%03d", n), Utility: utility, Site: fmt.Sprintf("home-%02d", n),
				Tier: 1, Liter: tapproof.FirstLiter, Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter,
				DetectionLimit: 0.5, CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour), Period: period}
			p, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := signed.Sign(ctx, labKey, tapproof.LabSamplePayloadType, p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, journal.LabSamplesSubject+"."+utility+"."+lab, raw, jetstream.WithMsgID(s.SampleID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// checked waits until the exceedance watch has seen every sample
	// published, and returns the alerts by class.
	checked := func() map[tapproof.AlertClass][]tapproof.Alert {
		t.Helper()
		poll.Until(t, 30*time.Second, func() error {
			if got := metricValue(t, in.api, `tapproof_sink_entries_total{sink="exceedance"}`); got != float64(n) {
				return fmt.Errorf("samples checked for an exceedance = %v, want %d", got, n)
			}
			return nil
		})
		_, b := get(t, in.api+"/v1/alerts")
		var as []tapproof.Alert
		if err := json.Unmarshal(b, &as); err != nil {
			t.Fatal(err)
		}
		by := map[tapproof.AlertClass][]tapproof.Alert{}
		for _, a := range as {
			by[a.Class] = append(by[a.Class], a)
		}
		return by
	}

	// n = 10: rank 9, 14 ppb: not above 15. The 20 ppb sample needs its
	// own consumer notice; the system does not exceed.
	publish(1, 1, 1, 1, 1, 1, 1, 1, 14, 20)
	if got := checked()[tapproof.SystemExceedance]; len(got) != 0 {
		t.Fatalf("system exceedance alerts at a 90th percentile of 14 ppb: %+v", got)
	}

	// n = 11: rank 9.9, half-up 10: 16 ppb, above 15.
	publish(16)
	by := checked()
	if got := by[tapproof.SystemExceedance]; len(got) != 1 {
		t.Fatalf("system exceedance alerts = %+v, want one", got)
	}
	a := by[tapproof.SystemExceedance][0]
	if a.ID != "system_exceedance-flint-lead-2026h1" || a.Value != 16 || a.Level != 15 || a.Site != "" ||
		!strings.HasPrefix(a.Rule, "us-lead-") || !a.SampledAt.Equal(time.Date(2026, 3, 11, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("system exceedance alert = %+v; want flint's 2026H1 lead alert at 16 against 15 ppb, sampled with the 11th sample", a)
	}
	if got := len(by[tapproof.IndividualCompliance]); got != 0 {
		t.Errorf("GET /v1/alerts lists %d individual compliance alerts, want none: they go to their homes (their notices are checked below)", got)
	}

	// n = 12: rank 10.8, half-up 11: 18 ppb. Still exceeded: no second alert.
	publish(18)
	if got := checked()[tapproof.SystemExceedance]; len(got) != 1 || got[0].ID != a.ID || !got[0].RaisedAt.Equal(a.RaisedAt) {
		t.Errorf("system exceedance alerts after a further sample = %+v, want the first one only", got)
	}

	// Each alert's notice is recorded in the log: 3 individual, 1 Tier 1.
	want := enrolled + uint64(n) + 4
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, utility).Size; got != want {
			return fmt.Errorf("checkpoint size = %d, want %d: enrollments, %d samples and 4 notice records", got, want, n)
		}
		return nil
	})

	// A regulator checks the notice clock from the log's entries alone.
	out, err := runCmd(t, "compliance", "--utility", utility, "--period", period, "--leaves", in.api+"/v1/compliance/"+utility+"/leaves",
		"--lab-key", lab+"="+b64(labPub), "--json")
	if err != nil {
		t.Fatalf("tapproof compliance: %v\n%s", err, out)
	}
	var rep compliance.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Notices) != 4 {
		t.Fatalf("notices due = %+v, want the Tier 1 notice and 3 consumer notices", rep.Notices)
	}
	tier1 := rep.Notices[0]
	if tier1.AlertID != a.ID || tier1.Status != compliance.NoticeOnTime || tier1.Template != "tier1-lead-ale@v2" ||
		!tier1.RaisedAt.Equal(a.RaisedAt) || tier1.SentAt.Before(tier1.RaisedAt) || tier1.Index < enrolled+11 {
		t.Errorf("Tier 1 notice = %+v; want the record of %s, on time, after the 11th sample", tier1, a.ID)
	}
	for _, c := range rep.Notices[1:] {
		if c.Class != tapproof.IndividualCompliance || c.Status != compliance.NoticeOnTime {
			t.Errorf("consumer notice = %+v, want one on time", c)
		}
	}

	// Or, proving that no entry was left out, from the whole log read back
	// and checked against its signed checkpoint: the same figures.
	out, err = runCmd(t, "compliance", "--utility", utility, "--period", period, "--log", in.api,
		"--log-key", logInfo(t, in.api, utility).VerifierKey, "--lab-key", lab+"="+b64(labPub), "--json")
	if err != nil {
		t.Fatalf("tapproof compliance --log: %v\n%s", err, out)
	}
	var whole compliance.Report
	if err := json.Unmarshal([]byte(out), &whole); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(whole.Checkpoint, logInfo(t, in.api, utility).Origin+"\n"+fmt.Sprint(want)+"\n") {
		t.Errorf("report read from the whole log: checkpoint %q, want the log's at size %d", whole.Checkpoint, want)
	}
	whole.Checkpoint = ""
	if diff := cmp.Diff(rep, whole); diff != "" {
		t.Errorf("report from the whole log differs from the one from the compliance leaves (-leaves +log):\n%s", diff)
	}
	// A wrong log key is refused before any figure is computed.
	_, otherKey := newTestLogKey(t)
	if out, err := runCmd(t, "compliance", "--utility", utility, "--period", period, "--log", in.api,
		"--log-key", otherKey, "--lab-key", lab+"="+b64(labPub)); err == nil {
		t.Errorf("tapproof compliance --log with another log's key succeeded:\n%s", out)
	}
}

// newTestLogKey returns a fresh note signer key and its verifier key.
func newTestLogKey(t *testing.T) (string, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "tapproof.local/log/flint")
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}
