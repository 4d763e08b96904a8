package monitor_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/monitor"
)

// TestMonitorSetAside: every set-aside record in the log is a finding with
// its evidence: an unsealed entry (one tapproof did not write) a
// foreign_entry, a sealed one that did not decode an undecodable_entry,
// each naming its leaf, the record's reason and the SHA-256 of the entry,
// with the record saved. Neither stops the state.
func TestMonitorSetAside(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	forged, garbled := []byte(`{"device":"pb-1","value":0}`), []byte("\x00garbled")
	e.log.add(a.enrollment(t), a.reading(t, 1, nil),
		tapproof.SetAsideLeaf(2, tapproof.SetAsideUnsealed, forged),
		a.reading(t, 2, nil),
		tapproof.SetAsideLeaf(4, tapproof.SetAsideUndecodable, garbled),
		a.reading(t, 3, nil))
	res := e.once()

	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	type got struct {
		Kind     monitor.Kind
		Leaf     uint64
		LeafType string
		Reason   string
		SHA256   string
	}
	var gots []got
	for _, f := range res.Findings {
		gots = append(gots, got{f.Kind, *f.Leaf, f.LeafType, f.SetAsideReason, f.EntrySHA256})
	}
	want := []got{
		{monitor.KindForeignEntry, 2, "set_aside", tapproof.SetAsideUnsealed, sum(forged)},
		{monitor.KindUndecodableEntry, 4, "set_aside", tapproof.SetAsideUndecodable, sum(garbled)},
	}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Fatalf("findings (-want +got):\n%s", diff)
	}
	if res.Blocked || res.Size != 6 || res.Err != nil {
		t.Errorf("pass = %+v, want the state advanced to 6", res)
	}
	f := res.Findings[0]
	if !strings.Contains(f.Message, "tapproof did not write it") || !strings.Contains(f.Message, sum(forged)) {
		t.Errorf("foreign_entry message = %q", f.Message)
	}

	// The evidence: finding.json with the reason and digest, and the record.
	var saved monitor.Finding
	must(t, json.Unmarshal(readFile(t, filepath.Join(f.Evidence, "finding.json")), &saved))
	if saved.SetAsideReason != tapproof.SetAsideUnsealed || saved.EntrySHA256 != sum(forged) || saved.Leaf == nil || *saved.Leaf != 2 {
		t.Errorf("finding.json = %+v", saved)
	}
	if leaf := readFile(t, filepath.Join(f.Evidence, "leaf-2.bin")); !bytes.Equal(leaf, tapproof.SetAsideLeaf(2, tapproof.SetAsideUnsealed, forged)) {
		t.Errorf("leaf-2.bin = %s, want the set-aside record", leaf)
	}
	for kind, want := range map[monitor.Kind]float64{monitor.KindForeignEntry: 1, monitor.KindUndecodableEntry: 1} {
		if got := e.metric("tapproof_monitor_findings_total", map[string]string{"log": utility, "kind": string(kind)}); got != want {
			t.Errorf("%s findings counted = %v, want %v", kind, got, want)
		}
	}
	if got := e.metric("tapproof_monitor_set_aside_leaves_total", map[string]string{"log": utility}); got != 2 {
		t.Errorf("set-aside leaves counted = %v, want 2", got)
	}
}
