package platform

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/journal"
)

// logLeaves reads a log's leaves back for those who check it: the API's
// readers (a regulator's monitor, `tapproof audit`, `compliance --log`) and
// the scheduled audit. The leaves the latest signed checkpoint covers are
// read from the journal, which holds every entry the anchor appended, as
// the anchor appended it (journal.Leaves): reading back a log of millions
// costs the journal's file store, not the tree's database, and never slows
// anchoring. Only the rest, a tail integrated since, comes from Trillian,
// and everything does while the journal cannot answer. Either way the
// reader checks what it gets against a checkpoint.
type logLeaves struct {
	ul      *utilityLog
	journal *journal.Journal
	counted *prometheus.CounterVec // by source; nil counts nothing
	log     *slog.Logger
	// slots, if set, bounds the reads running at once: each page read from
	// the journal is a consumer created and deleted, which on a cluster is
	// a proposal to JetStream's meta leader, and the endpoint is public.
	slots chan struct{}
}

// maxLeafReads is how many pages of leaves one replica reads at once for
// the API; more wait, within their request's deadline. A monitor reads
// one page at a time.
const maxLeafReads = 4

// read returns up to count leaves from start on; fewer, or none, where
// Trillian has not integrated them yet.
func (l logLeaves) read(ctx context.Context, start, count uint64) ([][]byte, error) {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
			defer func() { <-l.slots }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var out [][]byte
	if size := l.signedSize(ctx); size > start {
		var err error
		out, err = l.journal.Leaves(ctx, l.ul.info.Utility, start, min(count, size-start))
		if err != nil {
			l.log.Warn("log leaves: the journal could not give them; read from Trillian",
				slog.String("utility", l.ul.info.Utility), slog.Any("error", err))
			out = nil
		}
	}
	fromJournal := len(out)
	if n := uint64(len(out)); n < count {
		rest, err := l.ul.log.Leaves(ctx, start+n, count-n)
		if err != nil {
			return nil, err
		}
		out = append(out, rest...)
	}
	if l.counted != nil {
		l.counted.WithLabelValues("journal").Add(float64(fromJournal))
		l.counted.WithLabelValues("trillian").Add(float64(len(out) - fromJournal))
	}
	return out, nil
}

// Leaves is read for audit.ReadBack.
func (l logLeaves) Leaves(ctx context.Context, start, count uint64) ([]tapproof.Leaf, error) {
	bs, err := l.read(ctx, start, count)
	if err != nil {
		return nil, err
	}
	out := make([]tapproof.Leaf, len(bs))
	for i, b := range bs {
		out[i] = tapproof.Leaf{Index: start + uint64(i), Bytes: b}
	}
	return out, nil
}

// signedSize is the size of the log's latest signed checkpoint; 0 if it
// has none or it cannot be read. (A Checkpoints of its own: the
// checkpointer's remembers the last one it wrote.)
func (l logLeaves) signedSize(ctx context.Context) uint64 {
	cp, err := l.journal.Checkpoints(l.ul.info.Utility).LatestCheckpoint(ctx, l.ul.info.Origin)
	if err != nil || cp == nil {
		return 0
	}
	c, err := anchor.OpenCheckpoint(cp, l.ul.verifier)
	if err != nil {
		return 0
	}
	return c.Size
}
