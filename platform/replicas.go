package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/natsext"
)

// replicas returns how many replicas tapproof's streams and buckets get on
// the NATS servers sys is connected to: want if the cluster has that many
// servers, or, for want 0, 1 on a single server and 3 on a cluster of three
// or more. A cluster of two has no majority to lose a server to: it is
// refused unless want says 1 or 2.
func replicas(ctx context.Context, sys *nats.Conn, want int) (int, error) {
	n, err := clusterSize(ctx, sys)
	if err != nil {
		return 0, err
	}
	switch {
	case want < 0:
		return 0, fmt.Errorf("--replicas %d: want 1 or more", want)
	case want > n:
		return 0, fmt.Errorf("--replicas %d, but the NATS cluster has %d server(s) with JetStream", want, n)
	case want > 0:
		return want, nil
	case n == 1:
		return 1, nil
	case n >= 3:
		return 3, nil
	}
	return 0, fmt.Errorf("the NATS cluster has %d servers: say how many replicas with --replicas (3 servers or more keep a majority when one is lost)", n)
}

// clusterSize returns how many servers the JetStream cluster sys is
// connected to has (1 for a server on its own), once the cluster has
// elected its meta leader: a server just started may not have met the
// others yet, and tapproof must not take the part it sees for the whole.
func clusterSize(ctx context.Context, sys *nats.Conn) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		n, err := pingJetStream(ctx, sys)
		if err != nil || n > 0 {
			return n, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("count the NATS servers: the JetStream cluster has no leader after 30 s")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// pingJetStream asks every server for its JetStream state: the cluster's
// size once it has a meta leader, 0 if it has none yet.
func pingJetStream(ctx context.Context, sys *nats.Conn) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msgs, err := natsext.RequestMany(ctx, sys, "$SYS.REQ.SERVER.PING.JSZ", nil, natsext.RequestManyStall(500*time.Millisecond))
	if err != nil {
		return 0, fmt.Errorf("count the NATS servers: %w", err)
	}
	answered := 0
	for m, err := range msgs {
		if err != nil {
			break
		}
		answered++
		var resp struct {
			Data struct {
				Meta *struct {
					Leader string `json:"leader"`
					Size   int    `json:"cluster_size"`
				} `json:"meta_cluster"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return 0, fmt.Errorf("count the NATS servers: %w", err)
		}
		switch meta := resp.Data.Meta; {
		case meta == nil:
			return 1, nil // not clustered
		case meta.Leader != "":
			return meta.Size, nil
		}
	}
	if answered == 0 {
		return 0, fmt.Errorf("count the NATS servers: none answered")
	}
	return 0, nil
}
