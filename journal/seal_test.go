package journal_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/journal"
)

var sealKey = []byte("0123456789abcdef0123456789abcdef")

// drainAll reads every entry of utility's journal through a new cursor.
func drainAll(t *testing.T, j *journal.Journal, name string, n int) []journal.Entry {
	t.Helper()
	c, err := j.Cursor(t.Context(), "u1", name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []journal.Entry
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		b, err := c.Next(t.Context(), 100, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Entries...)
		if err := b.Ack(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestForeignEntriesSetAside: entries that tapproof did not write, put on
// a device's journal subject by someone holding broker credentials, are
// set aside by every cursor, and neither the device's head nor the search
// for its readings stops on them.
func TestForeignEntriesSetAside(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.Connect(t, natstest.Server(t))
	j, err := journal.Open(ctx, js, journal.WithSealKey(sealKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("leaf-1"), 0); err != nil {
		t.Fatal(err)
	}
	// An unsealed envelope without headers, as in the attack that stopped
	// ingest, and one with headers and a made-up seal.
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "tapproof.log.u1.r.d1", Data: []byte("forged")}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "tapproof.log.u1.r.d1", Data: []byte("forged-2"), Header: nats.Header{
		journal.HeaderSeq: []string{"7"}, journal.HeaderSeal: []string{"AAAA"},
	}}); err != nil {
		t.Fatal(err)
	}
	h, err := j.Head(ctx, "u1", "d1")
	if err != nil {
		t.Fatalf("Head over foreign entries: %v", err)
	}
	if h.Seq != 1 || h.StreamSeq != 3 {
		t.Fatalf("Head = seq %d at stream seq %d, want the real seq 1, to append after stream seq 3", h.Seq, h.StreamSeq)
	}
	if _, err := j.AppendReading(ctx, reading("d1", 2), []byte("leaf-2"), h.StreamSeq); err != nil {
		t.Fatalf("append after foreign entries: %v", err)
	}
	for seq, leaf := range map[uint64]string{1: "leaf-1", 2: "leaf-2"} {
		e, err := j.Reading(ctx, "u1", "d1", seq)
		if err != nil || string(e.Bytes) != leaf {
			t.Fatalf("Reading(%d) = %q, %v; want %q", seq, e.Bytes, err, leaf)
		}
	}
	if _, err := j.Reading(ctx, "u1", "d1", 7); err == nil {
		t.Fatal("Reading(7) found the forged entry")
	}
	es := drainAll(t, j, "sink", 4)
	type got struct {
		Index    uint64
		SetAside string
	}
	var gs []got
	for _, e := range es {
		gs = append(gs, got{e.Index, e.SetAside})
	}
	want := []got{{0, ""}, {1, tapproof.SetAsideUnsealed}, {2, tapproof.SetAsideUnsealed}, {3, ""}}
	if diff := cmp.Diff(want, gs); diff != "" {
		t.Errorf("cursor entries (-want +got):\n%s", diff)
	}
	// Read back as leaves, the foreign entries are the tombstones the anchor
	// put in their place, the others as received.
	leaves, err := j.Leaves(ctx, "u1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantLeaves := [][]byte{[]byte("leaf-1"), tapproof.SetAsideLeaf(1, tapproof.SetAsideUnsealed, []byte("forged")),
		tapproof.SetAsideLeaf(2, tapproof.SetAsideUnsealed, []byte("forged-2")), []byte("leaf-2")}
	if diff := cmp.Diff(wantLeaves, leaves); diff != "" {
		t.Errorf("Leaves (-want +got):\n%s", diff)
	}
	for _, e := range es {
		if diff := cmp.Diff(wantLeaves[e.Index], e.LogLeaf()); diff != "" {
			t.Errorf("entry %d's LogLeaf (-want +got):\n%s", e.Index, diff)
		}
	}
}

// TestSealEpoch: a journal written before sealing began keeps its entries
// once sealing is on; what is written unsealed after that is set aside.
func TestSealEpoch(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.Connect(t, natstest.Server(t))
	old, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.EnsureLogStream(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.AppendReading(ctx, reading("d1", 1), []byte("legacy"), 0); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(ctx, js, journal.WithSealKey(sealKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "tapproof.log.u1.e.d9", []byte("foreign")); err != nil {
		t.Fatal(err)
	}
	// A restart must not move the epoch past the foreign entry.
	j, err = journal.Open(ctx, js, journal.WithSealKey(sealKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	h, err := j.Head(ctx, "u1", "d1")
	if err != nil || h.Seq != 1 {
		t.Fatalf("Head of a legacy reading = %+v, %v; want seq 1", h, err)
	}
	es := drainAll(t, j, "epoch", 2)
	if len(es) != 2 || es[0].SetAside != "" || es[1].SetAside != tapproof.SetAsideUnsealed {
		t.Fatalf("entries = %+v, want the legacy reading kept and the foreign entry set aside", es)
	}
}

// sealedJournal opens a sealing journal, with the log stream of u1, on a
// server of its own, and returns it with the JetStream it is on.
func sealedJournal(t *testing.T) (*journal.Journal, jetstream.JetStream) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Server(t))
	j, err := journal.Open(t.Context(), js, journal.WithSealKey(sealKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureLogStream(t.Context(), "u1"); err != nil {
		t.Fatal(err)
	}
	return j, js
}

// TestUnsealedEntryClaimsNoSample: an unsealed entry carrying a lab's next
// sample id, written with broker credentials before the lab reports, does
// not squat the id (the lab's real sample is appended and indexed, not
// refused as a copy), is no compliance entry, and an index entry pointed at
// it by hand is replaced.
func TestUnsealedEntryClaimsNoSample(t *testing.T) {
	ctx := t.Context()
	j, js := sealedJournal(t)
	if _, err := j.AppendLabSample(ctx, labSample("acme", "S-1"), []byte("sample-1"), journal.FromMessage(1)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"S-2", "S-3"} {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "tapproof.log.u1.s.acme", Data: []byte("squat"),
			Header: nats.Header{journal.HeaderSample: []string{id}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Leaf 2 is the squatter of S-3: an index entry pointing at it, written
	// into the bucket by hand.
	kv, err := js.KeyValue(ctx, journal.SamplesBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "u1.acme.S-3", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := j.LabSample(ctx, "u1", "acme", "S-2"); !errors.Is(err, tapproof.ErrNotFound) {
		t.Errorf("LabSample(S-2) before the lab reported = %v, want not found", err)
	}
	for _, id := range []string{"S-2", "S-3"} {
		idx, err := j.AppendLabSample(ctx, labSample("acme", id), []byte("sample-"+id), journal.FromMessage(2))
		if err != nil {
			t.Fatalf("AppendLabSample(%s) after an unsealed entry claimed it = %v", id, err)
		}
		e, err := j.LabSample(ctx, "u1", "acme", id)
		if err != nil || e.Index != idx || string(e.Bytes) != "sample-"+id {
			t.Errorf("LabSample(%s) = %d %q, %v; want the real sample at %d", id, e.Index, e.Bytes, err, idx)
		}
	}
	es, err := j.ComplianceEntries(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, string(e.Bytes))
	}
	if diff := cmp.Diff([]string{"sample-1", "sample-S-2", "sample-S-3"}, got); diff != "" {
		t.Errorf("ComplianceEntries (-want +got):\n%s", diff)
	}
}

// TestSealEpochCannotBeRaised: someone holding broker credentials but not
// the seal key raises the stream's seal epoch past an entry they wrote; a
// restarted journal does not take the raised epoch at its word, and the
// entry is still set aside.
func TestSealEpochCannotBeRaised(t *testing.T) {
	ctx := t.Context()
	j, js := sealedJournal(t)
	if _, err := j.AppendReading(ctx, reading("d1", 1), []byte("leaf-1"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "tapproof.log.u1.e.d9", []byte("foreign")); err != nil {
		t.Fatal(err)
	}
	for _, mac := range []string{"", "AAAA"} {
		s, err := js.Stream(ctx, journal.LogStreamName("u1"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.Metadata["tapproof.sealed_from"] = "1000"
		cfg.Metadata["tapproof.sealed_from_mac"] = mac
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		j, err := journal.Open(ctx, js, journal.WithSealKey(sealKey))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.EnsureLogStream(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		es := drainAll(t, j, "epoch"+mac, 2)
		if len(es) != 2 || es[0].SetAside != "" || es[1].SetAside != tapproof.SetAsideUnsealed {
			t.Errorf("with the epoch raised (mac %q): entries = %+v, want the foreign entry set aside", mac, es)
		}
	}
}

// TestCopiedReadingChangesNothing: a sealed reading written again, byte
// for byte with its headers, by someone holding broker credentials is
// sealed too (the seal does not cover the stream position); it repeats the
// reading's device and sequence number, so the device's head and the
// lookup of that reading are as before, and the device's next reading is
// appended after it.
func TestCopiedReadingChangesNothing(t *testing.T) {
	ctx := t.Context()
	j, js := sealedJournal(t)
	idx, err := j.AppendReading(ctx, reading("d1", 1), []byte("leaf-1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, journal.LogStreamName("u1"))
	if err != nil {
		t.Fatal(err)
	}
	orig, err := s.GetMsg(ctx, idx+1)
	if err != nil {
		t.Fatal(err)
	}
	hdr := nats.Header{} // the sealed Tapproof-* headers, not JetStream's expectations
	for k, v := range orig.Header {
		if strings.HasPrefix(k, "Tapproof-") {
			hdr[k] = v
		}
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: orig.Subject, Header: hdr, Data: orig.Data}); err != nil {
		t.Fatal(err)
	}
	h, err := j.Head(ctx, "u1", "d1")
	if err != nil || h.Seq != 1 || h.StreamSeq != idx+2 {
		t.Fatalf("Head after a copy of reading 1 = %+v, %v; want seq 1, to append after the copy (stream seq %d)", h, err, idx+2)
	}
	if e, err := j.Reading(ctx, "u1", "d1", 1); err != nil || string(e.Bytes) != "leaf-1" {
		t.Errorf("Reading(1) after a copy = %q, %v", e.Bytes, err)
	}
	if _, err := j.AppendReading(ctx, reading("d1", 2), []byte("leaf-2"), h.StreamSeq); err != nil {
		t.Errorf("append after a copy: %v", err)
	}
}
