package compliance_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
)

// inPeriod moves samples into period id, collected on its first day plus a
// week.
func inPeriod(id string, ss []compliance.Sample) []compliance.Sample {
	p, err := tapproof.ParsePeriod(id)
	if err != nil {
		panic(err)
	}
	out := make([]compliance.Sample, len(ss))
	for i, s := range ss {
		s.Period, s.CollectedAt, s.AnalyzedAt = id, p.Start.AddDate(0, 0, 7), p.Start.AddDate(0, 0, 9)
		out[i] = s
	}
	return out
}

// TestComputeRules checks the rule chosen by period and jurisdiction and the
// strict comparison with its action level. Nine samples of 1 µg/L and one
// of the given value: n = 10, rank 9 is the ninth value. With values
// 1 ... 1, x, 40 the 90th percentile is x.
func TestComputeRules(t *testing.T) {
	tenWith := func(x float64) []compliance.Sample {
		return samples(1, 1, 1, 1, 1, 1, 1, 1, x, 40)
	}
	for _, tc := range []struct {
		name         string
		period       string
		jurisdiction tapproof.Jurisdiction
		p90          float64
		rule         string
		level        float64
		exceedance   bool
	}{
		{"exactly 15 is not an exceedance", "2026H2", tapproof.Federal, 15, "us-lead-lcr@v1", 15, false},
		{"15.1 is", "2026H2", tapproof.Federal, 15.1, "us-lead-lcr@v1", 15, true},
		{"12 under the federal rule in 2027", "2027H1", tapproof.Federal, 12, "us-lead-lcr@v1", 15, false},
		{"2027H2 starts before LCRI: 15 ppb", "2027H2", tapproof.Federal, 12, "us-lead-lcr@v1", 15, false},
		{"12 under LCRI from 2028", "2028H1", tapproof.Federal, 12, "us-lead-lcri@v1", 10, true},
		{"exactly 10 under LCRI", "2028H1", tapproof.Federal, 10, "us-lead-lcri@v1", 10, false},
		{"Michigan: exactly 12", "2026H2", "US-MI", 12, "us-mi-lead@v1", 12, false},
		{"Michigan: 12.5", "2026H2", "US-MI", 12.5, "us-mi-lead@v1", 12, true},
		{"Michigan under LCRI: the stricter federal 10", "2028H1", "US-MI", 11, "us-lead-lcri@v1", 10, true},
		{"Ohio has no rule of its own", "2026H2", "US-OH", 14, "us-lead-lcr@v1", 15, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := compliance.Compute(compliance.Params{
				Utility: "flint", Period: tc.period, Rounding: compliance.HalfUp,
				Rules: tapproof.RuleBook{Jurisdictions: map[string]tapproof.Jurisdiction{"flint": tc.jurisdiction}},
			}, inPeriod(tc.period, tenWith(tc.p90)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.P90 != tc.p90 || rep.Rule != tc.rule || rep.ActionLevel != tc.level || rep.Exceedance != tc.exceedance {
				t.Errorf("Compute = p90 %v, %s at %v, exceedance %t; want p90 %v, %s at %v, exceedance %t",
					rep.P90, rep.Rule, rep.ActionLevel, rep.Exceedance, tc.p90, tc.rule, tc.level, tc.exceedance)
			}
		})
	}
}

func TestComputeCopper(t *testing.T) {
	ss := samples(0.2, 0.4, 1.1, 1.3, 1.35)
	for i := range ss {
		ss[i].Analyte, ss[i].Unit = tapproof.Copper, tapproof.MilligramsPerLiter
	}
	lead := sample(9, 300)
	rep, err := compliance.Compute(compliance.Params{Utility: "flint", Period: "2026H2", Analyte: tapproof.Copper, Rounding: compliance.HalfUp},
		append(ss, lead), nil)
	if err != nil {
		t.Fatal(err)
	}
	// n = 5: (1.3 + 1.35) / 2 = 1.325 > 1.3. The lead sample is not counted.
	if rep.N != 5 || rep.P90 != 1.325 || rep.Rule != "us-copper-lcr@v1" || !rep.Exceedance || rep.Unit != tapproof.MilligramsPerLiter {
		t.Errorf("copper Compute = n %d p90 %v %s, %s, exceedance %t; want n 5, p90 1.325 mg/L, us-copper-lcr@v1, true",
			rep.N, rep.P90, rep.Unit, rep.Rule, rep.Exceedance)
	}
}

// flint is ten samples whose 90th percentile, 20 µg/L, exceeds 15; without
// the two highest (leaves 8 and 9) it is 7 (n = 8, rank 7.2 → 7).
func flint() []compliance.Sample { return samples(1, 2, 3, 4, 5, 6, 7, 8, 20, 104) }

var decided = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func invalidating(at uint64, s compliance.Sample, reason string) compliance.Invalidation {
	return compliance.Invalidation{Index: at, Invalidation: tapproof.Invalidation{
		Utility: s.Utility, Lab: s.Lab, SampleID: s.SampleID, SampleIndex: s.Index,
		Reason: reason, Reviewer: "mi-egle-rev1", DecidedAt: decided,
	}}
}

var params = compliance.Params{Utility: "flint", Period: "2026H2", Rounding: compliance.HalfUp}

func TestComputeInvalidations(t *testing.T) {
	ss := flint()
	rep, err := compliance.Compute(params, ss, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.P90 != 20 || !rep.Exceedance {
		t.Fatalf("without invalidations: p90 %v exceedance %t, want 20 and true", rep.P90, rep.Exceedance)
	}

	unknown := invalidating(11, ss[9], "not a residence")
	unknown.Err = errors.New("invalidation at leaf 11: not signed by a known key of reviewer \"mi-egle-rev1\"")
	early := invalidating(5, ss[8], "before the sample")
	wrongTarget := invalidating(13, ss[8], "names leaf 8 but another sample")
	wrongTarget.SampleID = "S7"
	noReason := invalidating(14, ss[8], " ")
	again := invalidating(15, ss[9], "filter on the tap")
	otherPeriod := invalidating(16, ss[9], "about 2026H1")
	otherPeriod.SampleID, otherPeriod.SampleIndex = "S99", 99

	invs := []compliance.Invalidation{
		invalidating(10, ss[9], "filter on the tap"), unknown, early, wrongTarget, noReason, again, otherPeriod,
		invalidating(12, ss[8], "sample site has no lead service line"),
	}
	rep, err = compliance.Compute(params, ss, invs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 8 || rep.P90 != 7 || rep.Exceedance || rep.Ranks[0] != 7 {
		t.Errorf("with two invalidations: n %d p90 %v rank %v exceedance %t; want 8, 7, [7], false", rep.N, rep.P90, rep.Ranks, rep.Exceedance)
	}
	wantExcl := []compliance.Exclusion{
		{SampleIndex: 9, Sample: "acme-labs/S9", Site: "site-9", Value: 104, InvalidationIndex: 10, Reviewer: "mi-egle-rev1", Reason: "filter on the tap", DecidedAt: decided},
		{SampleIndex: 8, Sample: "acme-labs/S8", Site: "site-8", Value: 20, InvalidationIndex: 12, Reviewer: "mi-egle-rev1", Reason: "sample site has no lead service line", DecidedAt: decided},
	}
	if diff := cmp.Diff(wantExcl, rep.Exclusions); diff != "" {
		t.Errorf("Exclusions (-want +got):\n%s", diff)
	}
	type outcome struct {
		Index   uint64
		Applied bool
		Error   string // a fragment
	}
	want := []outcome{
		{5, false, "not after the sample"},
		{10, true, ""},
		{11, false, "not signed by a known key"},
		{12, true, ""},
		{13, false, "the invalidation names acme-labs/S7"},
		{14, false, "must give its reason"},
		{15, false, "already invalidated at leaf 10"},
	}
	var got []outcome
	for _, o := range rep.Invalidations {
		g := outcome{o.Index, o.Applied, o.Error}
		for _, w := range want {
			if w.Index == o.Index && w.Error != "" && strings.Contains(o.Error, w.Error) {
				g.Error = w.Error
			}
		}
		got = append(got, g)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Invalidations (-want +got):\n%s", diff)
	}
	for _, s := range rep.Samples {
		want := compliance.StatusCounted
		if s.Index >= 8 {
			want = compliance.StatusExcluded
		}
		if s.Status != want {
			t.Errorf("sample at leaf %d: status %s, want %s", s.Index, s.Status, want)
		}
	}
	// Invalidated or not, each sample above 15 needs its consumer notice.
	var ix []uint64
	for _, s := range rep.IndividualExceedances {
		ix = append(ix, s.Index)
	}
	if diff := cmp.Diff([]uint64{8, 9}, ix); diff != "" {
		t.Errorf("IndividualExceedances (-want +got):\n%s", diff)
	}
}

// TestComputeUnknownKeyStillCounts is the Flint case: an invalidation the
// state's keys do not vouch for changes nothing.
func TestComputeUnknownKeyStillCounts(t *testing.T) {
	ss := flint()
	a, b := invalidating(10, ss[8], "x"), invalidating(11, ss[9], "y")
	a.Err, b.Err = compliance.ErrUnknownSigner, compliance.ErrUnknownSigner
	rep, err := compliance.Compute(params, ss, []compliance.Invalidation{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 10 || rep.P90 != 20 || !rep.Exceedance || len(rep.Exclusions) != 0 || len(rep.Invalidations) != 2 {
		t.Errorf("Compute = n %d p90 %v exceedance %t, %d exclusions, %d invalidations; want 10, 20, true, 0, 2",
			rep.N, rep.P90, rep.Exceedance, len(rep.Exclusions), len(rep.Invalidations))
	}
}

func TestComputeStatuses(t *testing.T) {
	ss := []compliance.Sample{
		lsl(sample(0, 4), "a", tapproof.FirstLiter), lsl(sample(1, 18), "a", tapproof.FifthLiter), sample(2, 3),
	}
	other := sample(3, 50)
	other.Period, other.CollectedAt = "2026H1", collected.AddDate(0, -3, 0)
	rep, err := compliance.Compute(params, append(ss, other), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]compliance.Status{}
	for _, s := range rep.Samples {
		got[s.Index] = s.Status
	}
	want := map[uint64]compliance.Status{0: compliance.StatusSuperseded, 1: compliance.StatusCounted, 2: compliance.StatusCounted}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	// The superseded first liter is below 15; the counted fifth liter is
	// above it, and the sample of 2026H1 is not in this report.
	if len(rep.IndividualExceedances) != 1 || rep.IndividualExceedances[0].Index != 1 {
		t.Errorf("IndividualExceedances = %v, want the sample at leaf 1", rep.IndividualExceedances)
	}
}

func TestComputeNoSamples(t *testing.T) {
	ss := samples(30)
	rep, err := compliance.Compute(params, ss, []compliance.Invalidation{invalidating(1, ss[0], "wrong site")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 0 || rep.Exceedance || len(rep.Samples) != 1 || len(rep.Exclusions) != 1 || rep.Rounding != compliance.HalfUp {
		t.Errorf("Compute with every sample invalidated = n %d, exceedance %t, %d samples, %d exclusions, rounding %q",
			rep.N, rep.Exceedance, len(rep.Samples), len(rep.Exclusions), rep.Rounding)
	}
}

func TestComputeErrors(t *testing.T) {
	dup := samples(1, 2)
	dup[1].SampleID = dup[0].SampleID
	for _, tc := range []struct {
		name    string
		p       compliance.Params
		samples []compliance.Sample
	}{
		{"no rounding", compliance.Params{Utility: "flint", Period: "2026H2"}, nil},
		{"bad period", compliance.Params{Utility: "flint", Period: "H2", Rounding: compliance.Up}, nil},
		{"bad utility", compliance.Params{Utility: "Flint", Period: "2026H2", Rounding: compliance.Up}, nil},
		{"iron", compliance.Params{Utility: "flint", Period: "2026H2", Rounding: compliance.Up, Analyte: tapproof.Iron}, nil},
		{"no rule", compliance.Params{Utility: "flint", Period: "2026H2", Rounding: compliance.Up, Rules: tapproof.RuleBook{Rules: []tapproof.Rule{}}}, nil},
		{"a sample twice", params, dup},
	} {
		if _, err := compliance.Compute(tc.p, tc.samples, nil); err == nil {
			t.Errorf("%s: Compute = nil error", tc.name)
		}
	}
}

func TestIndividualExceedances(t *testing.T) {
	rule, _ := tapproof.RuleFor(tapproof.DefaultRules, tapproof.Lead, tapproof.Federal, collected)
	ss := []compliance.Sample{sample(0, 15), sample(1, 15.1), bdl(sample(2, 0), 20), sample(3, 200)}
	var got []uint64
	for _, s := range compliance.IndividualExceedances(ss, rule) {
		got = append(got, s.Index)
	}
	if diff := cmp.Diff([]uint64{1, 3}, got); diff != "" {
		t.Errorf("IndividualExceedances (-want +got):\n%s", diff)
	}
}
