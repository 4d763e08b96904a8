package compliance_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof/compliance"
)

// TestReplayedSampleCountsOnce: copies of a lab's signed sample written
// into the journal again by someone who can write it (tapproof appends a
// sample once) neither lower the percentile nor make the period
// uncomputable: the first counts, the copies are listed as replays.
func TestReplayedSampleCountsOnce(t *testing.T) {
	ss := samples(30, 30, 30, 30, 30, 30, 30, 30, 30, 1)
	low := ss[9]
	var want []compliance.Replay
	for i := range uint64(10) {
		c := low
		c.Index = 10 + i
		ss = append(ss, c)
		want = append(want, compliance.Replay{Index: c.Index, Of: low.Index, Sample: low.Key()})
	}
	rep, err := compliance.Compute(leadParams, ss, nil)
	if err != nil {
		t.Fatalf("Compute with replayed copies of a sample: %v", err)
	}
	if rep.N != 10 || rep.P90 != 30 || !rep.Exceedance {
		t.Errorf("Compute with ten copies of the 1 ppb sample = n %d, p90 %g, exceedance %t; want 10, 30, true", rep.N, rep.P90, rep.Exceedance)
	}
	if diff := cmp.Diff(want, rep.Replays); diff != "" {
		t.Errorf("Replays (-want +got):\n%s", diff)
	}
}
