package anchor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tapproof/tapproof"
)

// ErrNotIntegrated is returned, wrapped, when a leaf or tree size asked for
// is beyond the tree Trillian has integrated so far. Leaves appended with
// Append are integrated by trillian_log_signer on its next run.
var ErrNotIntegrated = errors.New("not yet integrated into the log")

// readBackChunk bounds the leaves fetched by one GetLeavesByRange call
// (128 of the largest envelopes stay under gRPC's 4 MiB message limit).
const readBackChunk = 128

// readBackWait bounds how long Append waits for Trillian to integrate leaves
// it reported as already present, so that it can compare them.
const readBackWait = time.Minute

// Log is one utility's Trillian tree together with the note key that signs
// its checkpoints. Its methods are safe for concurrent use, but only one
// process should append to a tree and only one should sign its checkpoints.
type Log struct {
	cfg LogConfig
	log trillian.TrillianLogClient
	// appended is what Append stored, for Checkpoint to check the tree
	// against.
	appended appended
}

// Origin returns the checkpoint origin of the log.
func (l *Log) Origin() string { return l.cfg.Origin }

// ConflictError reports that the log already holds a different leaf at an
// index being appended: the journal and the log disagree. Nothing was
// appended at that index.
type ConflictError struct {
	Index    uint64
	Logged   []byte // the leaf the log holds
	Appended []byte // the leaf that was refused
}

// Error names the index and the hashes of both leaves.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("leaf conflict at index %d: the log holds sha256 %x, refused sha256 %x",
		e.Index, sha256.Sum256(e.Logged), sha256.Sum256(e.Appended))
}

// identityHash is the Trillian leaf identity hash of leaf at index:
// SHA-256(8-byte big-endian index || leaf). Including the index makes the
// same leaf at the same index a duplicate and anything else new.
func identityHash(index uint64, leaf []byte) []byte {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], index)
	h.Write(b[:])
	h.Write(leaf)
	return h.Sum(nil)
}

// Append adds entries to the log at their indices. The indices must be
// contiguous and ascending; the first need not follow the log's current size,
// but Trillian integrates leaves only up to the first gap. Entries are sent in
// batches of at most BatchSize leaves (and 2 MiB). Append returns once
// Trillian has stored the leaves; they appear in Root after the signer's next
// run.
//
// Appending the same leaf at the same index again succeeds. Trillian reports
// such leaves, and conflicting ones, per leaf; Append then reads the leaves
// back and compares them byte for byte, waiting up to a minute for them to be
// integrated if need be. A different leaf at a used index returns a
// *ConflictError; the batches before it were appended.
func (l *Log) Append(ctx context.Context, entries []tapproof.Leaf) error {
	if len(entries) == 0 {
		return nil
	}
	first := entries[0].Index
	for i, e := range entries {
		if e.Index != first+uint64(i) {
			return fmt.Errorf("append: entry %d has index %d, want %d: indices must be contiguous", i, e.Index, first+uint64(i))
		}
		if len(e.Bytes) == 0 {
			return fmt.Errorf("append: entry at index %d is empty", e.Index)
		}
	}
	if last := entries[len(entries)-1].Index; last > math.MaxInt64 {
		return fmt.Errorf("append: index %d out of range", last)
	}
	for start := 0; start < len(entries); {
		end, n := start, 0
		for end < len(entries) && end-start < l.cfg.BatchSize && (end == start || n+len(entries[end].Bytes) <= maxBatchBytes) {
			n += len(entries[end].Bytes)
			end++
		}
		if err := l.appendBatch(ctx, entries[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func (l *Log) appendBatch(ctx context.Context, batch []tapproof.Leaf) error {
	leaves := make([]*trillian.LogLeaf, len(batch))
	for i, e := range batch {
		leaves[i] = &trillian.LogLeaf{
			LeafValue:        e.Bytes,
			LeafIndex:        int64(e.Index),
			LeafIdentityHash: identityHash(e.Index, e.Bytes),
		}
	}
	first, last := batch[0].Index, batch[len(batch)-1].Index
	resp, err := l.log.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{LogId: l.cfg.TreeID, Leaves: leaves})
	if err != nil {
		return fmt.Errorf("append leaves %d-%d: %w", first, last, err)
	}
	if got, want := len(resp.GetResults()), len(batch); got != want {
		return fmt.Errorf("append leaves %d-%d: trillian returned %d results, want %d", first, last, got, want)
	}
	var present []tapproof.Leaf
	for i, r := range resp.GetResults() {
		switch st := status.FromProto(r.GetStatus()); st.Code() {
		case codes.OK:
		case codes.AlreadyExists, codes.FailedPrecondition:
			// A duplicate identity hash (the same leaf at the same index)
			// or a used index (maybe a different leaf): compare below.
			present = append(present, batch[i])
		default:
			return fmt.Errorf("append leaf %d: %w", batch[i].Index, st.Err())
		}
	}
	if len(present) > 0 {
		if err := l.compareStored(ctx, present); err != nil {
			return err
		}
	}
	indices, hashes := make([]uint64, len(batch)), make([][]byte, len(batch))
	for i, e := range batch {
		indices[i], hashes[i] = e.Index, rfc6962.DefaultHasher.HashLeaf(e.Bytes)
	}
	l.appended.add(indices, hashes)
	return nil
}

// compareStored checks that the log holds exactly want (ascending indices),
// waiting for Trillian to integrate them if it has not yet.
func (l *Log) compareStored(ctx context.Context, want []tapproof.Leaf) error {
	deadline := time.Now().Add(readBackWait)
	wait := 20 * time.Millisecond
	for len(want) > 0 {
		start := want[0].Index
		count := min(want[len(want)-1].Index-start+1, readBackChunk)
		leaves, err := l.leaves(ctx, start, count)
		if err != nil {
			return err
		}
		if len(leaves) == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("append leaf %d: trillian reports it present but has not integrated it after %s; is the log signer running?", start, readBackWait)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("append leaf %d: wait for integration: %w", start, ctx.Err())
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			continue
		}
		for len(want) > 0 && want[0].Index < start+uint64(len(leaves)) {
			got := leaves[want[0].Index-start]
			if !bytes.Equal(got, want[0].Bytes) {
				return &ConflictError{Index: want[0].Index, Logged: got, Appended: want[0].Bytes}
			}
			want = want[1:]
		}
	}
	return nil
}

// leaves returns up to count leaf values from start on, contiguous; fewer,
// or none, where Trillian has not integrated them yet.
func (l *Log) leaves(ctx context.Context, start, count uint64) ([][]byte, error) {
	if start > math.MaxInt64 || count > math.MaxInt64 {
		return nil, fmt.Errorf("leaves %d+%d: out of range", start, count)
	}
	resp, err := l.log.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{
		LogId: l.cfg.TreeID, StartIndex: int64(start), Count: int64(count),
	})
	if err != nil {
		return nil, fmt.Errorf("get leaves %d+%d: %w", start, count, err)
	}
	out := make([][]byte, 0, len(resp.GetLeaves()))
	for i, lf := range resp.GetLeaves() {
		if uint64(i) >= count || lf.GetLeafIndex() != int64(start)+int64(i) {
			return nil, fmt.Errorf("get leaves %d+%d: trillian returned leaf %d at position %d", start, count, lf.GetLeafIndex(), i)
		}
		out = append(out, lf.GetLeafValue())
	}
	return out, nil
}

// Leaves returns up to count integrated leaves from start on, in order;
// fewer, or none, where Trillian has not integrated them yet. Auditors and
// monitors use it to read the log back.
func (l *Log) Leaves(ctx context.Context, start, count uint64) ([][]byte, error) {
	return l.leaves(ctx, start, count)
}

// Leaf returns the leaf at index. The error wraps ErrNotIntegrated if
// Trillian has not integrated it yet.
func (l *Log) Leaf(ctx context.Context, index uint64) ([]byte, error) {
	leaves, err := l.leaves(ctx, index, 1)
	if err != nil {
		return nil, err
	}
	if len(leaves) == 0 {
		return nil, fmt.Errorf("leaf %d: %w", index, ErrNotIntegrated)
	}
	return leaves[0], nil
}

// Root returns the size and RFC 6962 root hash of the latest tree Trillian
// has integrated. Nothing vouches for it until Checkpoint signs it.
func (l *Log) Root(ctx context.Context) (size uint64, hash []byte, err error) {
	resp, err := l.log.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: l.cfg.TreeID})
	if err != nil {
		return 0, nil, fmt.Errorf("log root: %w", err)
	}
	root, err := unmarshalRoot(resp.GetSignedLogRoot())
	if err != nil {
		return 0, nil, err
	}
	return root.TreeSize, root.RootHash, nil
}

func unmarshalRoot(slr *trillian.SignedLogRoot) (*types.LogRootV1, error) {
	var root types.LogRootV1
	if err := root.UnmarshalBinary(slr.GetLogRoot()); err != nil {
		return nil, fmt.Errorf("log root: %w", err)
	}
	if len(root.RootHash) != sha256.Size {
		return nil, fmt.Errorf("log root: hash of %d bytes, want %d", len(root.RootHash), sha256.Size)
	}
	return &root, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of the leaf at index in
// the tree of the given size. The error wraps ErrNotIntegrated if Trillian
// has not reached size yet.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if index >= size || size > math.MaxInt64 {
		return nil, fmt.Errorf("inclusion proof of %d in %d: index out of range", index, size)
	}
	resp, err := l.log.GetInclusionProof(ctx, &trillian.GetInclusionProofRequest{
		LogId: l.cfg.TreeID, LeafIndex: int64(index), TreeSize: int64(size),
	})
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, size, err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, size, ErrNotIntegrated)
	}
	return resp.GetProof().GetHashes(), nil
}

// ConsistencyProof returns the RFC 6962 proof that the tree of size from is a
// prefix of the tree of size to. The error wraps ErrNotIntegrated if Trillian
// has not reached size to yet.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	if from > to || to > math.MaxInt64 {
		return nil, fmt.Errorf("consistency proof %d to %d: sizes out of range", from, to)
	}
	if from == 0 || from == to {
		return nil, nil // trivially consistent; Trillian refuses size 0
	}
	resp, err := l.log.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{
		LogId: l.cfg.TreeID, FirstTreeSize: int64(from), SecondTreeSize: int64(to),
	})
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d to %d: %w", from, to, err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("consistency proof %d to %d: %w", from, to, ErrNotIntegrated)
	}
	return resp.GetProof().GetHashes(), nil
}
