package monitor_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/monitor"
)

// leadAt is a lead sample of lab p at site, v µg/L, collected on 3 August
// 2026.
func (p *party) leadAt(t *testing.T, sampleID, site string, v float64) []byte {
	t.Helper()
	at := time.Date(2026, 8, 3, 8, 0, 0, 0, time.UTC)
	b, err := json.Marshal(tapproof.LabSample{Lab: p.id, SampleID: sampleID, Utility: utility, Site: site, Tier: 1, Liter: tapproof.FirstLiter,
		Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1, CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour), Period: "2026H2"})
	if err != nil {
		t.Fatal(err)
	}
	return signWith(t, p.key, tapproof.LabSamplePayloadType, b)
}

func undetermined(fs []monitor.Finding) []monitor.Finding {
	var out []monitor.Finding
	for _, f := range fs {
		if f.Kind == monitor.KindUndetermined {
			out = append(out, f)
		}
	}
	return out
}

// The monitor recomputes the periods new lab samples touch: a re-draw
// whose reductions disagree is a compliance_undetermined finding naming
// the leaf it began at and the samples a reviewer must resolve, once; the
// reviewer's invalidation decides it again.
func TestMonitorUndeterminedPeriod(t *testing.T) {
	lab, reviewer := newParty(t, "acme-labs"), newParty(t, "mi-egle")
	e := newEnv(t)
	e.cfg.Keys = keysOf([]*party{lab}, []*party{reviewer})
	for i := range 8 {
		e.log.add(lab.leadAt(t, fmt.Sprintf("S%d", i), fmt.Sprintf("site-%d", i), 5))
	}
	e.log.add(lab.leadAt(t, "S8", "site-8", 20), lab.leadAt(t, "S8-redraw", "site-8", 5), lab.leadAt(t, "S9", "site-9", 20))

	fs := undetermined(e.once().Findings)
	if len(fs) != 1 {
		t.Fatalf("undetermined findings = %+v, want one", fs)
	}
	f := fs[0]
	for _, want := range []string{"2026H2, lead: undetermined from leaf 10 on", "5 to 20 ug/L", "site site-8", "leaves 8, 9"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("finding %q lacks %q", f.Message, want)
		}
	}
	if f.Leaf == nil || *f.Leaf != 10 || f.LeafType != "lab_sample" || f.Evidence == "" {
		t.Errorf("finding = %+v, want leaf 10, a lab sample, with its evidence", f)
	}
	if got := e.metric("tapproof_monitor_findings_total", map[string]string{"log": utility, "kind": string(monitor.KindUndetermined)}); got != 1 {
		t.Errorf("compliance_undetermined findings counted = %v, want 1", got)
	}

	// Resolved by the reviewer: nothing more to report.
	e.log.add(reviewer.invalidation(t, lab.id, "S8-redraw", 9))
	res := e.once()
	if fs := undetermined(res.Findings); len(fs) != 0 || res.Size != 12 {
		t.Errorf("after the invalidation: undetermined findings %+v, size %d; want none, 12", fs, res.Size)
	}

	// A monitor reading the whole log at once reports the stretch, ended.
	e2 := newEnv(t)
	e2.cfg.Keys = e.cfg.Keys
	e2.log.add(e.log.snapshot()...)
	fs = undetermined(e2.once().Findings)
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "undetermined from leaf 10 to leaf 11, which decided it as exceeded") {
		t.Errorf("undetermined findings of the whole log = %+v, want the stretch from leaf 10 to 11", fs)
	}
}
