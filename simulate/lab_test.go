package simulate_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/simulate"
)

func TestLabKeepsItsKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.json")
	lab, err := simulate.LoadOrCreateLab(path, "demo-lab")
	if err != nil {
		t.Fatal(err)
	}
	again, err := simulate.LoadOrCreateLab(path, "other-id")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != "demo-lab" || !again.Key.Equal(lab.Key) || again.PublicKey() != lab.PublicKey() {
		t.Errorf("reloaded lab = %s %s, want demo-lab %s", again.ID, again.PublicKey(), lab.PublicKey())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lab file mode = %v, %v; want 0600: it holds a private key", fi.Mode(), err)
	}
	if _, err := simulate.LoadOrCreateLab(filepath.Join(t.TempDir(), "x.json"), "Not An ID"); err == nil {
		t.Error("LoadOrCreateLab accepted an invalid lab id")
	}
}

func TestPreviousHalf(t *testing.T) {
	for day, want := range map[string]string{"2026-11-25": "2026H1", "2026-07-01": "2026H1", "2026-06-30": "2025H2", "2027-01-01": "2026H2"} {
		at, _ := time.Parse(time.DateOnly, day)
		if got := simulate.PreviousHalf(at).ID; got != want {
			t.Errorf("PreviousHalf(%s) = %s, want %s", day, got, want)
		}
	}
}

// TestExceedingRound: the demo's round is valid, in its period, and exceeds
// the action level as its comment says.
func TestExceedingRound(t *testing.T) {
	lab, err := simulate.LoadOrCreateLab(filepath.Join(t.TempDir(), "lab.json"), "demo-lab")
	if err != nil {
		t.Fatal(err)
	}
	period := simulate.PreviousHalf(time.Now())
	var samples []compliance.Sample
	for i, s := range lab.Round("utility-1", period, simulate.ExceedingRound) {
		n, err := s.Normalize()
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if s.CollectedAt.Before(period.Start) || !s.AnalyzedAt.Before(period.End) {
			t.Errorf("sample %s collected %v, analysed %v: outside %s", s.SampleID, s.CollectedAt, s.AnalyzedAt, period.ID)
		}
		samples = append(samples, compliance.Sample{Index: uint64(i), LabSample: n})
	}
	rep, err := compliance.Compute(compliance.Params{Utility: "utility-1", Period: period.ID, Rounding: compliance.HalfUp}, samples, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 20 || rep.P90 != 17 || !rep.Exceedance || len(rep.IndividualExceedances) != 3 || rep.Analyte != tapproof.Lead {
		t.Errorf("round = n %d, p90 %v, exceedance %t, %d individual; want 20, 17, true, 3", rep.N, rep.P90, rep.Exceedance, len(rep.IndividualExceedances))
	}
}
