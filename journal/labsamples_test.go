package journal_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/journal"
)

func labSample(lab, id string) tapproof.LabSample {
	at := time.Date(2026, 8, 3, 7, 0, 0, 0, time.UTC)
	return tapproof.LabSample{Lab: lab, SampleID: id, Utility: "u1", Site: "s1", Tier: 1, Liter: tapproof.FirstLiter,
		Analyte: tapproof.Lead, Value: 4, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 1,
		CollectedAt: at, AnalyzedAt: at.Add(48 * time.Hour), Period: "2026H2"}
}

func TestAppendLabSampleDedupesBySampleID(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("r1"), 0); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct{ lab, id string }{{"lab-a", "L1"}, {"lab-a", "L2"}, {"lab-b", "L1"}, {"lab-a", "odd.id with spaces"}} {
		idx, err := j.AppendLabSample(ctx, labSample(c.lab, c.id), []byte("leaf "+c.lab+"/"+c.id), journal.FromMessage(uint64(100+i)))
		if err != nil {
			t.Fatalf("AppendLabSample(%s/%s) = %v", c.lab, c.id, err)
		}
		if want := uint64(i + 1); idx != want {
			t.Errorf("AppendLabSample(%s/%s) index = %d, want %d", c.lab, c.id, idx, want)
		}
	}
	idx, err := j.AppendLabSample(ctx, labSample("lab-a", "L2"), []byte("another leaf"))
	if !errors.Is(err, journal.ErrExists) || idx != 2 {
		t.Errorf("AppendLabSample(lab-a/L2) again = %d, %v; want 2, ErrExists", idx, err)
	}
	e, err := j.LabSample(ctx, "u1", "lab-a", "L2")
	if err != nil {
		t.Fatal(err)
	}
	want := journal.Entry{Leaf: tapproof.Leaf{Index: 2, Bytes: []byte("leaf lab-a/L2")}, Kind: journal.KindLabSample, Lab: "lab-a", SampleID: "L2", Source: 101}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("LabSample(lab-a, L2) (-want +got):\n%s", diff)
	}
	if e, err := j.LabSample(ctx, "u1", "lab-a", "odd.id with spaces"); err != nil || e.Index != 4 {
		t.Errorf("LabSample(odd id) = %d, %v; want index 4", e.Index, err)
	}
	if _, err := j.LabSample(ctx, "u1", "lab-b", "L2"); !errors.Is(err, tapproof.ErrNotFound) {
		t.Errorf("LabSample(lab-b, L2) error = %v, want ErrNotFound", err)
	}
	if _, err := j.LabSample(ctx, "nolog", "lab-a", "L1"); !errors.Is(err, tapproof.ErrNotFound) {
		t.Errorf("LabSample in a utility without a log: error = %v, want ErrNoLog", err)
	}
	if _, err := j.AppendLabSample(ctx, tapproof.LabSample{Utility: "nolog", Lab: "lab-a", SampleID: "L1"}, []byte("x")); !errors.Is(err, tapproof.ErrNotFound) {
		t.Errorf("AppendLabSample in a utility without a log: error = %v, want ErrNoLog", err)
	}
	if n, _ := j.Size(ctx, "u1"); n != 5 {
		t.Errorf("Size = %d, want 5", n)
	}
}

// TestLabSampleAfterCrashBeforeIndex covers the crash window: an entry in
// the journal whose index was never written is found, and not appended
// again.
func TestLabSampleAfterCrashBeforeIndex(t *testing.T) {
	ctx := t.Context()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	j, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendLabSample(ctx, labSample("lab-a", "L1"), []byte("one")); err != nil {
		t.Fatal(err)
	}
	// What AppendLabSample publishes, without the index write that follows.
	orphan := func(id string) {
		t.Helper()
		m := &nats.Msg{Subject: "tapproof.log.u1.s.lab-a", Data: []byte("orphan " + id), Header: nats.Header{}}
		m.Header.Set(journal.HeaderSample, id)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	orphan("L2")
	orphan("L3")
	if idx, err := j.AppendLabSample(ctx, labSample("lab-a", "L3"), []byte("L3 again")); !errors.Is(err, journal.ErrExists) || idx != 2 {
		t.Errorf("AppendLabSample(L3) after a crash = %d, %v; want 2, ErrExists", idx, err)
	}
	// A fresh journal (a restarted process) finds the other orphan too.
	j2, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	e, err := j2.LabSample(ctx, "u1", "lab-a", "L2")
	if err != nil || e.Index != 1 || string(e.Bytes) != "orphan L2" {
		t.Errorf("LabSample(L2) = %+v, %v; want the orphan at index 1", e, err)
	}
	if idx, err := j2.AppendLabSample(ctx, labSample("lab-a", "L4"), []byte("four")); err != nil || idx != 3 {
		t.Errorf("AppendLabSample(L4) = %d, %v; want 3", idx, err)
	}
}

func TestAppendLabSampleConcurrentCopies(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		appended, exists int
	)
	for i := range 8 {
		for _, id := range []string{"L1", fmt.Sprint("X", i)} {
			wg.Go(func() {
				_, err := j.AppendLabSample(ctx, labSample("lab-a", id), []byte(id))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					appended++
				case errors.Is(err, journal.ErrExists):
					exists++
				default:
					t.Errorf("AppendLabSample(%s) = %v", id, err)
				}
			})
		}
	}
	wg.Wait()
	if appended != 9 || exists != 7 {
		t.Errorf("appended %d, ErrExists %d; want 9 (L1 once, X0..X7) and 7", appended, exists)
	}
	es, err := j.ComplianceEntries(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.SampleID)
	}
	slices.Sort(ids)
	if want := []string{"L1", "X0", "X1", "X2", "X3", "X4", "X5", "X6", "X7"}; !slices.Equal(ids, want) {
		t.Errorf("sample ids in the journal = %v, want %v", ids, want)
	}
}

func TestInvalidationsAndComplianceEntries(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	if es, err := j.ComplianceEntries(ctx, "u1"); err != nil || len(es) != 0 {
		t.Fatalf("ComplianceEntries of an empty log = %v, %v", es, err)
	}
	if _, err := j.AppendEnrollment(ctx, "u1", "d1", []byte("enroll")); err != nil {
		t.Fatal(err)
	}
	// The first reading names the enrollment, the last entry about d1.
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("r1"), 1); err != nil {
		t.Fatal(err)
	}
	s1, err := j.AppendLabSample(ctx, labSample("lab-a", "L1"), []byte("s1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendReading(ctx, reading("d1", 2), []byte("r2"), 2); err != nil {
		t.Fatal(err)
	}
	inv := tapproof.Invalidation{Utility: "u1", Lab: "lab-a", SampleID: "L1", SampleIndex: s1, Reason: "stagnant", Reviewer: "rev-1",
		DecidedAt: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}
	i1, err := j.AppendInvalidation(ctx, inv, []byte("inv1"), journal.FromMessage(7))
	if err != nil {
		t.Fatal(err)
	}
	other := inv
	other.SampleID = "L9"
	if _, err := j.AppendInvalidation(ctx, other, []byte("inv-other")); err != nil {
		t.Fatal(err)
	}
	got, err := j.Invalidations(ctx, "u1", "lab-a", "L1", s1)
	if err != nil {
		t.Fatal(err)
	}
	want := []journal.Entry{{Leaf: tapproof.Leaf{Index: i1, Bytes: []byte("inv1")}, Kind: journal.KindInvalidation, Lab: "lab-a", SampleID: "L1", Source: 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Invalidations(L1) (-want +got):\n%s", diff)
	}
	if got, err := j.Invalidations(ctx, "u1", "lab-a", "L1", i1); err != nil || len(got) != 0 {
		t.Errorf("Invalidations(L1) after its invalidation = %v, %v; want none", got, err)
	}
	// Notices: those of compliance alerts are compliance entries, the
	// screening ones are not.
	for _, class := range []tapproof.AlertClass{tapproof.Screening, tapproof.IndividualCompliance, tapproof.SystemExceedance} {
		rec := fmt.Sprintf(`{"alert_id":"%s-1","class":"%s","msg_type":"Alert"}`, class, class)
		if _, err := j.AppendNotice(ctx, "u1", []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	es, err := j.ComplianceEntries(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	var idx []uint64
	for _, e := range es {
		if e.Kind == journal.KindReading {
			t.Errorf("ComplianceEntries returned reading entry %d", e.Index)
		}
		idx = append(idx, e.Index)
	}
	if diff := cmp.Diff([]uint64{2, 4, 5, 7, 8}, idx); diff != "" {
		t.Errorf("ComplianceEntries indexes (-want +got):\n%s", diff)
	}
	// A sink's cursor decodes the new kinds too.
	c, err := j.Cursor(ctx, "u1", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	es, _ = nextN(t, c, 9)
	noMore(t, c)
	var kinds []journal.Kind
	for _, e := range es {
		kinds = append(kinds, e.Kind)
	}
	wantKinds := []journal.Kind{journal.KindEnrollment, journal.KindReading, journal.KindLabSample, journal.KindReading, journal.KindInvalidation, journal.KindInvalidation,
		journal.KindNotice, journal.KindNotice, journal.KindNotice}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("cursor entry kinds (-want +got):\n%s", diff)
	}
}

// TestOpenExtendsReadingsStream: a readings stream created before lab
// samples existed gains their subjects when the journal opens.
func TestOpenExtendsReadingsStream(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.Connect(t, natstest.Server(t))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: journal.ReadingsStream, Subjects: []string{journal.ReadingsSubject + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy, Duplicates: journal.DefaultDuplicateWindow, MaxMsgSize: 1 << 20,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, journal.ReadingsSubject+".u1.s1.d1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.Open(ctx, js); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{journal.LabSamplesSubject + ".u1.lab-a", journal.InvalidationsSubject + ".u1.rev-1"} {
		ack, err := js.Publish(ctx, subj, []byte("x"))
		if err != nil || ack.Stream != journal.ReadingsStream {
			t.Errorf("publish on %s = %+v, %v; want stored in %s", subj, ack, err, journal.ReadingsStream)
		}
	}
	st, err := js.Stream(ctx, journal.ReadingsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 3 {
		t.Errorf("readings stream holds %d messages, want 3", n)
	}
}

// TestCursorOfKinds: a cursor given kinds delivers only those entries, with
// their log indices, and a second cursor without kinds still sees all.
func TestCursorOfKinds(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("r1"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendLabSample(ctx, labSample("lab-a", "L1"), []byte("s1")); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendReading(ctx, reading("d1", 2), []byte("r2"), 1); err != nil {
		t.Fatal(err)
	}
	inv := tapproof.Invalidation{Utility: "u1", Lab: "lab-a", SampleID: "L1", SampleIndex: 1, Reviewer: "rev", Reason: "r"}
	if _, err := j.AppendInvalidation(ctx, inv, []byte("i1")); err != nil {
		t.Fatal(err)
	}
	kinds := func(name string, n int, ks ...journal.Kind) []uint64 {
		t.Helper()
		c, err := j.Cursor(ctx, "u1", name, ks...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		es, _ := nextN(t, c, n)
		noMore(t, c)
		var got []uint64
		for _, e := range es {
			got = append(got, e.Index)
		}
		return got
	}
	if diff := cmp.Diff([]uint64{1, 3}, kinds("compliance", 2, journal.KindLabSample, journal.KindInvalidation)); diff != "" {
		t.Errorf("lab sample and invalidation cursor (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{0, 1, 2, 3}, kinds("all", 4)); diff != "" {
		t.Errorf("cursor of every kind (-want +got):\n%s", diff)
	}
}
