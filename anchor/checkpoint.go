package anchor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// DefaultCheckpointInterval is how often RunCheckpointer tries to sign a new
// checkpoint when given no interval.
const DefaultCheckpointInterval = 10 * time.Second

// CheckpointStore keeps the latest signed checkpoint of each log, the state
// the anchor builds every later checkpoint on. It must be durable: losing it
// lets the anchor sign a checkpoint that is not consistent with one a
// regulator already holds.
type CheckpointStore interface {
	// LatestCheckpoint returns the latest signed checkpoint stored for
	// origin, or nil and no error if there is none.
	LatestCheckpoint(ctx context.Context, origin string) ([]byte, error)
	// PutCheckpoint stores signed, the checkpoint of the tree of the given
	// size, as the latest for origin. It should refuse to replace a larger
	// checkpoint.
	PutCheckpoint(ctx context.Context, origin string, size uint64, signed []byte) error
}

// InconsistencyError reports that the tree Trillian serves is not an
// extension of the tree the last stored checkpoint committed to: the log was
// forked, rolled back or rewritten. It keeps the evidence.
type InconsistencyError struct {
	Origin     string
	Checkpoint []byte // the stored signed checkpoint
	OldSize    uint64
	OldRoot    []byte
	NewSize    uint64 // the tree Trillian serves now
	NewRoot    []byte
	Proof      [][]byte // the consistency proof Trillian gave, if any
	Err        error    // why the proof was refused
}

// Error summarises the evidence on one line.
func (e *InconsistencyError) Error() string {
	return fmt.Sprintf("log %s inconsistent: checkpoint of size %d root %x, log of size %d root %x: %v",
		e.Origin, e.OldSize, e.OldRoot, e.NewSize, e.NewRoot, e.Err)
}

// Unwrap returns the reason the proof was refused.
func (e *InconsistencyError) Unwrap() error { return e.Err }

// SignCheckpoint returns the C2SP tlog-checkpoint of the tree of the given
// size and root hash, signed as a note by signer, whose name is the origin.
func SignCheckpoint(signer note.Signer, size uint64, root []byte) ([]byte, error) {
	body := log.Checkpoint{Origin: signer.Name(), Size: size, Hash: root}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return signed, nil
}

// OpenCheckpoint verifies a signed checkpoint with the log's key and parses
// it. The origin must be the key's name. Cosignatures by other keys are
// ignored.
func OpenCheckpoint(signed []byte, logKey note.Verifier) (*log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, logKey.Name(), logKey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(cp.Hash) != rfc6962.DefaultHasher.Size() {
		return nil, fmt.Errorf("checkpoint: root hash of %d bytes, want %d", len(cp.Hash), rfc6962.DefaultHasher.Size())
	}
	return cp, nil
}

// Checkpoint signs a checkpoint of the latest integrated tree if it is larger
// than the latest checkpoint in store, and stores it. Trillian is storage,
// not authority, so it checks the tree first, twice. With a consistency
// proof from Trillian verified here, that the tree extends the stored
// checkpoint; if it does not, it signs nothing and returns an
// *InconsistencyError. And that the tree's root is the root of the leaves
// tapproof appended: those Append stored in this process, each hashed
// once, and for any index it did not see (before a restart, on another
// replica) the leaf src serves, src being the leaves as tapproof appends
// them (the journal); if Trillian holds any other leaf, at an index
// tapproof appended or one it did not, it signs nothing and returns a
// *ForeignLeafError. The check costs one hash per new leaf and, after a
// restart, one leaf and one inclusion proof from Trillian, proven against
// the stored checkpoint. With no stored checkpoint it signs the current
// tree, even an empty one, once its every leaf is checked. It returns the
// latest signed checkpoint and whether it signed a new one.
func (l *Log) Checkpoint(ctx context.Context, store CheckpointStore, src LeafSource) (signed []byte, grew bool, err error) {
	prevSigned, err := store.LatestCheckpoint(ctx, l.cfg.Origin)
	if err != nil {
		return nil, false, fmt.Errorf("latest checkpoint of %s: %w", l.cfg.Origin, err)
	}
	size, root, err := l.Root(ctx)
	if err != nil {
		return nil, false, err
	}
	prevSize, prevRoot := uint64(0), rfc6962.DefaultHasher.EmptyRoot()
	if prevSigned != nil {
		prev, err := OpenCheckpoint(prevSigned, l.cfg.Verifier)
		if err != nil {
			return nil, false, fmt.Errorf("stored %w", err)
		}
		prevSize, prevRoot = prev.Size, prev.Hash
		inconsistent := func(p [][]byte, err error) error {
			return &InconsistencyError{
				Origin: l.cfg.Origin, Checkpoint: prevSigned,
				OldSize: prev.Size, OldRoot: prev.Hash, NewSize: size, NewRoot: root,
				Proof: p, Err: err,
			}
		}
		switch {
		case size < prev.Size:
			return nil, false, inconsistent(nil, errors.New("the log is smaller than the checkpoint"))
		case size == prev.Size:
			if !bytes.Equal(root, prev.Hash) {
				return nil, false, inconsistent(nil, errors.New("same size, different root"))
			}
			return prevSigned, false, nil
		}
		p, err := l.ConsistencyProof(ctx, prev.Size, size)
		if err != nil {
			return nil, false, err
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, prev.Size, size, p, prev.Hash, root); err != nil {
			return nil, false, inconsistent(p, proofError(err))
		}
	}
	checked, err := l.checkAppended(ctx, src, prevSize, prevRoot, size, root)
	if ie, ok := errors.AsType[*InconsistencyError](err); ok {
		ie.Checkpoint = prevSigned
	}
	if err != nil {
		return nil, false, err
	}
	signed, err = SignCheckpoint(l.cfg.Signer, size, root)
	if err != nil {
		return nil, false, err
	}
	if err := store.PutCheckpoint(ctx, l.cfg.Origin, size, signed); err != nil {
		return nil, false, fmt.Errorf("store checkpoint of %s at %d: %w", l.cfg.Origin, size, err)
	}
	l.appended.commit(checked)
	return signed, true, nil
}

// CheckpointerHooks let the caller of RunCheckpointer observe it, for its
// metrics and logs. Nil fields are skipped.
type CheckpointerHooks struct {
	// Err receives each error the next tick tries again.
	Err func(error)
	// Tick is called after each attempt that did not fail, with the
	// checkpoint it signed, or nil if the tree had not grown.
	Tick func(signed []byte)
}

// RunCheckpointer calls Checkpoint at once and then every interval
// (DefaultCheckpointInterval if zero) until ctx is done, when it returns nil.
// Errors go to hooks.Err and the next tick tries again; an
// *InconsistencyError or a *ForeignLeafError is returned instead, because
// trying again cannot fix it: the log's checkpoints must stop there, and
// its evidence go to a person.
func (l *Log) RunCheckpointer(ctx context.Context, store CheckpointStore, src LeafSource, every time.Duration, hooks CheckpointerHooks) error {
	return runEvery(ctx, every, func(ctx context.Context) error {
		signed, grew, err := l.Checkpoint(ctx, store, src)
		if err == nil && hooks.Tick != nil {
			if !grew {
				signed = nil
			}
			hooks.Tick(signed)
		}
		return err
	}, hooks.Err)
}

func runEvery(ctx context.Context, every time.Duration, step func(context.Context) error, onErr func(error)) error {
	if every <= 0 {
		every = DefaultCheckpointInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if _, ok := errors.AsType[*InconsistencyError](err); ok {
				return err
			}
			if _, ok := errors.AsType[*ForeignLeafError](err); ok {
				return err
			}
			if onErr != nil {
				onErr(err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
