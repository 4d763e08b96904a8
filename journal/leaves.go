package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/tapproof/tapproof"
)

// LogLeaf returns the leaf the log holds for e: its bytes as received, or,
// for an entry the journal set aside, the tombstone that keeps its index
// (tapproof.SetAsideLeaf).
func (e Entry) LogLeaf() []byte {
	if e.SetAside != "" {
		return tapproof.SetAsideLeaf(e.Index, e.SetAside, e.Bytes)
	}
	return e.Bytes
}

// Leaves returns the leaves of utility's log from start on, up to count of
// them, as the anchor appends them to the log's tree (Entry.LogLeaf); fewer,
// or none, where the journal ends. It reads the journal in batches that the
// stream answers itself (direct get), so reading a log back costs its
// readers the journal's file store rather than the tree's database, and
// never competes with anchoring. What it returns is only as good as the
// journal; whoever needs it proven checks it against a checkpoint.
func (j *Journal) Leaves(ctx context.Context, utility string, start, count uint64) ([][]byte, error) {
	if _, err := j.logStream(ctx, utility, false); err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, nil
	}
	msgs, err := jetstreamext.GetBatch(ctx, j.js, LogStreamName(utility), int(min(count, maxBatch)), jetstreamext.GetBatchSeq(start+1))
	if err != nil {
		return nil, fmt.Errorf("leaves %d+%d of %s: %w", start, count, utility, err)
	}
	out := make([][]byte, 0, min(count, maxBatch))
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("leaves %d+%d of %s: %w", start, count, utility, err)
		}
		if want := start + 1 + uint64(len(out)); m.Sequence != want {
			// The journal never deletes, so a gap is not one to paper over.
			return nil, fmt.Errorf("leaves %d+%d of %s: journal gave stream sequence %d where %d was due", start, count, utility, m.Sequence, want)
		}
		out = append(out, j.entry(m.Subject, m.Sequence, m.Header, m.Data).LogLeaf())
	}
	return out, nil
}

// maxBatch is the most entries Leaves asks the stream for at once (the
// API's page): the answer arrives as that many messages on one inbox.
const maxBatch = 1000

// entry decodes one journal message. A message without a valid seal, or
// that does not decode, is set aside rather than refused: it keeps its
// index, it blocks nothing behind it, and it stays in the journal for an
// operator to inspect.
func (j *Journal) entry(subject string, streamSeq uint64, hdr nats.Header, data []byte) Entry {
	aside := Entry{Leaf: tapproof.Leaf{Index: streamSeq - 1, Bytes: data}}
	if tok := strings.Split(subject, "."); len(tok) > 3 {
		aside.Kind = Kind(tok[3])
	}
	if !j.sealed(subject, streamSeq, hdr, data) {
		aside.SetAside = tapproof.SetAsideUnsealed
		return aside
	}
	e, err := entryOf(subject, streamSeq, hdr, data)
	if err != nil {
		aside.SetAside = tapproof.SetAsideUndecodable
		return aside
	}
	return e
}
