package journal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// Checkpoints stores the signed checkpoints of one utility's log. It
// satisfies anchor's checkpoint store.
//
// Publishing is guarded by optimistic concurrency: a checkpoint is stored
// only if the latest one is still the one LatestCheckpoint last returned, so
// two writers can never interleave an older checkpoint after a newer one.
type Checkpoints struct {
	js      jetstream.JetStream
	utility string
	subj    string

	mu      sync.Mutex
	lastSeq uint64 // stream sequence of the latest checkpoint seen
}

// Checkpoints returns the store of the checkpoints the anchor signs for
// utility's log, on tapproof.checkpoints.<utility>.
func (j *Journal) Checkpoints(utility string) *Checkpoints {
	return &Checkpoints{js: j.js, utility: utility, subj: CheckpointsSubject + "." + utility}
}

// WitnessedCheckpoints returns the store of the checkpoints of utility's
// log whose witnesses' cosignatures met the witness policy, each with those
// cosignatures, on tapproof.checkpoints.<utility>.witnessed. They are some
// of the anchor's checkpoints, later and with more signatures.
func (j *Journal) WitnessedCheckpoints(utility string) *Checkpoints {
	return &Checkpoints{js: j.js, utility: utility, subj: CheckpointsSubject + "." + utility + "." + witnessedToken}
}

// witnessedToken ends the subject of witnessed checkpoints.
const witnessedToken = "witnessed"

// subject is the one subject of every checkpoint of the store; the size is
// in a header.
func (c *Checkpoints) subject() string { return c.subj }

// LatestCheckpoint returns the newest signed checkpoint, or nil if none.
func (c *Checkpoints) LatestCheckpoint(ctx context.Context, _ string) ([]byte, error) {
	m, err := c.get(ctx, 0)
	if errors.Is(err, tapproof.ErrNotFound) {
		c.setLast(0)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.setLast(m.Sequence)
	return m.Data, nil
}

func (c *Checkpoints) setLast(seq uint64) {
	c.mu.Lock()
	c.lastSeq = seq
	c.mu.Unlock()
}

// Checkpoint returns the signed checkpoint published at size.
func (c *Checkpoints) Checkpoint(ctx context.Context, size uint64) ([]byte, error) {
	m, err := c.get(ctx, size)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// get returns the checkpoint of size, or the latest if size is 0.
func (c *Checkpoints) get(ctx context.Context, size uint64) (*jetstream.RawStreamMsg, error) {
	s, err := c.js.Stream(ctx, CheckpointsStream)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	var m *jetstream.RawStreamMsg
	if size == 0 {
		m, err = s.GetLastMsgForSubject(ctx, c.subject())
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			err = tapproof.ErrNotFound
		}
	} else {
		m, err = search(ctx, s, c.subject(), HeaderSize, size, anyMsg)
	}
	if errors.Is(err, tapproof.ErrNotFound) {
		return nil, fmt.Errorf("checkpoint %d of %s: %w", size, c.utility, tapproof.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d of %s: %w", size, c.utility, err)
	}
	return m, nil
}

// PutCheckpoint publishes a signed checkpoint of size. Witnesses and
// monitors may subscribe to tapproof.checkpoints.> to follow every log.
// It fails with tapproof.ErrConflict if another checkpoint was published since
// LatestCheckpoint was last called.
func (c *Checkpoints) PutCheckpoint(ctx context.Context, _ string, size uint64, signed []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &nats.Msg{
		Subject: c.subject(),
		Data:    signed,
		Header: nats.Header{
			HeaderSize:                          []string{strconv.FormatUint(size, 10)},
			jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(c.lastSeq, 10)},
		},
	}
	ack, err := c.js.PublishMsg(ctx, m)
	if wrongLastSequence(err) {
		return fmt.Errorf("publish checkpoint %d of %s: another checkpoint was published first: %w", size, c.utility, tapproof.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("publish checkpoint: %w", err)
	}
	c.lastSeq = ack.Sequence
	return nil
}
