package journal_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
)

func openJournal(t testing.TB) *journal.Journal {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Server(t))
	j, err := journal.Open(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(t.Context(), "u1"); err != nil {
		t.Fatal(err)
	}
	return j
}

// nextN reads c until it has handed over n entries, in as many batches as
// it takes (a batch ends once its linger finds nothing more arriving, which
// under load can be after the first entry), and returns them with the last
// batch, whose Ack acknowledges them all. It fails the test if n entries
// have not come within 10 s; it never asks for more than n (see noMore).
func nextN(t *testing.T, c *journal.Cursor, n int) ([]journal.Entry, *journal.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var (
		es   []journal.Entry
		last *journal.Batch
	)
	for len(es) < n {
		b, err := c.Next(ctx, n-len(es), time.Second)
		if err != nil {
			t.Fatalf("Next after %d of %d entries: %v", len(es), n, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d entries within 10 s", len(es), n)
		}
		if len(b.Entries) > 0 {
			es, last = append(es, b.Entries...), b
		}
	}
	return es, last
}

// noMore fails the test if c hands over another entry within half a second.
func noMore(t *testing.T, c *journal.Cursor) {
	t.Helper()
	b, err := c.Next(t.Context(), 1, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Entries) > 0 {
		t.Errorf("an entry more than expected: %+v", b.Entries[0])
	}
}

func reading(device string, seq uint64) tapproof.Reading {
	return tapproof.Reading{Utility: "u1", Site: "s1", Device: device, Seq: seq, Analyte: tapproof.Lead, Value: 3, Unit: tapproof.MicrogramsPerLiter}
}

func TestAppendReadingIndexesAndHeads(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	if _, err := j.AppendEnrollment(ctx, "u1", "d1", []byte("enroll d1")); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i, dev := range []string{"d1", "d2", "d1", "d1"} {
		h, err := j.Head(ctx, "u1", dev)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := j.AppendReading(ctx, reading(dev, h.Seq+1), fmt.Appendf(nil, "leaf %d", i), h.StreamSeq)
		if err != nil {
			t.Fatalf("AppendReading(%s) = %v", dev, err)
		}
		want = append(want, uint64(i+1))
		if idx != want[i] {
			t.Errorf("AppendReading #%d index = %d, want %d", i, idx, want[i])
		}
	}
	h, err := j.Head(ctx, "u1", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(journal.Head{Seq: 3, Digest: sha256.Sum256([]byte("leaf 3")), StreamSeq: 5}, h); diff != "" {
		t.Errorf("Head(d1) (-want +got):\n%s", diff)
	}
	e, err := j.Reading(ctx, "u1", "d1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if e.Index != 3 || string(e.Bytes) != "leaf 2" || e.Kind != journal.KindReading || e.Device != "d1" || e.Seq != 2 {
		t.Errorf("Reading(d1, 2) = %+v, want index 3 leaf 2", e)
	}
	if _, err := j.Reading(ctx, "u1", "d1", 9); !errors.Is(err, tapproof.ErrNotFound) {
		t.Errorf("Reading(d1, 9) error = %v, want ErrNotFound", err)
	}
	en, err := j.Enrollment(ctx, "u1", "d1")
	if err != nil || en.Index != 0 || en.Kind != journal.KindEnrollment {
		t.Errorf("Enrollment(d1) = %+v, %v; want index 0", en, err)
	}
}

func TestAppendReadingConflict(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	// A second copy decided on the same (empty) head must be refused.
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("a"), 0); !errors.Is(err, tapproof.ErrConflict) {
		t.Fatalf("second append error = %v, want ErrConflict", err)
	}
	// Another device is unaffected.
	if _, err := j.AppendReading(ctx, reading("d2", 1), []byte("b"), 0); err != nil {
		t.Fatalf("append d2 = %v", err)
	}
	if n, err := j.Size(ctx, "u1"); err != nil || n != 2 {
		t.Errorf("Size = %d, %v; want 2", n, err)
	}
}

func TestCursorDrainRetriesAndAcks(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	j := openJournal(t)
	for i := range 10 {
		if _, err := j.AppendReading(ctx, reading("d1", uint64(i+1)), []byte{byte(i)}, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := j.Cursor(ctx, "u1", "test")
	if err != nil {
		t.Fatal(err)
	}
	// Drain closes c when it returns.
	var got []uint64
	fail := 2
	done := make(chan struct{})
	go c.Drain(ctx, 4, func(_ context.Context, es []journal.Entry) error {
		if fail > 0 {
			fail--
			return errors.New("sink down")
		}
		for _, e := range es {
			got = append(got, e.Index)
		}
		if len(got) >= 10 {
			close(done)
			cancel()
		}
		return nil
	}, func(error) {})
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("drain did not deliver 10 entries")
	}
	// Entries reach the sink in order, each once, with nothing skipped past
	// the batches it refused: acknowledging a later entry would have
	// acknowledged those too.
	for i, idx := range got {
		if idx != uint64(i) {
			t.Fatalf("sink stored indices %v, want 0..9 in order", got)
		}
	}
}

func TestCheckpoints(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	cs := j.Checkpoints("u1")
	if b, err := cs.LatestCheckpoint(ctx, "o"); err != nil || b != nil {
		t.Fatalf("LatestCheckpoint on empty = %q, %v; want nil, nil", b, err)
	}
	for _, n := range []uint64{5, 12} {
		if err := cs.PutCheckpoint(ctx, "o", n, fmt.Appendf(nil, "cp %d", n)); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := cs.LatestCheckpoint(ctx, "o"); err != nil || string(b) != "cp 12" {
		t.Errorf("LatestCheckpoint = %q, %v; want cp 12", b, err)
	}
	if b, err := cs.Checkpoint(ctx, 5); err != nil || string(b) != "cp 5" {
		t.Errorf("Checkpoint(5) = %q, %v; want cp 5", b, err)
	}
	if _, err := cs.Checkpoint(ctx, 6); !errors.Is(err, tapproof.ErrNotFound) {
		t.Errorf("Checkpoint(6) error = %v, want ErrNotFound", err)
	}
	// A writer that has not seen the latest checkpoint cannot publish.
	stale := j.Checkpoints("u1")
	if err := stale.PutCheckpoint(ctx, "o", 20, []byte("cp 20")); !errors.Is(err, tapproof.ErrConflict) {
		t.Errorf("PutCheckpoint by a stale writer = %v, want ErrConflict", err)
	}
	if _, err := stale.LatestCheckpoint(ctx, "o"); err != nil {
		t.Fatal(err)
	}
	if err := stale.PutCheckpoint(ctx, "o", 20, []byte("cp 20")); err != nil {
		t.Errorf("PutCheckpoint after LatestCheckpoint = %v", err)
	}
	// Another utility's checkpoints are separate.
	if b, err := j.Checkpoints("u2").LatestCheckpoint(ctx, "o"); err != nil || b != nil {
		t.Errorf("u2 LatestCheckpoint = %q, %v; want none", b, err)
	}
}

// TestCursorAfterCrashRedeliversInFlightFirst: entries fetched but not
// stored when the process died must come back at once and in order, before
// anything newer; otherwise a cumulative ack would acknowledge them unstored.
func TestCursorAfterCrashRedeliversInFlightFirst(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	for i := range 10 {
		if _, err := j.AppendReading(ctx, reading("d1", uint64(i+1)), []byte{byte(i)}, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := j.Cursor(ctx, "u1", "sink")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	_, b := nextN(t, c, 3)
	if err := b.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	// In flight when the process dies: delivered, never acknowledged.
	nextN(t, c, 4)
	restarted, err := j.Cursor(ctx, "u1", "sink")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(restarted.Close)
	es, _ := nextN(t, restarted, 7)
	var got []uint64
	for _, e := range es {
		got = append(got, e.Index)
	}
	if diff := cmp.Diff([]uint64{3, 4, 5, 6, 7, 8, 9}, got); diff != "" {
		t.Errorf("after restart, Next indices (-want +got):\n%s", diff)
	}
}

func TestLeaseOneLeaderAndHandover(t *testing.T) {
	j := openJournal(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const ttl = 600 * time.Millisecond
	var mu sync.Mutex
	leading := map[string]bool{}
	maxLeaders := 0
	run := func(name string) (context.CancelFunc, chan struct{}) {
		l, err := j.Lease(ctx, "leader", name, ttl)
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = l.Lead(rctx, func(lctx context.Context) error {
				<-lctx.Done()
				return nil
			}, func(on bool) {
				mu.Lock()
				defer mu.Unlock()
				leading[name] = on
				n := 0
				for _, v := range leading {
					if v {
						n++
					}
				}
				maxLeaders = max(maxLeaders, n)
			})
		}()
		return rcancel, done
	}
	stopA, doneA := run("a")
	stopB, doneB := run("b")
	stop := map[string]func(){"a": func() { stopA(); <-doneA }, "b": func() { stopB(); <-doneB }}
	leader := func() string {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range leading {
			if v {
				return k
			}
		}
		return ""
	}
	deadline := time.Now().Add(5 * time.Second)
	for leader() == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	first := leader()
	if first == "" {
		t.Fatal("nobody took the lease")
	}
	other := map[string]string{"a": "b", "b": "a"}[first]
	stop[first]()
	deadline = time.Now().Add(5 * time.Second)
	for leader() != other && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if leader() != other {
		t.Errorf("%s did not take over after %s stopped", other, first)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxLeaders != 1 {
		t.Errorf("%d replicas led at once, want 1", maxLeaders)
	}
}

// TestReadingSearch finds every reading of an interleaved device by its
// sequence number, and reports gaps as not found.
func TestReadingSearch(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	heads := map[string]uint64{}
	for i := range 120 {
		dev := []string{"a", "b", "b"}[i%3]
		seq := uint64(10 * (i + 1)) // gaps between sequence numbers
		idx, err := j.AppendReading(ctx, reading(dev, seq), fmt.Appendf(nil, "%s %d", dev, seq), heads[dev])
		if err != nil {
			t.Fatal(err)
		}
		heads[dev] = idx + 1
	}
	for i := range 120 {
		dev := []string{"a", "b", "b"}[i%3]
		seq := uint64(10 * (i + 1))
		e, err := j.Reading(ctx, "u1", dev, seq)
		if err != nil {
			t.Fatalf("Reading(%s, %d): %v", dev, seq, err)
		}
		if e.Index != uint64(i) || string(e.Bytes) != fmt.Sprintf("%s %d", dev, seq) || e.Seq != seq {
			t.Errorf("Reading(%s, %d) = index %d seq %d %q, want index %d", dev, seq, e.Index, e.Seq, e.Bytes, i)
		}
		if _, err := j.Reading(ctx, "u1", dev, seq+5); !errors.Is(err, tapproof.ErrNotFound) {
			t.Errorf("Reading(%s, %d) error = %v, want ErrNotFound", dev, seq+5, err)
		}
	}
}

func TestAppendNoticeOncePerAlert(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	rec := []byte(`{"alert_id":"screening-d1-7","class":"screening","msg_type":"Alert","template":"lead-screening","recipients":3}`)
	first, err := j.AppendNotice(ctx, "u1", rec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := j.AppendNotice(ctx, "u1", rec)
	if err != nil || again != first {
		t.Errorf("AppendNotice again = %d, %v; want the first index %d", again, err, first)
	}
	if n, _ := j.Size(ctx, "u1"); n != 1 {
		t.Errorf("journal size = %d, want 1", n)
	}
	if _, err := j.AppendNotice(ctx, "u1", []byte(`{"recipients":3}`)); err == nil {
		t.Error("AppendNotice accepted a record without an alert id")
	}
	if _, err := j.AppendNotice(ctx, "u1", []byte(`{"alert_id":"x","class":"a.>"}`)); err == nil {
		t.Error("AppendNotice accepted a class that is not one subject token")
	}
}

// TestCursorEntry: a cursor's entry is the leaf as appended and the
// identity its subject and headers carry.
func TestCursorEntry(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("leaf"), 0); err != nil {
		t.Fatal(err)
	}
	c, err := j.Cursor(ctx, "u1", "log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	es, _ := nextN(t, c, 1)
	noMore(t, c)
	e := es[0]
	if e.Index != 0 || string(e.Bytes) != "leaf" || e.Kind != journal.KindReading || e.Device != "d1" || e.Seq != 1 || e.SetAside != "" {
		t.Errorf("entry = %+v, want index 0, the leaf, kind r, device d1, seq 1", e)
	}
}

// A reading decided before its device's revocation was journaled must not
// land after it: the log would hold a reading of a device it says was
// revoked, signed by a key it no longer vouches for.
func TestAppendReadingAfterRevocationConflicts(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	if _, err := j.AppendEnrollment(ctx, "u1", "d1", []byte("enroll d1")); err != nil {
		t.Fatal(err)
	}
	h, err := j.Head(ctx, "u1", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if h.Revoked {
		t.Fatalf("Head before revocation = %+v, want not revoked", h)
	}
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("r1"), h.StreamSeq); err != nil {
		t.Fatal(err)
	}
	decided, err := j.Head(ctx, "u1", "d1") // what ingest decides reading 2 on
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendRevocation(ctx, "u1", "d1", []byte(`{"device":"d1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendReading(ctx, reading("d1", 2), []byte("r2"), decided.StreamSeq); !errors.Is(err, tapproof.ErrConflict) {
		t.Fatalf("append decided before the revocation: error = %v, want ErrConflict", err)
	}
	h, err = j.Head(ctx, "u1", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Revoked || h.Seq != 1 || h.StreamSeq != 3 {
		t.Errorf("Head after revocation = %+v, want revoked, seq 1, stream seq 3", h)
	}
	// Another device's readings are not held up by d1's revocation.
	if _, err := j.AppendReading(ctx, reading("d2", 1), []byte("d2 r1"), 0); err != nil {
		t.Errorf("append d2 = %v", err)
	}
}

// TestLeavesPages: Leaves reads any run of the journal in order, at most
// count of it, fewer at the end, none past it.
func TestLeavesPages(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	var want [][]byte
	var head uint64
	for i := range 2500 {
		leaf := fmt.Appendf(nil, "leaf %d", i)
		idx, err := j.AppendReading(ctx, reading("d1", uint64(i+1)), leaf, head)
		if err != nil {
			t.Fatal(err)
		}
		head = idx + 1
		want = append(want, leaf)
	}
	for _, c := range []struct{ start, count, n uint64 }{
		{0, 1000, 1000}, {1000, 1000, 1000}, {2000, 1000, 500}, {7, 3, 3}, {2499, 5, 1}, {2500, 10, 0}, {9000, 10, 0}, {0, 0, 0},
	} {
		got, err := j.Leaves(ctx, "u1", c.start, c.count)
		if err != nil {
			t.Fatalf("Leaves(%d, %d): %v", c.start, c.count, err)
		}
		if diff := cmp.Diff(want[min(c.start, 2500):min(c.start+c.n, 2500)], got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Leaves(%d, %d) (-want +got):\n%s", c.start, c.count, diff)
		}
	}
	if _, err := j.Leaves(ctx, "nobody", 0, 10); !errors.Is(err, tapproof.ErrNotFound) {
		t.Errorf("Leaves of a utility without a log: error = %v, want ErrNotFound", err)
	}
}

// TestReplicasPresent: every replica that announces itself is counted
// while it runs, and no longer once it stops.
func TestReplicasPresent(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t)
	count := func() int {
		n, err := j.Replicas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("replicas before any announces = %d, want 0", n)
	}
	actx, stopA := context.WithCancel(ctx)
	bctx, stopB := context.WithCancel(ctx)
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { defer close(doneA); _ = j.Announce(actx, "host/1/a", time.Second) }()
	go func() { defer close(doneB); _ = j.Announce(bctx, "host/1/b", time.Second) }()
	defer func() { stopA(); stopB(); <-doneA; <-doneB }()
	poll.Until(t, 5*time.Second, func() error {
		if n := count(); n != 2 {
			return fmt.Errorf("replicas = %d, want 2", n)
		}
		return nil
	})
	stopA()
	<-doneA
	poll.Until(t, 5*time.Second, func() error {
		if n := count(); n != 1 {
			return fmt.Errorf("replicas after one stopped = %d, want 1", n)
		}
		return nil
	})
}

// Once runs its function only while nobody else holds the lease, and
// releases it after, so a Lead waiting for it takes it at once.
func TestLeaseOnce(t *testing.T) {
	j := openJournal(t)
	ctx := t.Context()
	const ttl = 600 * time.Millisecond
	a, err := j.Lease(ctx, "log.u1", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	b, err := j.Lease(ctx, "log.u1", "b", ttl)
	if err != nil {
		t.Fatal(err)
	}
	ran, err := a.Once(ctx, func(ctx context.Context) error {
		// Held past its TTL: renewed meanwhile, so b cannot take it.
		time.Sleep(2 * ttl)
		ranB, _ := b.Once(ctx, func(context.Context) error { return nil })
		if ranB {
			t.Error("b ran while a held the lease")
		}
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("a.Once = %v, %v; want it to run on a free lease", ran, err)
	}
	ranB, err := b.Once(ctx, func(context.Context) error { return errors.New("b's error") })
	if !ranB || err == nil || err.Error() != "b's error" {
		t.Errorf("b.Once after a released = %v, %v; want it to run and return its error", ranB, err)
	}
}

// A replicated stream refuses an optimistic write with code 10164, not the
// 10071 a stream on one server answers: both are a lost race. Ingest used
// to take 10164 for a failure to retry, and retried the same stale append
// for ever, holding the device's later readings behind it.
func TestWrongLastSequenceCodes(t *testing.T) {
	for _, code := range []jetstream.ErrorCode{jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant} {
		err := fmt.Errorf("publish: %w", &jetstream.APIError{Code: 400, ErrorCode: code, Description: "wrong last sequence"})
		if !journal.WrongLastSequence(err) {
			t.Errorf("code %d is not taken for a lost optimistic write", code)
		}
	}
	if journal.WrongLastSequence(&jetstream.APIError{Code: 503, ErrorCode: 10008}) {
		t.Error("JetStream unavailable taken for a lost optimistic write")
	}
}

// A delivery the cursor never received (lost in flight when a server or a
// consumer leader went away; here, taken by another puller) must not be
// acknowledged by the cumulative acknowledgement of a later entry: the
// cursor sees the gap in the consumer's delivery sequence and starts again
// at its acknowledgement floor, so the sink gets every entry, in order.
func TestCursorGapStartsAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := stolenCursor(t, ctx, "gap", 5, 1)
	var got []uint64
	done := make(chan struct{})
	go c.Drain(ctx, 10, func(_ context.Context, es []journal.Entry) error {
		for _, e := range es {
			got = append(got, e.Index)
		}
		if len(got) >= 5 {
			close(done)
			cancel()
		}
		return nil
	}, func(error) {})
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("sink got %v, want 0..4: the entry another puller took was acknowledged unstored", got)
	}
	if diff := cmp.Diff([]uint64{0, 1, 2, 3, 4}, got); diff != "" {
		t.Errorf("sink got (-want +got):\n%s", diff)
	}
}

// Deliveries that went to a flow that is gone (here another puller took
// every entry and never acknowledged them), with nothing after them to
// show a gap, come back within seconds rather than after the two-minute
// ack wait: an idle cursor whose consumer still waits for acknowledgements
// starts again at its acknowledgement floor.
func TestCursorStrandedDeliveries(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := stolenCursor(t, ctx, "stranded", 3, 3)
	got := make(chan uint64, 3)
	go c.Drain(ctx, 10, func(_ context.Context, es []journal.Entry) error {
		for _, e := range es {
			got <- e.Index
		}
		return nil
	}, func(error) {})
	for want := range uint64(3) {
		select {
		case idx := <-got:
			if idx != want {
				t.Fatalf("entry %d reached the sink in place of %d", idx, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("entry %d did not reach the sink within 20 s", want)
		}
	}
}

// stolenCursor appends n readings and returns the cursor name over them,
// the first stolen of which another puller of its consumer has taken and
// will never acknowledge.
func stolenCursor(t *testing.T, ctx context.Context, name string, n, stolen int) *journal.Cursor {
	t.Helper()
	j := openJournal(t)
	for i := range n {
		if _, err := j.AppendReading(ctx, reading("d1", uint64(i+1)), []byte{byte(i)}, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := j.Cursor(ctx, "u1", name)
	if err != nil {
		t.Fatal(err)
	}
	other, err := j.JetStream().Consumer(ctx, journal.LogStreamName("u1"), name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := other.Fetch(stolen, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range b.Messages() { // delivered, never acknowledged
	}
	return c
}
