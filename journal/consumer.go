package journal

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Resume returns the durable consumer cfg.Durable of stream, creating it
// with cfg if it does not exist.
//
// If it exists and had messages in flight, as after a crash, it is
// recreated to start at its acknowledgement floor. Otherwise JetStream
// would deliver new messages at once and the ones in flight only after their
// ack wait: an ordered sink acknowledging cumulatively (AckAll) would then
// acknowledge the in-flight messages without having stored them, and a
// device's old reading could arrive after its newer ones.
//
// A work-queue stream allows only DeliverAll consumers. It also keeps only
// what is unacknowledged, so there the recreated consumer starts at the
// stream's first message, which is the oldest one in flight.
func Resume(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = js.CreateConsumer(ctx, stream, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
		}
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	info := c.CachedInfo()
	if info.NumAckPending == 0 {
		return c, nil
	}
	cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
	cfg.OptStartSeq = info.AckFloor.Stream + 1
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: reset: %w", cfg.Durable, err)
	}
	if s.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
		cfg.OptStartSeq = 0
	}
	if err := js.DeleteConsumer(ctx, stream, cfg.Durable); err != nil {
		return nil, fmt.Errorf("consumer %s: reset: %w", cfg.Durable, err)
	}
	c, err = js.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: reset: %w", cfg.Durable, err)
	}
	return c, nil
}
