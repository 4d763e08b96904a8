package monitor_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/monitor"
)

// kindSensor is a sensor enrolled as kind.
func kindSensor(t *testing.T, id string, kind tapproof.Method) *sensor {
	t.Helper()
	s := newSensor(t, id)
	s.kind = kind
	return s
}

// says is s's next reading of analyte by method, signed by s.
func (s *sensor) says(t *testing.T, method tapproof.Method, analyte tapproof.Analyte, unit tapproof.Unit) []byte {
	t.Helper()
	r := s.readingOf(1)
	r.Method, r.Analyte, r.Unit = method, analyte, unit
	if method == tapproof.NIRS {
		r.Model = "surrogate-v3"
	}
	return signWith(t, s.key, tapproof.ReadingPayloadType, jsonOf(t, r))
}

// byLeaf maps the findings with a leaf to their kind.
func byLeaf(fs []monitor.Finding) map[uint64]monitor.Kind {
	got := map[uint64]monitor.Kind{}
	for _, f := range fs {
		if f.Leaf != nil {
			got[*f.Leaf] = f.Kind
		}
	}
	return got
}

// TestMonitorNotPermitted: a reading its device's enrolled kind does not
// permit (a NIRS device's lead, an ASV device's reading claiming another
// method, any reading by method lab) is a not_permitted finding naming the
// device's enrollment, once its signature verifies; a device enrolled as
// kind lab is one too, and stays enrolled; what the kind permits is no
// finding.
func TestMonitorNotPermitted(t *testing.T) {
	e := newEnv(t)
	asv, nirs, lab := kindSensor(t, "pb-1", tapproof.ASV), kindSensor(t, "nir-1", tapproof.NIRS), kindSensor(t, "lab-1", tapproof.Lab)
	forgedLead := nirs.readingOf(1)
	forgedLead.Method, forgedLead.Model = tapproof.NIRS, "surrogate-v3"
	e.log.add(asv.enrollment(t), nirs.enrollment(t), lab.enrollment(t),
		asv.says(t, tapproof.ASV, tapproof.Lead, tapproof.MicrogramsPerLiter),          // 3
		asv.says(t, tapproof.Fluorescence, tapproof.Lead, tapproof.MicrogramsPerLiter), // 4
		nirs.says(t, tapproof.NIRS, tapproof.Turbidity, tapproof.NTU),                  // 5
		nirs.says(t, tapproof.NIRS, tapproof.Lead, tapproof.MicrogramsPerLiter),        // 6
		signWith(t, asv.key, tapproof.ReadingPayloadType, jsonOf(t, forgedLead)),       // 7: not nir-1's signature
		lab.says(t, tapproof.Lab, tapproof.Lead, tapproof.MicrogramsPerLiter),          // 8
		lab.says(t, tapproof.ASV, tapproof.Lead, tapproof.MicrogramsPerLiter),          // 9
	)
	res := e.once()
	want := map[uint64]monitor.Kind{
		2: monitor.KindNotPermitted, 4: monitor.KindNotPermitted, 6: monitor.KindNotPermitted,
		7: monitor.KindBadSignature, 8: monitor.KindNotPermitted, 9: monitor.KindNotPermitted,
	}
	if diff := cmp.Diff(want, byLeaf(res.Findings)); diff != "" {
		t.Errorf("findings by leaf (-want +got):\n%s", diff)
	}
	if res.Blocked || res.Size != 10 {
		t.Errorf("pass = %+v, want the state advanced to 10", res)
	}
	for _, f := range res.Findings {
		if *f.Leaf != 6 {
			continue
		}
		if f.Signer != "nir-1" || f.LeafType != "reading" || f.Enrollment == nil || *f.Enrollment != 1 ||
			!strings.Contains(f.Message, "enrolled at leaf 1 as NIRS") || !strings.Contains(f.Message, "does not report lead") || f.Evidence == "" {
			t.Errorf("finding on the NIRS lead reading = %+v", f)
		}
	}
	if got := e.metric("tapproof_monitor_findings_total", map[string]string{"log": utility, "kind": "not_permitted"}); got != 5 {
		t.Errorf("not_permitted findings counted = %v, want 5", got)
	}
	st, err := monitor.ReadState(e.dir, utility, e.log.verifier)
	must(t, err)
	gotKinds := map[string]tapproof.Method{}
	for id, d := range st.Devices {
		gotKinds[id] = d.Kind
	}
	if diff := cmp.Diff(map[string]tapproof.Method{"pb-1": tapproof.ASV, "nir-1": tapproof.NIRS, "lab-1": tapproof.Lab}, gotKinds); diff != "" {
		t.Errorf("stored devices' kinds (-want +got):\n%s", diff)
	}
}

// asVersion1 rewrites the stored state of e's log as a monitor of state
// version 1 left it: no device has a kind.
func asVersion1(t *testing.T, e *env) {
	t.Helper()
	path := filepath.Join(e.dir, "logs", utility+".json")
	var st map[string]any
	must(t, json.Unmarshal(readFile(t, path), &st))
	st["version"] = 1
	for _, d := range st["devices"].(map[string]any) {
		delete(d.(map[string]any), "kind")
	}
	b, err := json.Marshal(st)
	must(t, err)
	must(t, os.WriteFile(path, b, 0o600))
}

// TestMonitorUpgradesState: a state of version 1, which knows no device's
// kind, is upgraded by reading the log up to its checkpoint again: the
// findings version 1 did not make (not_permitted, foreign_entry) are
// reported for the leaves it had passed, the others not again, and the
// devices' kinds are kept for the leaves to come. Leaves that no longer
// hash to the stored checkpoint are an inconsistent_leaves finding, and
// the state stays.
func TestMonitorUpgradesState(t *testing.T) {
	e := newEnv(t)
	asv, nirs := kindSensor(t, "pb-1", tapproof.ASV), kindSensor(t, "nir-1", tapproof.NIRS)
	e.log.add(asv.enrollment(t), nirs.enrollment(t),
		nirs.says(t, tapproof.NIRS, tapproof.Lead, tapproof.MicrogramsPerLiter), // 2
		[]byte("not json"), // 3
		tapproof.SetAsideLeaf(4, tapproof.SetAsideUnsealed, []byte("forged")))
	first := map[uint64]monitor.Kind{2: monitor.KindNotPermitted, 3: monitor.KindBadLeaf, 4: monitor.KindForeignEntry}
	if diff := cmp.Diff(first, byLeaf(e.once().Findings)); diff != "" {
		t.Fatalf("first pass (-want +got):\n%s", diff)
	}

	asVersion1(t, e)
	res := e.once()
	if diff := cmp.Diff(map[uint64]monitor.Kind{2: monitor.KindNotPermitted, 4: monitor.KindForeignEntry}, byLeaf(res.Findings)); diff != "" {
		t.Errorf("pass over a state of version 1 (-want +got):\n%s", diff)
	}
	if res.Err != nil || res.Blocked || res.Size != 5 || res.Checked != 0 {
		t.Errorf("pass over a state of version 1 = %+v, want size 5, nothing new", res)
	}
	st, err := monitor.ReadState(e.dir, utility, e.log.verifier)
	must(t, err)
	if st.Version != monitor.StateVersion || st.Devices["nir-1"].Kind != tapproof.NIRS || st.Devices["pb-1"].Kind != tapproof.ASV {
		t.Errorf("upgraded state: version %d, devices %+v", st.Version, st.Devices)
	}
	if res := e.once(); len(res.Findings) != 0 {
		t.Errorf("pass after the upgrade = %+v, want no finding", res)
	}
	e.log.add(nirs.says(t, tapproof.NIRS, tapproof.Lead, tapproof.MicrogramsPerLiter))
	if diff := cmp.Diff(map[uint64]monitor.Kind{5: monitor.KindNotPermitted}, byLeaf(e.once().Findings)); diff != "" {
		t.Errorf("a new leaf after the upgrade (-want +got):\n%s", diff)
	}

	// The server now serves another leaf 0 than its checkpoints commit to.
	asVersion1(t, e)
	other := asv.reading(t, 1, nil)
	e.log.set(func(l *testLog) {
		l.tamper = func(i uint64, b []byte) []byte {
			if i == 0 {
				return other
			}
			return b
		}
	})
	res = e.once()
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindInconsistentLeaves}) || !res.Blocked || res.Size != 6 {
		t.Errorf("upgrade over changed leaves = %+v, want one inconsistent_leaves finding, the state kept", res)
	}
	var raw struct{ Version int }
	must(t, json.Unmarshal(readFile(t, filepath.Join(e.dir, "logs", utility+".json")), &raw))
	if raw.Version != 1 {
		t.Errorf("stored state version = %d after a failed upgrade, want 1", raw.Version)
	}
}
