package journal_test

import (
	"fmt"
	"testing"
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
