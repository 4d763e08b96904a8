package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// connzReply is the part of a server's CONNZ answer Disconnect reads.
type connzReply struct {
	Server struct {
		ID string `json:"id"`
	} `json:"server"`
	Data struct {
		Connections []struct {
			CID uint64 `json:"cid"`
		} `json:"connections"`
	} `json:"data"`
	Error *struct {
		Description string `json:"description"`
	} `json:"error"`
}

// Disconnect closes every connection of party on every server of the
// cluster, through sys, a connection of the system account. It returns how
// many it closed. A party that reconnects goes through the callout again,
// which refuses it once it is revoked.
func Disconnect(ctx context.Context, sys *nats.Conn, p Party) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	inbox := sys.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := sys.ChanSubscribe(inbox, replies)
	if err != nil {
		return 0, fmt.Errorf("disconnect %s: %w", p.Name(), err)
	}
	defer sub.Unsubscribe()
	q, _ := json.Marshal(map[string]any{"user": p.Name(), "acc": p.account(), "limit": 1024})
	if err := sys.PublishRequest("$SYS.REQ.SERVER.PING.CONNZ", inbox, q); err != nil {
		return 0, fmt.Errorf("disconnect %s: %w", p.Name(), err)
	}
	// Every server answers; wait a little after the last answer for the
	// slower ones of a cluster.
	var kicks []struct {
		server string
		cid    uint64
	}
	quiet := time.NewTimer(500 * time.Millisecond)
	defer quiet.Stop()
collect:
	for {
		select {
		case m := <-replies:
			var r connzReply
			if json.Unmarshal(m.Data, &r) != nil || r.Error != nil {
				continue
			}
			for _, c := range r.Data.Connections {
				kicks = append(kicks, struct {
					server string
					cid    uint64
				}{r.Server.ID, c.CID})
			}
			quiet.Reset(200 * time.Millisecond)
		case <-quiet.C:
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	n := 0
	for _, k := range kicks {
		b, _ := json.Marshal(map[string]uint64{"cid": k.cid})
		m, err := sys.RequestWithContext(ctx, "$SYS.REQ.SERVER."+k.server+".KICK", b)
		if err != nil {
			return n, fmt.Errorf("disconnect %s: kick %d: %w", p.Name(), k.cid, err)
		}
		var r connzReply
		if json.Unmarshal(m.Data, &r) == nil && r.Error != nil {
			return n, fmt.Errorf("disconnect %s: kick %d: %s", p.Name(), k.cid, r.Error.Description)
		}
		n++
	}
	return n, nil
}
