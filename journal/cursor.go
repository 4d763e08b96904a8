package journal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cursor is a durable position in a utility's journal: a JetStream durable
// pull consumer. Each sink (the log, InfluxDB) has its own, so one slow or
// failed sink never holds another back.
type Cursor struct {
	utility string
	cons    jetstream.Consumer
}

// Cursor returns the durable cursor name in utility's journal, creating it
// at the journal's start if new.
func (j *Journal) Cursor(ctx context.Context, utility, name string) (*Cursor, error) {
	if _, err := j.logStream(ctx, utility, false); err != nil {
		return nil, err
	}
	cons, err := Resume(ctx, j.js, LogStreamName(utility), jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "tapproof sink " + name,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       2 * time.Minute,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 50_000,
		MaxWaiting:    8,
	})
	if err != nil {
		return nil, fmt.Errorf("cursor %s of %s: %w", name, utility, err)
	}
	return &Cursor{utility: utility, cons: cons}, nil
}

// Batch is a run of journal entries fetched together, in index order.
type Batch struct {
	Entries []Entry
	msgs    []jetstream.Msg
}

// Next fetches up to max entries, waiting at most wait for the first.
// It returns an empty batch if none arrived.
func (c *Cursor) Next(ctx context.Context, max int, wait time.Duration) (*Batch, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	mb, err := c.cons.Fetch(max, jetstream.FetchContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("cursor fetch: %w", err)
	}
	b := &Batch{}
	for m := range mb.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("cursor metadata: %w", err)
		}
		e, err := entryOf(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data())
		if err != nil {
			// A journal message tapproof did not write: leave it for an
			// operator, never skip it silently.
			_ = m.Term()
			return nil, err
		}
		b.Entries = append(b.Entries, e)
		b.msgs = append(b.msgs, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		return b, fmt.Errorf("cursor fetch: %w", err)
	}
	return b, nil
}

// Ack records that every entry of the batch is durable in the sink.
func (b *Batch) Ack(ctx context.Context) error {
	if len(b.msgs) == 0 {
		return nil
	}
	// AckAll: acknowledging the last acknowledges the batch.
	if err := b.msgs[len(b.msgs)-1].DoubleAck(ctx); err != nil {
		return fmt.Errorf("cursor ack: %w", err)
	}
	return nil
}

// InProgress tells JetStream the batch is still being worked on, so that
// it is not redelivered while a sink retries it.
func (b *Batch) InProgress() {
	for _, m := range b.msgs {
		_ = m.InProgress()
	}
}

// Pending returns how many entries wait for this cursor's sink.
func (c *Cursor) Pending(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cursor info: %w", err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// Sink receives batches of journal entries. It must be idempotent: after a
// crash, entries it already stored may be delivered again.
type Sink func(ctx context.Context, entries []Entry) error

// Drain feeds the cursor's entries to sink, in index order, until ctx is
// done. A batch the sink refuses is retried in place with exponential
// back-off (reported to onErr) and nothing after it is fetched until it is
// stored: acknowledging a later entry would acknowledge it too.
func (c *Cursor) Drain(ctx context.Context, max int, sink Sink, onErr func(error)) error {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	for ctx.Err() == nil {
		b, err := c.Next(ctx, max, time.Second)
		if err != nil {
			onErr(err)
			sleep(ctx, minBackoff)
			continue
		}
		if len(b.Entries) == 0 {
			continue
		}
		for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
			err := sink(ctx, b.Entries)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil // unacknowledged: delivered again next time
			}
			onErr(err)
			b.InProgress()
			sleep(ctx, backoff)
		}
		if err := b.Ack(ctx); err != nil && ctx.Err() == nil {
			// The entries are stored; a redelivery is absorbed by the
			// sink's idempotence.
			onErr(err)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
