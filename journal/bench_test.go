package journal_test

import (
	"fmt"
	"testing"

	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/journal"
)

// BenchmarkAppendReading appends readings of 400 devices in turn to a
// journal that already holds 100,000 entries: the append's check on the
// device's subjects is in ingest's path for every reading.
func BenchmarkAppendReading(b *testing.B) {
	ctx := b.Context()
	j := openJournal(b)
	const devices = 400
	heads := make([]uint64, devices)
	seqs := make([]uint64, devices)
	leaf := make([]byte, 600)
	appendOne := func(i int) {
		d := i % devices
		seqs[d]++
		idx, err := j.AppendReading(ctx, reading(fmt.Sprint("d", d), seqs[d]), leaf, heads[d])
		if err != nil {
			b.Fatal(err)
		}
		heads[d] = idx + 1
	}
	for i := range 100_000 {
		appendOne(i)
	}
	for i := 0; b.Loop(); i++ {
		appendOne(i)
	}
}

// BenchmarkLeaves reads a journal of 100,000 sealed readings of 600 bytes
// back as the log's leaves, a page of 1,000 at a time: what serving a
// regulator's read of the log costs per page.
func BenchmarkLeaves(b *testing.B) {
	ctx := b.Context()
	_, js := natstest.Connect(b, natstest.Server(b))
	j, err := journal.Open(ctx, js, journal.WithSealKey(sealKey))
	if err != nil {
		b.Fatal(err)
	}
	if err := j.EnsureLogStream(ctx, "u1"); err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	leaf := make([]byte, 600)
	heads := map[string]uint64{}
	for i := range n {
		d := fmt.Sprint("d", i%400)
		idx, err := j.AppendReading(ctx, reading(d, uint64(i/400+1)), leaf, heads[d])
		if err != nil {
			b.Fatal(err)
		}
		heads[d] = idx + 1
	}
	var start uint64
	for b.Loop() {
		ls, err := j.Leaves(ctx, "u1", start, 1000)
		if err != nil || len(ls) != 1000 {
			b.Fatalf("Leaves(%d) = %d leaves, %v", start, len(ls), err)
		}
		start = (start + 1000) % n
	}
}
