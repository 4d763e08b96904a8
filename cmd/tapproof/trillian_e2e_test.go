package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/simulate"
)

// TestLeafBehindTapproofsBackStopsSigning: Trillian is storage, not
// authority. A leaf appended to the log's tree directly, by anyone who
// reaches Trillian's gRPC port, at the next index, extends the last
// checkpoint; tapproof must still refuse to sign it, because it is not
// a leaf tapproof appended. /readyz fails with the evidence (the index,
// the leaf hash found) and the refusal is counted.
func TestLeafBehindTapproofsBackStopsSigning(t *testing.T) {
	st := localstack.ForTest(t)
	in := startServeConfig(t, testServeConfig(t, st, t.TempDir()))
	ctx := t.Context()
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 1, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	s := fleet.Sensors[0]
	if _, err := s.Publish(ctx, devicesOf(t, in).js(s), s.Lead(2, time.Now())); err != nil {
		t.Fatal(err)
	}
	size := uint64(len(fleet.Sensors)) + 1
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, "flint").Size; got != size {
			return fmt.Errorf("checkpoint size = %d, want %d", got, size)
		}
		return nil
	})
	if code, b := get(t, in.api+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s before the foreign leaf", code, b)
	}

	// A stranger on Trillian's port: no credentials, a plain client.
	conn, err := grpc.NewClient(st.TrillianAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	admin, logs := trillian.NewTrillianAdminClient(conn), trillian.NewTrillianLogClient(conn)
	trees, err := admin.ListTrees(ctx, &trillian.ListTreesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var tree int64
	for _, tr := range trees.GetTree() {
		if tr.GetDescription() == "tapproof flint" {
			tree = tr.GetTreeId()
		}
	}
	if tree == 0 {
		t.Fatalf("no tree of flint among %v", trees.GetTree())
	}
	foreign := []byte(`{"payloadType":"application/vnd.tapproof.reading.v1+json","payload":"e30=","signatures":[]}`)
	id := sha256.Sum256(foreign)
	resp, err := logs.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{LogId: tree, Leaves: []*trillian.LogLeaf{
		{LeafValue: foreign, LeafIndex: int64(size), LeafIdentityHash: id[:]},
	}})
	if err != nil {
		t.Fatalf("AddSequencedLeaves: %v", err)
	}
	if c := resp.GetResults()[0].GetStatus().GetCode(); c != 0 {
		t.Fatalf("AddSequencedLeaves: status %v", resp.GetResults()[0].GetStatus())
	}
	poll.Until(t, 30*time.Second, func() error {
		r, err := logs.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: tree})
		if err != nil {
			return err
		}
		var root types.LogRootV1
		if err := root.UnmarshalBinary(r.GetSignedLogRoot().GetLogRoot()); err != nil {
			return err
		}
		if root.TreeSize != size+1 {
			return fmt.Errorf("trillian tree size %d, want %d with the foreign leaf", root.TreeSize, size+1)
		}
		return nil
	})

	leafHash := fmt.Sprintf("%x", leafHashOf(foreign))
	poll.Until(t, 30*time.Second, func() error {
		code, b := get(t, in.api+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(string(b), fmt.Sprintf("index %d", size)) || !strings.Contains(string(b), leafHash) {
			return fmt.Errorf("/readyz = %d %s, want 503 naming index %d and the leaf hash %s", code, b, size, leafHash)
		}
		return nil
	})
	const refused = `tapproof_checkpoint_refused_total{log="flint",reason="foreign_leaf"}`
	if got := metricValue(t, in.api, refused); got != 1 {
		t.Errorf("%s = %v, want 1", refused, got)
	}
	// Nothing is signed over the foreign leaf, however long one waits.
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second) // ten checkpoint intervals
	defer cancel()
	<-waitCtx.Done()
	if got := logInfo(t, in.api, "flint").Size; got != size {
		t.Errorf("checkpoint size = %d after the foreign leaf, want %d: nothing signed over it", got, size)
	}
}

// leafHashOf is the RFC 6962 leaf hash: SHA-256(0x00 || leaf).
func leafHashOf(leaf []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	return h.Sum(nil)
}
