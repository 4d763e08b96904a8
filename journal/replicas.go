package journal

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Replicated returns js with every stream and key-value bucket created or
// updated through it given n replicas: tapproof's own (the journals, the
// checkpoints, the registry, leases) and those of the packages it hands js
// to (alerts, residents' subscriptions and notices). Opening them through
// it raises, or lowers, the replicas of existing ones, which JetStream does
// in place. On a cluster, a message is acknowledged once a quorum of the
// stream's replicas has stored it, so a reading a sensor was answered for
// survives the loss of any minority of servers.
func Replicated(js jetstream.JetStream, n int) jetstream.JetStream {
	return replicated{JetStream: js, n: n}
}

type replicated struct {
	jetstream.JetStream
	n int
}

func (r replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.n
	return r.JetStream.CreateStream(ctx, cfg)
}

func (r replicated) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.n
	return r.JetStream.UpdateStream(ctx, cfg)
}

func (r replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.n
	return r.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (r replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.n
	return r.JetStream.CreateKeyValue(ctx, cfg)
}

func (r replicated) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.n
	return r.JetStream.UpdateKeyValue(ctx, cfg)
}

func (r replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.n
	return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
}
