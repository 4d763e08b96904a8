package simulate

import (
	"testing"
	"time"

	"github.com/tapproof/tapproof"
)

// TestFleetSaysWhatItsKindsPermit: every reading a simulated sensor makes,
// a lead spike's included, is one ingest accepts from its device's kind, so
// the demo and the benchmark publish nothing rejected as not_permitted.
func TestFleetSaysWhatItsKindsPermit(t *testing.T) {
	f, err := NewFleet(FleetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	spikes := []Spike{{Utility: "utility-1", Site: "site-1", For: time.Hour, PPB: 24}}
	kinds := map[tapproof.Method]int{}
	for _, s := range f.Sensors {
		kinds[s.Device.Kind]++
		for _, r := range s.next(now, time.Second, spikes) {
			if _, err := r.Normalize(now, 0); err != nil {
				t.Errorf("%s's %s reading: %v", s.Device.ID, r.Analyte, err)
			}
			if err := r.PermittedFor(s.Device.Kind); err != nil {
				t.Errorf("%s reading of %s, enrolled as %s: PermittedFor = %v, want nil", r.Analyte, s.Device.ID, s.Device.Kind, err)
			}
		}
	}
	if kinds[tapproof.ASV] == 0 || kinds[tapproof.NIRS] == 0 || len(kinds) != 2 {
		t.Errorf("fleet kinds = %v, want ASV and NIRS sensors only", kinds)
	}
}
