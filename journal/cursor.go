package journal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cursor is a durable position in a utility's journal: a JetStream durable
// pull consumer. Each sink (the log, InfluxDB) has its own, so one slow or
// failed sink never holds another back.
type Cursor struct {
	utility string
	js      jetstream.JetStream
	name    string
	reopen  func(context.Context) (jetstream.Consumer, error)
	cons    jetstream.Consumer        // nil after a failure: reopened by Next
	it      jetstream.MessagesContext // opened by Next
	// delivered is the consumer sequence of the last delivery the flow
	// handed over; the next must follow it (see Next).
	delivered uint64
	entry     func(subject string, streamSeq uint64, hdr nats.Header, data []byte) Entry
}

// linger is how long Next keeps adding messages that are already arriving
// to a batch after the first: large batches under load, a single entry's
// latency when idle.
const linger = 5 * time.Millisecond

// Cursor returns the durable cursor name in utility's journal, creating it
// at the journal's start if new. Given kinds, the cursor delivers only
// entries of those kinds (still in index order); the kinds of an existing
// cursor cannot be changed.
func (j *Journal) Cursor(ctx context.Context, utility, name string, kinds ...Kind) (*Cursor, error) {
	if _, err := j.logStream(ctx, utility, false); err != nil {
		return nil, err
	}
	var filters []string
	for _, k := range kinds {
		filters = append(filters, logSubject+"."+utility+"."+string(k)+".*")
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "tapproof sink " + name,
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        2 * time.Minute,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxAckPending:  50_000,
		MaxWaiting:     8,
		FilterSubjects: filters,
	}
	c := &Cursor{utility: utility, js: j.js, name: name, entry: j.entry, reopen: func(ctx context.Context) (jetstream.Consumer, error) {
		cons, err := Resume(ctx, j.js, LogStreamName(utility), cfg)
		if err != nil {
			return nil, fmt.Errorf("cursor %s of %s: %w", name, utility, err)
		}
		return cons, nil
	}}
	var err error
	if c.cons, err = c.reopen(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Batch is a run of journal entries fetched together, in index order.
type Batch struct {
	Entries []Entry
	msgs    []jetstream.Msg
}

// Next fetches up to max entries, waiting at most wait for the first.
// It returns an empty batch if none arrived.
func (c *Cursor) Next(ctx context.Context, max int, wait time.Duration) (*Batch, error) {
	if c.cons == nil {
		// After a broken flow: resuming at the acknowledgement floor brings
		// back first what the broken flow had delivered.
		cons, err := c.reopen(ctx)
		if err != nil {
			return nil, err
		}
		c.cons = cons
	}
	if c.it == nil {
		it, err := c.cons.Messages(jetstream.PullMaxMessages(2 * max))
		if err != nil {
			c.cons = nil
			return nil, fmt.Errorf("cursor: %w", err)
		}
		c.it, c.delivered = it, c.cons.CachedInfo().Delivered.Consumer
	}
	b := &Batch{}
	first, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for opt := jetstream.NextContext(first); len(b.msgs) < max; opt = jetstream.NextMaxWait(linger) {
		m, err := c.it.Next(opt)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.Canceled) {
				return b, nil
			}
			// The flow is broken (consumer deleted, connection closed):
			// messages it had delivered but not handed out would come back
			// only after their ack wait, so reopen at the ack floor.
			c.it.Stop()
			c.it, c.cons = nil, nil
			if len(b.msgs) > 0 {
				return b, nil
			}
			return nil, fmt.Errorf("cursor next: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("cursor metadata: %w", err)
		}
		if meta.Sequence.Consumer != c.delivered+1 {
			// JetStream delivered something this flow never received:
			// lost in flight when a server or the consumer's leader went
			// away. Acknowledging m would acknowledge it unstored (AckAll),
			// so the cursor starts again at its acknowledgement floor and
			// m comes again after it.
			c.it.Stop()
			c.it, c.cons = nil, nil
			return b, nil
		}
		c.delivered = meta.Sequence.Consumer
		b.Entries = append(b.Entries, c.entry(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data()))
		b.msgs = append(b.msgs, m)
	}
	return b, nil
}

// Close stops the cursor's message flow; unacknowledged entries are
// delivered again to the next cursor of the same name.
func (c *Cursor) Close() {
	if c.it != nil {
		c.it.Stop()
		c.it = nil
	}
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

// Pending returns how many entries wait for this cursor's sink. It may be
// called while another goroutine drains the cursor.
func (c *Cursor) Pending(ctx context.Context) (uint64, error) {
	p, err := c.Progress(ctx)
	return p.Pending, err
}

// CursorProgress returns the progress of utility's cursor name, which
// another goroutine or replica may be draining: how much waits for its sink,
// and the acknowledgement floor below which every entry is in the sink
// (Done, a stream sequence: entries of index < Done).
func (j *Journal) CursorProgress(ctx context.Context, utility, name string) (Progress, error) {
	return consumerProgress(ctx, j.js, LogStreamName(utility), name)
}

// Progress returns how much work waits for this cursor's sink and how far
// it got. It may be called while another goroutine drains the cursor.
func (c *Cursor) Progress(ctx context.Context) (Progress, error) {
	return consumerProgress(ctx, c.js, LogStreamName(c.utility), c.name)
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
	defer c.Close()
	idleSince := time.Now()
	for ctx.Err() == nil {
		b, err := c.Next(ctx, max, time.Second)
		if err != nil {
			onErr(err)
			sleep(ctx, minBackoff)
			continue
		}
		if len(b.Entries) == 0 {
			if time.Since(idleSince) >= strandedCheck {
				idleSince = time.Now()
				c.unstrand(ctx)
			}
			continue
		}
		idleSince = time.Now()
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
			// sink's idempotence. JetStream would redeliver them only
			// after their ack wait, and the last batch has no later one
			// whose acknowledgement covers it, so the cursor starts again
			// at its acknowledgement floor now.
			onErr(err)
			c.Close()
			c.cons = nil
		}
	}
	return nil
}

// strandedCheck is how long a cursor waits for entries before it asks
// whether JetStream holds some delivered to nobody.
const strandedCheck = 5 * time.Second

// unstrand starts the cursor again at its acknowledgement floor if, while
// it has been idle and holds nothing, its consumer has entries waiting:
// deliveries waiting for acknowledgement went to a flow that is gone (a
// pull request still open on a server after its cursor stopped, or lost in
// flight) and would come back only after their ack wait; undelivered
// entries mean the flow itself stopped without saying so (its pull
// requests on a server that lost the consumer's leadership). Either would
// hold the sink back for minutes.
func (c *Cursor) unstrand(ctx context.Context) {
	if c.cons == nil {
		return
	}
	info, err := c.cons.Info(ctx)
	if err != nil || info.NumAckPending == 0 && info.NumPending == 0 {
		return
	}
	c.Close()
	c.cons = nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
