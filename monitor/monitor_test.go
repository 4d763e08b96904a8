package monitor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/monitor"
	"github.com/tapproof/tapproof/witness"
)

// cleanLeaves is a log with one of every kind of entry the platform writes
// in the normal course: enrollments, readings, a lab sample and its
// invalidation, a notice record and a revocation. (A set-aside record is
// a finding: TestMonitorSetAside.)
func cleanLeaves(t *testing.T, a, b *sensor, lab, reviewer *party) [][]byte {
	t.Helper()
	ls := [][]byte{a.enrollment(t), b.enrollment(t)}
	for i := range 40 {
		ls = append(ls, []*sensor{a, b}[i%2].reading(t, float64(i%9), nil))
	}
	sampleAt := uint64(len(ls))
	ls = append(ls, lab.labSample(t, "L-1", nil), reviewer.invalidation(t, lab.id, "L-1", sampleAt),
		notice(t, "screening-pb-1-3"), b.revocation(t))
	return append(ls, a.reading(t, 2, nil))
}

// TestMonitorCleanLog: every kind of entry, well formed and signed, is no
// finding; the state advances to the checkpoint, with the devices, the
// counts and the frontier of the tree, and the next pass checks only the
// new leaves.
func TestMonitorCleanLog(t *testing.T) {
	e := newEnv(t)
	a, b := newSensor(t, "pb-1"), newSensor(t, "pb-2")
	lab, reviewer := newParty(t, "acme-labs"), newParty(t, "mi-egle")
	e.cfg.Keys = keysOf([]*party{lab}, []*party{reviewer})
	e.cfg.PageSize = 7 // several pages, fetched concurrently
	e.log.add(cleanLeaves(t, a, b, lab, reviewer)...)
	n := uint64(len(e.log.snapshot()))

	res := e.once()
	if len(res.Findings) != 0 || res.Err != nil || res.Blocked || res.Stale {
		t.Fatalf("first pass over a clean log = %+v", res)
	}
	if res.Size != n || res.Checked != n {
		t.Errorf("first pass: size %d, checked %d; want %d and %d", res.Size, res.Checked, n, n)
	}
	st, err := monitor.ReadState(e.dir, utility, e.log.verifier)
	if err != nil || st == nil {
		t.Fatalf("ReadState = %v, %v", st, err)
	}
	if st.Size != n || st.Counts != (monitor.Counts{Readings: 41, Enrollments: 2, Revocations: 1, LabSamples: 1, Invalidations: 1, Notices: 1}) {
		t.Errorf("stored state: size %d, counts %+v", st.Size, st.Counts)
	}
	if d := st.Devices["pb-2"]; !d.Key.Equal(b.pub()) || d.Kind != tapproof.ASV || d.Enrolled != 1 || d.Revoked == nil || *d.Revoked != n-2 {
		t.Errorf("stored device pb-2 = %+v, want its key, kind ASV, enrolled at 1, revoked at %d", d, n-2)
	}
	if len(e.findings()) != 0 {
		t.Errorf("evidence saved for a clean log: %v", e.findings())
	}
	if got := e.metric("tapproof_monitor_verified_size_leaves", map[string]string{"log": utility}); got != float64(n) {
		t.Errorf("verified size metric = %v, want %d", got, n)
	}
	if got := e.metric("tapproof_monitor_leaves_checked_total", map[string]string{"log": utility}); got != float64(n) {
		t.Errorf("leaves checked metric = %v, want %d", got, n)
	}
	if got := e.metric("tapproof_monitor_last_success_timestamp_seconds", map[string]string{"log": utility}); got == 0 {
		t.Error("no last success timestamp")
	}

	// More readings, from the devices the first pass learnt.
	e.log.add(a.reading(t, 1, nil), a.reading(t, 2, nil), a.reading(t, 3, nil))
	_, before := e.log.counts()
	res = e.once()
	_, after := e.log.counts()
	if len(res.Findings) != 0 || res.Err != nil || res.Size != n+3 || res.Checked != 3 {
		t.Errorf("second pass = %+v, want 3 more leaves checked, no finding", res)
	}
	if after-before != 3 {
		t.Errorf("the second pass read %d leaves, want the 3 new ones", after-before)
	}

	// Nothing new: the state stays, nothing is read.
	res = e.once()
	if len(res.Findings) != 0 || res.Err != nil || res.Checked != 0 || res.Size != n+3 {
		t.Errorf("pass over an unchanged log = %+v", res)
	}
}

// TestMonitorFork: the server rebuilds its log with the same key without
// two inconvenient leaves, and serves the second history, grown past the
// checkpoint stored. The consistency proof it gives cannot verify: a fork,
// with both checkpoints and the proof saved as evidence, and the state
// stays at the checkpoint it had, reported again on every poll.
func TestMonitorFork(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t))
	for i := range 30 {
		e.log.add(a.reading(t, float64(i), nil))
	}
	if res := e.once(); len(res.Findings) != 0 || res.Size != 31 {
		t.Fatalf("first pass = %+v", res)
	}
	stored, err := monitor.ReadState(e.dir, utility, e.log.verifier)
	must(t, err)

	// Readings 12 and 13 (24 and 25 ppb) go; the log grows on.
	history := e.log.snapshot()
	history = slices.Delete(history, 12, 14)
	for range 5 {
		history = append(history, a.reading(t, 1, nil))
	}
	e.log.rebuild(history)

	res := e.once()
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindFork}) || !res.Blocked {
		t.Fatalf("pass over the second history = %+v, want one fork", res)
	}
	f := res.Findings[0]
	if f.StoredSize != 31 || f.NewSize != 34 || !strings.Contains(f.Message, "consistency proof from 31 to 34") {
		t.Errorf("fork finding = %+v", f)
	}
	if res.Size != 31 {
		t.Errorf("state advanced to %d on a fork", res.Size)
	}
	dirs := e.findings()
	if len(dirs) != 1 || !strings.HasSuffix(dirs[0], "-"+utility+"-fork") {
		t.Fatalf("evidence = %v, want one <time>-%s-fork directory", dirs, utility)
	}
	dir := dirs[0]
	if got := readFile(t, filepath.Join(dir, "stored-checkpoint.txt")); string(got) != stored.Checkpoint {
		t.Errorf("stored-checkpoint.txt = %q, want the checkpoint stored", got)
	}
	if cp, err := anchor.OpenCheckpoint(readFile(t, filepath.Join(dir, "new-checkpoint.txt")), e.log.verifier); err != nil || cp.Size != 34 {
		t.Errorf("new-checkpoint.txt = %+v, %v: want the second history's checkpoint, signed by the log key", cp, err)
	}
	var p struct {
		From, To uint64
		Hashes   [][]byte
	}
	must(t, json.Unmarshal(readFile(t, filepath.Join(dir, "consistency-proof.json")), &p))
	newRoot := e.log.tree.Hash()
	if p.From != 31 || p.To != 34 || proof.VerifyConsistency(rfc6962.DefaultHasher, 31, 34, p.Hashes, stored.Root, newRoot) == nil {
		t.Errorf("consistency-proof.json = %+v: want the proof from 31 to 34, which does not verify", p)
	}
	var saved monitor.Finding
	must(t, json.Unmarshal(readFile(t, filepath.Join(dir, "finding.json")), &saved))
	if saved.Kind != monitor.KindFork || saved.Evidence != dir || !slices.Contains(saved.Files, "consistency-proof.json") {
		t.Errorf("finding.json = %+v", saved)
	}
	if st, _ := monitor.ReadState(e.dir, utility, e.log.verifier); st.Size != 31 || st.Checkpoint != stored.Checkpoint {
		t.Errorf("stored state moved on a fork: size %d", st.Size)
	}

	// Reported on every poll, saved once.
	m := e.open()
	for range 2 {
		res := m.Once(context.Background())
		if got := kinds(res.Logs[0].Findings); !slices.Equal(got, []monitor.Kind{monitor.KindFork}) {
			t.Errorf("later pass = %v, want the fork again", got)
		}
	}
	if got := e.metric("tapproof_monitor_findings_total", map[string]string{"log": utility, "kind": "fork"}); got != 2 {
		t.Errorf("fork findings counted = %v, want 2", got)
	}
	if n := len(e.findings()); n != 2 {
		t.Errorf("%d evidence directories, want 2: one per monitor run, not per poll", n)
	}
	m.Close()

	// The same-size variant: two other leaves in place of the two dropped.
	e2 := newEnv(t)
	e2.log.add(history[:31]...) // a history of 31 leaves
	if res := e2.once(); len(res.Findings) != 0 {
		t.Fatalf("first pass = %+v", res)
	}
	other := slices.Clone(history[:29])
	other = append(other, a.reading(t, 1, nil), a.reading(t, 1, nil))
	e2.log.rebuild(other)
	if res := e2.once(); !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindFork}) || !strings.Contains(res.Findings[0].Message, "two trees of 31 leaves") {
		t.Errorf("same size, other root = %+v, want a fork", res.Findings)
	}
}

// TestMonitorRollback: a checkpoint smaller than the one stored is a
// rollback, and the state stays.
func TestMonitorRollback(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t), a.reading(t, 1, nil), a.reading(t, 2, nil), a.reading(t, 3, nil))
	if res := e.once(); len(res.Findings) != 0 || res.Size != 4 {
		t.Fatalf("first pass = %+v", res)
	}
	e.log.rebuild(e.log.snapshot()[:2])
	res := e.once()
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindRollback}) || !res.Blocked || res.Size != 4 {
		t.Fatalf("pass over a rolled back log = %+v", res)
	}
	if f := res.Findings[0]; f.StoredSize != 4 || f.NewSize != 2 || !slices.Equal(f.Files, []string{"finding.json", "stored-checkpoint.txt", "new-checkpoint.txt"}) {
		t.Errorf("rollback finding = %+v", f)
	}
}

// TestMonitorUnattributable: readings no enrolled key accounts for, from a
// device never enrolled, one enrolled only after the reading and one
// revoked before it, are each a finding with the leaf saved; they do not
// stop the state.
func TestMonitorUnattributable(t *testing.T) {
	e := newEnv(t)
	a, stranger, late := newSensor(t, "pb-1"), newSensor(t, "pb-9"), newSensor(t, "pb-5")
	e.log.add(a.enrollment(t), a.reading(t, 1, nil))
	forged := stranger.reading(t, 1, nil)
	e.log.add(forged)                                      // 2
	e.log.add(late.reading(t, 1, nil), late.enrollment(t)) // 3, 4
	e.log.add(late.reading(t, 1, nil), a.revocation(t))    // 5, 6
	e.log.add(a.reading(t, 1, nil))                        // 7
	res := e.once()
	got := map[uint64]monitor.Kind{}
	for _, f := range res.Findings {
		got[*f.Leaf] = f.Kind
	}
	want := map[uint64]monitor.Kind{2: monitor.KindUnattributable, 3: monitor.KindUnattributable, 7: monitor.KindUnattributable}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("findings by leaf (-want +got):\n%s", diff)
	}
	if res.Size != 8 || res.Blocked {
		t.Errorf("the state did not advance past leaf findings: %+v", res)
	}
	for _, f := range res.Findings {
		if *f.Leaf == 2 {
			if f.Signer != "pb-9" || f.LeafType != "reading" || !strings.Contains(f.Message, "no earlier leaf of the log enrolls") {
				t.Errorf("finding on leaf 2 = %+v", f)
			}
			if b := readFile(t, filepath.Join(f.Evidence, "leaf-2.bin")); !bytes.Equal(b, forged) {
				t.Errorf("leaf-2.bin is not the leaf")
			}
			if !bytes.Equal(readFile(t, filepath.Join(f.Evidence, "new-checkpoint.txt")), e.log.served[len(e.log.served)-1]) {
				t.Errorf("new-checkpoint.txt is not the checkpoint that covers the leaf")
			}
		}
		if *f.Leaf == 7 && (!strings.Contains(f.Message, "revoked at leaf 6") || f.Enrollment == nil || *f.Enrollment != 0) {
			t.Errorf("finding on leaf 7 = %+v, want revoked at leaf 6, enrolled at 0", f)
		}
	}
	if got := e.metric("tapproof_monitor_findings_total", map[string]string{"log": utility, "kind": "unattributable_leaf"}); got != 3 {
		t.Errorf("unattributable findings counted = %v, want 3", got)
	}
}

// TestMonitorBadSignature: a reading of an enrolled device signed with
// another key, an enrollment not signed by the key it enrolls, and a lab
// sample not signed by its lab's key are bad_signature findings; a lab
// nobody gave a key for is unattributable; without any lab key, samples
// are unchecked, not findings.
func TestMonitorBadSignature(t *testing.T) {
	e := newEnv(t)
	a, b, c := newSensor(t, "pb-1"), newSensor(t, "pb-2"), newSensor(t, "pb-3")
	lab, other := newParty(t, "acme-labs"), newParty(t, "shady-labs")
	e.cfg.Keys = keysOf([]*party{lab}, nil)
	badEnrollment := b.enrollment(t)
	// pb-2's enrollment re-signed by another key.
	{
		var en tapproof.Enrollment
		must(t, json.Unmarshal(payloadOf(t, badEnrollment), &en))
		raw, _ := json.Marshal(en)
		badEnrollment = signWith(t, c.key, tapproof.EnrollmentPayloadType, raw)
	}
	e.log.add(a.enrollment(t), a.reading(t, 1, nil), a.reading(t, 2, c.key), badEnrollment, b.reading(t, 1, nil),
		lab.labSample(t, "L-1", nil), lab.labSample(t, "L-2", other.key), other.labSample(t, "S-1", nil))
	res := e.once()
	got := map[uint64]monitor.Kind{}
	for _, f := range res.Findings {
		got[*f.Leaf] = f.Kind
	}
	want := map[uint64]monitor.Kind{
		2: monitor.KindBadSignature,   // a reading signed with another key
		3: monitor.KindBadSignature,   // an enrollment not self-signed
		4: monitor.KindUnattributable, // so pb-2 is not enrolled
		6: monitor.KindBadSignature,   // a sample not signed by its lab
		7: monitor.KindUnattributable, // a lab with no key
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("findings by leaf (-want +got):\n%s", diff)
	}
	for _, f := range res.Findings {
		if *f.Leaf == 2 && (f.Enrollment == nil || *f.Enrollment != 0 || f.Signer != "pb-1") {
			t.Errorf("bad signature finding on leaf 2 = %+v, want device pb-1 enrolled at leaf 0", f)
		}
	}
	if res.Size != 8 {
		t.Errorf("state at %d, want 8", res.Size)
	}

	// No lab keys at all: the samples are counted as unchecked.
	e2 := newEnv(t)
	e2.log.add(lab.labSample(t, "L-1", nil), lab.labSample(t, "L-2", other.key))
	res = e2.once()
	if len(res.Findings) != 0 {
		t.Errorf("lab samples without keys = %+v, want no finding", res.Findings)
	}
	if got := e2.metric("tapproof_monitor_leaves_unchecked_total", map[string]string{"log": utility}); got != 2 {
		t.Errorf("unchecked leaves = %v, want 2", got)
	}
}

// TestMonitorManyFindings: past 100 findings of a kind in one batch, the
// rest are one finding listing their leaves, and all are counted.
func TestMonitorManyFindings(t *testing.T) {
	e := newEnv(t)
	stranger := newSensor(t, "pb-9")
	for range 130 {
		e.log.add(stranger.reading(t, 1, nil))
	}
	res := e.once()
	if len(res.Findings) != 101 || res.Size != 130 {
		t.Fatalf("%d findings, size %d; want 101 and 130", len(res.Findings), res.Size)
	}
	last := res.Findings[100]
	if last.Kind != monitor.KindUnattributable || len(last.MoreLeaves) != 30 || last.MoreLeaves[0] != 100 || last.Leaf != nil ||
		!strings.Contains(last.Message, "30 more leaves") {
		t.Errorf("the summary finding = %+v", last)
	}
	if n := len(e.findings()); n != 101 {
		t.Errorf("%d evidence directories, want 101", n)
	}
	if got := e.metric("tapproof_monitor_findings_total", map[string]string{"log": utility, "kind": "unattributable_leaf"}); got != 130 {
		t.Errorf("unattributable findings counted = %v, want 130", got)
	}
}

// TestMonitorBadLeaves: leaves that are no well-formed tapproof entry.
func TestMonitorBadLeaves(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	wrongSite := a.readingOf(1)
	wrongSite.Site = "oak-st"
	e.log.add(a.enrollment(t),
		[]byte("not json"),                       // 1
		[]byte(`{"type":"tapproof.unknown.v1"}`), // 2
		[]byte(`{"type":"tapproof.notice.v1","alert_id":"x","class":"screening"}`), // 3: of no utility
		tapproof.SetAsideLeaf(9, tapproof.SetAsideUnsealed, []byte("x")),           // 4: names another index
		signWith(t, a.key, tapproof.ReadingPayloadType, jsonOf(t, wrongSite)),      // 5
		signWith(t, a.key, "application/x-other", []byte("{}")),                    // 6
	)
	res := e.once()
	var got []uint64
	for _, f := range res.Findings {
		if f.Kind != monitor.KindBadLeaf {
			t.Errorf("leaf %d: %s finding, want bad_leaf", *f.Leaf, f.Kind)
		}
		got = append(got, *f.Leaf)
	}
	if !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("bad leaves found = %v, want 1 to 6", got)
	}
}

// TestMonitorInconsistentLeaves: the checkpoint and its proof are sound,
// but the server serves a changed leaf, or a leaf out of place: the leaves
// do not hash to the checkpoint, and the state stays.
func TestMonitorInconsistentLeaves(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t), a.reading(t, 1, nil))
	if res := e.once(); len(res.Findings) != 0 {
		t.Fatal(res)
	}
	e.log.add(a.reading(t, 24, nil), a.reading(t, 2, nil))
	changed := a.reading(t, 2, nil)
	e.log.set(func(l *testLog) {
		l.tamper = func(i uint64, b []byte) []byte {
			if i == 2 {
				return changed // the 24 ppb reading, replaced by a signed 2 ppb one
			}
			return b
		}
	})
	res := e.once()
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindInconsistentLeaves}) || res.Size != 2 || !res.Blocked {
		t.Fatalf("pass over changed leaves = %+v", res)
	}

	// A leaf left out: the leaves after it move up one.
	genuine := e.log.snapshot()
	e.log.set(func(l *testLog) {
		l.tamper = nil
		l.leaves = append(slices.Delete(slices.Clone(l.leaves), 2, 3), a.reading(t, 3, nil))
	})
	res = e.once()
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindInconsistentLeaves}) || res.Size != 2 {
		t.Fatalf("pass over a leaf left out = %+v", res)
	}

	// Leaves said to be at other indices than those asked for.
	e.log.set(func(l *testLog) { l.leaves = genuine })
	e.cfg.API = shifted{e.client}
	res = e.once()
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindInconsistentLeaves}) || res.Size != 2 ||
		!strings.Contains(res.Findings[0].Message, "served leaf 3 where leaf 2 was due") {
		t.Fatalf("pass over leaves out of place = %+v", res)
	}
}

// shifted serves leaves one index further than they are.
type shifted struct{ monitor.API }

func (s shifted) Leaves(ctx context.Context, u string, start, count uint64) ([]tapproof.Leaf, error) {
	ls, err := s.API.Leaves(ctx, u, start, count)
	for i := range ls {
		ls[i].Index++
	}
	return ls, err
}

// TestMonitorBadProof: a checkpoint that extends the stored one, with a
// consistency proof that does not verify: a fork, as far as the monitor
// can tell, and the state stays.
func TestMonitorBadProof(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t), a.reading(t, 1, nil), a.reading(t, 1, nil))
	e.once()
	e.log.add(a.reading(t, 1, nil))
	e.log.set(func(l *testLog) { l.badProof = true })
	if res := e.once(); !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindFork}) || res.Size != 3 {
		t.Fatalf("pass with a bad proof = %+v", res)
	}
	e.log.set(func(l *testLog) { l.badProof = false })
	if res := e.once(); len(res.Findings) != 0 || res.Size != 4 {
		t.Fatalf("pass with the right proof = %+v", res)
	}
}

// TestMonitorWitnessPolicy: a checkpoint without the cosignature of a
// witness the policy asks for is a finding naming that witness, once per
// checkpoint; with it, none.
func TestMonitorWitnessPolicy(t *testing.T) {
	e := newEnv(t)
	ws, wvkey := witnessKey(t, "witness.state.example")
	us, uvkey := witnessKey(t, "witness.university.example")
	policy, err := witness.ParsePolicy([]byte("witness state " + wvkey + " http://127.0.0.1:1\nwitness uni " + uvkey + " http://127.0.0.1:2\ngroup both all state uni\nquorum both\n"))
	must(t, err)
	e.cfg.Policy = policy
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t), a.reading(t, 1, nil))
	e.log.set(func(l *testLog) { l.cosigners = []note.Signer{ws} })

	res := e.once()
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindWitnessPolicy}) {
		t.Fatalf("pass over a checkpoint cosigned by one of two = %+v", res)
	}
	f := res.Findings[0]
	if !slices.Equal(f.Missing, []string{"witness.university.example"}) || !slices.Equal(f.Cosigned, []string{"witness.state.example"}) ||
		!strings.Contains(f.Message, "no cosignature from witness.university.example") {
		t.Errorf("witness policy finding = %+v", f)
	}
	if res.Size != 2 {
		t.Errorf("state at %d: a checkpoint lacking cosignatures is still checked and stored", res.Size)
	}
	m := e.open()
	m.Once(context.Background())
	if res := m.Once(context.Background()); len(res.Logs[0].Findings) != 0 {
		t.Errorf("the same tree polled again = %+v, want it reported once", res.Logs[0].Findings)
	}
	m.Close()

	e.log.add(a.reading(t, 1, nil))
	e.log.set(func(l *testLog) { l.cosigners = []note.Signer{ws, us} })
	if res := e.once(); len(res.Findings) != 0 || res.Size != 3 {
		t.Errorf("pass over a checkpoint cosigned by both = %+v", res)
	}
}

// TestMonitorResumes: a second monitor over the same state directory goes
// on from the stored checkpoint, with the devices the first learnt, and
// reads none of the leaves before it.
func TestMonitorResumes(t *testing.T) {
	e := newEnv(t)
	e.cfg.PageSize = 100
	a, b := newSensor(t, "pb-1"), newSensor(t, "pb-2")
	e.log.add(a.enrollment(t), b.enrollment(t))
	for i := range 998 {
		e.log.add([]*sensor{a, b}[i%2].reading(t, 1, nil))
	}
	if res := e.once(); len(res.Findings) != 0 || res.Size != 1000 {
		t.Fatalf("first monitor = %+v", res)
	}
	if _, served := e.log.counts(); served != 1000 {
		t.Errorf("first monitor read %d leaves, want 1000", served)
	}
	for range 50 {
		e.log.add(b.reading(t, 1, nil))
	}
	e.log.add(b.reading(t, 1, a.key)) // a bad signature: pb-2's key is known
	reqs0, served0 := e.log.counts()
	res := e.once()
	reqs, served := e.log.counts()
	if served-served0 != 51 || reqs-reqs0 != 1 {
		t.Errorf("second monitor read %d leaves in %d requests, want the 51 new ones in 1", served-served0, reqs-reqs0)
	}
	if !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindBadSignature}) || *res.Findings[0].Leaf != 1050 || res.Size != 1051 {
		t.Errorf("second monitor = %+v, want the bad signature at 1050 and size 1051", res)
	}
}

// TestMonitorStale: no larger checkpoint for StaleAfter is a finding, once
// per episode.
func TestMonitorStale(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e.cfg.Now = func() time.Time { return now }
	e.cfg.StaleAfter = 10 * time.Minute
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t))
	m := e.open()
	poll := func() monitor.LogResult { return m.Once(context.Background()).Logs[0] }
	if res := poll(); len(res.Findings) != 0 || res.Stale {
		t.Fatalf("first poll = %+v", res)
	}
	now = now.Add(9 * time.Minute)
	if res := poll(); len(res.Findings) != 0 || res.Stale {
		t.Errorf("after 9 min = %+v", res)
	}
	now = now.Add(2 * time.Minute)
	if res := poll(); !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindStale}) || !res.Stale {
		t.Errorf("after 11 min = %+v, want stale", res)
	}
	now = now.Add(time.Minute)
	if res := poll(); len(res.Findings) != 0 || !res.Stale {
		t.Errorf("after 12 min = %+v, want stale, not reported again", res)
	}
	m.Close()
	// Across a restart, the episode is still the one reported.
	m = e.open()
	if res := poll(); len(res.Findings) != 0 || !res.Stale {
		t.Errorf("after a restart = %+v, want stale, not reported again", res)
	}
	e.log.add(a.reading(t, 1, nil))
	if res := poll(); len(res.Findings) != 0 || res.Stale {
		t.Errorf("once grown = %+v, want not stale", res)
	}
	now = now.Add(11 * time.Minute)
	if res := poll(); !slices.Equal(kinds(res.Findings), []monitor.Kind{monitor.KindStale}) {
		t.Errorf("a second episode = %+v, want stale", res)
	}
}

// TestMonitorUnreachable: a server that is down, or a checkpoint not
// signed by the log's key, is no finding but an error, and the state
// stays.
func TestMonitorUnreachable(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t))
	e.once()
	e.log.set(func(l *testLog) { l.down = true })
	res := e.once()
	if res.Err == nil || len(res.Findings) != 0 || res.Size != 1 || !strings.Contains(res.Err.Error(), "503") {
		t.Errorf("pass over a server that is down = %+v", res)
	}
	if got := e.metric("tapproof_monitor_poll_errors_total", map[string]string{"log": utility}); got != 1 {
		t.Errorf("poll errors = %v, want 1", got)
	}
	e.log.set(func(l *testLog) { l.down = false })
	other := newTestLog(t)
	e.cfg.Logs = []monitor.Log{{Utility: utility, Key: other.verifier}}
	if _, err := monitor.New(e.cfg); err == nil || !strings.Contains(err.Error(), "not the one given") {
		t.Errorf("New with another key than the state's = %v", err)
	}
}

// TestMonitorState: New refuses a state that does not check, and a state
// directory another monitor holds.
func TestMonitorState(t *testing.T) {
	e := newEnv(t)
	a := newSensor(t, "pb-1")
	e.log.add(a.enrollment(t), a.reading(t, 1, nil), a.reading(t, 1, nil))
	e.once()

	m := e.open()
	if _, err := monitor.New(e.cfg); !errors.Is(err, monitor.ErrLocked) {
		t.Errorf("a second monitor of the directory = %v, want ErrLocked", err)
	}
	m.Close()

	path := filepath.Join(e.dir, "logs", utility+".json")
	good := readFile(t, path)
	var st map[string]any
	must(t, json.Unmarshal(good, &st))
	st["frontier"] = []any{st["frontier"].([]any)[0]}
	bad, _ := json.Marshal(st)
	must(t, os.WriteFile(path, bad, 0o600))
	if _, err := monitor.New(e.cfg); err == nil || !strings.Contains(err.Error(), "frontier") {
		t.Errorf("New over a frontier that does not hash to the checkpoint = %v", err)
	}
	must(t, os.WriteFile(path, good, 0o600))
	// What a monitor killed while writing leaves behind is removed.
	must(t, os.WriteFile(filepath.Join(e.dir, "logs", ".tmp-"+utility+".json-123"), []byte("{"), 0o600))
	e.open().Close()
	if _, err := os.Stat(filepath.Join(e.dir, "logs", ".tmp-"+utility+".json-123")); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

// TestResultClean: what makes a pass unclean, for `tapproof monitor
// --once`'s exit status.
func TestResultClean(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    monitor.LogResult
		want bool
	}{
		{"clean", monitor.LogResult{Size: 3}, true},
		{"finding", monitor.LogResult{Findings: []monitor.Finding{{Kind: monitor.KindBadLeaf}}}, false},
		{"error", monitor.LogResult{Err: errors.New("down")}, false},
		{"stale", monitor.LogResult{Stale: true}, false},
		{"blocked", monitor.LogResult{Blocked: true}, false},
	} {
		if got := (monitor.Result{Logs: []monitor.LogResult{{}, tc.l}}).Clean(); got != tc.want {
			t.Errorf("%s: Clean = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestMonitorSmallOrderKey: an enrollment of a key of small order, which
// anyone can "sign" for without a private key, is a bad leaf, and the
// readings "signed" under it are unattributable, though both signatures
// verify under that key.
func TestMonitorSmallOrderKey(t *testing.T) {
	e := newEnv(t)
	s := newSensor(t, "pb-x")
	identity := make([]byte, 32)
	identity[0] = 1 // the neutral point
	forged := make([]byte, 64)
	forged[0] = 1 // R = identity, S = 0: verifies under it for any message
	forge := func(payloadType string, payload []byte) []byte {
		return []byte(`{"payloadType":"` + payloadType + `","payload":"` + base64.StdEncoding.EncodeToString(payload) +
			`","signatures":[{"sig":"` + base64.StdEncoding.EncodeToString(forged) + `"}]}`)
	}
	var en tapproof.Enrollment
	must(t, json.Unmarshal(payloadOf(t, s.enrollment(t)), &en))
	en.PublicKey = identity
	raw, err := json.Marshal(en)
	must(t, err)
	e.log.add(forge(tapproof.EnrollmentPayloadType, raw), forge(tapproof.ReadingPayloadType, payloadOf(t, s.reading(t, 1, nil))))
	res := e.once()
	got := map[uint64]monitor.Kind{}
	for _, f := range res.Findings {
		got[*f.Leaf] = f.Kind
	}
	if diff := cmp.Diff(map[uint64]monitor.Kind{0: monitor.KindBadLeaf, 1: monitor.KindUnattributable}, got); diff != "" {
		t.Errorf("findings by leaf (-want +got):\n%s", diff)
	}
}
