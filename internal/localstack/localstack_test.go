package localstack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/client"
	"github.com/google/trillian/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
)

// TestStack starts a real stack, uses every component, stops and restarts
// single components, then closes it and starts again on the same directory
// to check that the data survived.
func TestStack(t *testing.T) {
	s := localstack.ForTest(t)
	ctx := t.Context()

	tree := createTree(ctx, t, s.TrillianAddr)
	addLeaf(ctx, t, s.TrillianAddr, tree, []byte("first reading"))
	if dbs := influxDatabases(ctx, t, s.InfluxURL); !slices.Contains(dbs, s.InfluxDatabase) {
		t.Fatalf("SHOW DATABASES = %q, want %q in it", dbs, s.InfluxDatabase)
	}

	// The running log server reconnects to a restarted database.
	if err := s.Restart(ctx, localstack.Postgres); err != nil {
		t.Fatalf("Restart(Postgres) = %v", err)
	}
	poll.Until(t, 30*time.Second, func() error {
		_, err := listTrees(ctx, s.TrillianAddr)
		return err
	})
	for _, c := range []localstack.Component{localstack.InfluxDB, localstack.LogSigner} {
		if err := s.Restart(ctx, c); err != nil {
			t.Fatalf("Restart(%v) = %v", c, err)
		}
	}
	if err := s.Stop(localstack.LogServer); err != nil {
		t.Fatalf("Stop(LogServer) = %v", err)
	}
	if _, err := listTrees(ctx, s.TrillianAddr); err == nil {
		t.Errorf("ListTrees with the log server stopped succeeded, want an error")
	}
	if err := s.Restart(ctx, localstack.LogServer); err != nil {
		t.Fatalf("Restart(LogServer) = %v", err)
	}
	addLeaf(ctx, t, s.TrillianAddr, tree, []byte("second reading"))

	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if err := s.Restart(ctx, localstack.InfluxDB); err == nil {
		t.Errorf("Restart after Close succeeded, want an error")
	}

	begin := time.Now()
	s2, err := localstack.Start(ctx, localstack.Config{Dir: s.Dir})
	if err != nil {
		t.Fatalf("Start on the same Dir: %v", err)
	}
	t.Cleanup(func() { s2.Close() })
	t.Logf("second Start on the same Dir took %v", time.Since(begin))

	ids, err := listTrees(ctx, s2.TrillianAddr)
	if err != nil {
		t.Fatalf("ListTrees after restart: %v", err)
	}
	if !slices.Contains(ids, tree.TreeId) {
		t.Errorf("ListTrees after restart = %v, want tree %d in it", ids, tree.TreeId)
	}
	if got := treeSize(ctx, t, s2.TrillianAddr, tree.TreeId); got != 2 {
		t.Errorf("tree size after restart = %d, want 2", got)
	}
	if dbs := influxDatabases(ctx, t, s2.InfluxURL); !slices.Contains(dbs, s2.InfluxDatabase) {
		t.Errorf("SHOW DATABASES after restart = %q, want %q in it", dbs, s2.InfluxDatabase)
	}
}

// addLeaf appends data to the preordered log and waits until the signer
// has integrated it.
func addLeaf(ctx context.Context, t *testing.T, addr string, tree *trillian.Tree, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	logClient := trillian.NewTrillianLogClient(dial(t, addr))
	size := treeSize(ctx, t, addr, tree.TreeId)
	lc, err := client.NewFromTree(logClient, tree, types.LogRootV1{})
	if err != nil {
		t.Fatalf("client.NewFromTree() = %v", err)
	}
	if err := lc.AddSequencedLeaves(ctx, map[int64][]byte{int64(size): data}); err != nil {
		t.Fatalf("AddSequencedLeaves(%d) = %v", size, err)
	}
	if err := lc.WaitForInclusion(ctx, data); err != nil {
		t.Fatalf("WaitForInclusion(%q) = %v", data, err)
	}
}

// treeSize returns the size of the log's latest root.
func treeSize(ctx context.Context, t *testing.T, addr string, id int64) uint64 {
	t.Helper()
	resp, err := trillian.NewTrillianLogClient(dial(t, addr)).GetLatestSignedLogRoot(ctx,
		&trillian.GetLatestSignedLogRootRequest{LogId: id})
	if err != nil {
		t.Fatalf("GetLatestSignedLogRoot() = %v", err)
	}
	var root types.LogRootV1
	if err := root.UnmarshalBinary(resp.GetSignedLogRoot().GetLogRoot()); err != nil {
		t.Fatalf("LogRootV1.UnmarshalBinary() = %v", err)
	}
	return root.TreeSize
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%q) = %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func createTree(ctx context.Context, t *testing.T, addr string) *trillian.Tree {
	t.Helper()
	conn := dial(t, addr)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tree, err := client.CreateAndInitTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState:       trillian.TreeState_ACTIVE,
		TreeType:        trillian.TreeType_PREORDERED_LOG,
		DisplayName:     "localstack test",
		MaxRootDuration: durationpb.New(time.Hour),
	}}, trillian.NewTrillianAdminClient(conn), trillian.NewTrillianLogClient(conn))
	if err != nil {
		t.Fatalf("CreateAndInitTree() = %v", err)
	}
	return tree
}

func listTrees(ctx context.Context, addr string) ([]int64, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := trillian.NewTrillianAdminClient(conn).ListTrees(ctx, &trillian.ListTreesRequest{})
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, tree := range resp.Tree {
		ids = append(ids, tree.TreeId)
	}
	return ids, nil
}

// influxDatabases checks /ping and returns the names SHOW DATABASES lists.
func influxDatabases(ctx context.Context, t *testing.T, base string) []string {
	t.Helper()
	get := func(path string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get("/ping"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET /ping = %s, want 204", resp.Status)
	}
	resp := get("/query?" + url.Values{"q": {"SHOW DATABASES"}}.Encode())
	var r struct {
		Results []struct {
			Series []struct{ Values [][]string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("SHOW DATABASES: %v", err)
	}
	var names []string
	for _, res := range r.Results {
		for _, s := range res.Series {
			for _, v := range s.Values {
				names = append(names, v...)
			}
		}
	}
	return names
}
