package anchor_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/trillian"
	"github.com/google/trillian/extension"
	trillianlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/server/admin"
	"github.com/google/trillian/server/interceptor"
	"github.com/google/trillian/storage/postgresql"
	"github.com/google/trillian/storage/postgresql/testdbpgx"
	"github.com/google/trillian/util/clock"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
)

// Trillian's memory storage does not implement AddSequencedLeaves, so these
// tests need Trillian on PostgreSQL. They run when either is set:
//
//	TAPPROOF_TRILLIAN_ADDR  host:port of a running trillian_log_server (with
//	                        trillian_log_signer) on PostgreSQL
//	TEST_POSTGRESQL_URI     a PostgreSQL server, e.g.
//	                        postgresql:///postgres?host=127.0.0.1&port=5432&user=postgres;
//	                        each test gets a fresh database and an in-process
//	                        Trillian log server and sequencer
//
// and otherwise start a real log server and signer on PostgreSQL with
// internal/localstack (skipped in -short mode).
const trillianAddrEnv = "TAPPROOF_TRILLIAN_ADDR"

func trillianForTest(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv(trillianAddrEnv); addr != "" {
		return addr
	}
	if os.Getenv(testdbpgx.PostgreSQLURIEnv) != "" {
		return inProcessTrillian(t)
	}
	// Memory storage cannot do AddSequencedLeaves: the real log server and
	// signer on PostgreSQL, started for this test.
	return localstack.ForTest(t).TrillianAddr
}

// inProcessTrillian runs a Trillian log server and sequencer on a fresh
// PostgreSQL database, with the signer settings of the deployment.
func inProcessTrillian(t testing.TB) string {
	t.Helper()
	db, dbDone, err := testdbpgx.NewTrillianDB(context.Background(), testdbpgx.DriverPostgreSQL)
	if err != nil {
		t.Fatalf("create Trillian database: %v", err)
	}
	t.Cleanup(func() { dbDone(context.Background()) })
	registry := extension.Registry{
		AdminStorage: postgresql.NewAdminStorage(db),
		LogStorage:   postgresql.NewLogStorage(db, nil),
		QuotaManager: quota.Noop(),
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(interceptor.ErrorWrapper))
	trillian.RegisterTrillianAdminServer(srv, admin.New(registry, nil))
	trillian.RegisterTrillianLogServer(srv, server.NewTrillianLogRPCServer(registry, clock.System))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sequencer := trillianlog.NewOperationManager(trillianlog.OperationInfo{
		Registry:    registry,
		BatchSize:   1000,
		NumWorkers:  1,
		RunInterval: 100 * time.Millisecond,
		TimeSource:  clock.System,
	}, trillianlog.NewSequencerManager(registry, 0))
	var wg sync.WaitGroup
	wg.Go(func() { sequencer.OperationLoop(ctx) })
	wg.Go(func() { _ = srv.Serve(lis) })
	t.Cleanup(func() {
		cancel()
		srv.Stop()
		wg.Wait()
	})
	return lis.Addr().String()
}

func waitForSize(t testing.TB, l *anchor.Log, size uint64) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		got, _, err := l.Root(context.Background())
		if err != nil {
			return err
		}
		if got < size {
			return fmt.Errorf("log size %d, want %d", got, size)
		}
		return nil
	})
}

// memStore is a CheckpointStore in memory.
type memStore struct {
	mu   sync.Mutex
	cps  map[string][]byte
	size map[string]uint64
	puts int
}

func newMemStore() *memStore {
	return &memStore{cps: map[string][]byte{}, size: map[string]uint64{}}
}

func (s *memStore) LatestCheckpoint(_ context.Context, origin string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cps[origin], nil
}

func (s *memStore) PutCheckpoint(_ context.Context, origin string, size uint64, signed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cps[origin]; ok && size < s.size[origin] {
		return fmt.Errorf("checkpoint of size %d would replace one of size %d", size, s.size[origin])
	}
	s.cps[origin], s.size[origin] = signed, size
	s.puts++
	return nil
}

func (s *memStore) latest(origin string) (uint64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size[origin], s.puts
}

type trillianEnv struct {
	addr     string
	client   *anchor.Client
	signer   note.Signer
	verifier note.Verifier
}

func newTrillianEnv(t *testing.T) *trillianEnv {
	t.Helper()
	addr := trillianForTest(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := anchor.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, v := newLogKey(t)
	return &trillianEnv{addr: addr, client: c, signer: s, verifier: v}
}

// newLog creates a tree and returns its Log, signing with the env's key.
func (e *trillianEnv) newLog(t *testing.T, batchSize int) *anchor.Log {
	t.Helper()
	id, err := e.client.CreateTree(t.Context(), "tapproof test "+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.client.Log(anchor.LogConfig{TreeID: id, Signer: e.signer, Verifier: e.verifier, BatchSize: batchSize})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// readings returns n signed readings of one device, with an enrollment first.
func readings(t testing.TB, key ed25519.PrivateKey, device string, n int) [][]byte {
	out := [][]byte{signEnrollment(t, key, device)}
	for i := 1; i < n; i++ {
		out = append(out, signReading(t, key, testReading(device, uint64(i))))
	}
	return out
}

// journaled serves leaves as the journal would, from index 0: what the
// checkpointer checks a tree against where this Log did not append.
func journaled(leaves [][]byte) anchor.LeafSource {
	return pages(func(start, count uint64) []tapproof.Leaf {
		if start >= uint64(len(leaves)) {
			return nil
		}
		return toEntries(start, leaves[start:min(start+count, uint64(len(leaves)))])
	})
}

func toEntries(first uint64, leaves [][]byte) []tapproof.Leaf {
	es := make([]tapproof.Leaf, len(leaves))
	for i, l := range leaves {
		es[i] = tapproof.Leaf{Index: first + uint64(i), Bytes: l}
	}
	return es
}

func TestTrillianAppend(t *testing.T) {
	env := newTrillianEnv(t)
	ctx := t.Context()
	l := env.newLog(t, 0)

	size, root, err := l.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size != 0 || !bytes.Equal(root, rfc6962.DefaultHasher.EmptyRoot()) {
		t.Errorf("Root() of a new tree = %d, %x; want 0, %x", size, root, rfc6962.DefaultHasher.EmptyRoot())
	}

	const n = 1234
	leaves := readings(t, newDeviceKey(t), "d1", n)
	mem := testonly.New(rfc6962.DefaultHasher)
	mem.AppendData(leaves...)

	start := time.Now()
	if err := l.Append(ctx, toEntries(0, leaves)); err != nil {
		t.Fatalf("Append() = %v", err)
	}
	appended := time.Since(start)
	waitForSize(t, l, n)
	t.Logf("Append of %d leaves (batches of %d) took %v; integrated after %v", n, anchor.DefaultBatchSize, appended, time.Since(start))

	size, root, err = l.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size != n || !bytes.Equal(root, mem.Hash()) {
		t.Fatalf("Root() = %d, %x; want %d, %x", size, root, n, mem.Hash())
	}

	t.Run("leaves and proofs", func(t *testing.T) {
		for _, i := range []uint64{0, 1, 511, n - 1} {
			got, err := l.Leaf(ctx, i)
			if err != nil || !bytes.Equal(got, leaves[i]) {
				t.Errorf("Leaf(%d) = %.40q, %v; want %.40q", i, got, err, leaves[i])
			}
			p, err := l.InclusionProof(ctx, i, n)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d) = %v", i, n, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, n, rfc6962.DefaultHasher.HashLeaf(leaves[i]), p, mem.Hash()); err != nil {
				t.Errorf("InclusionProof(%d, %d) does not verify: %v", i, n, err)
			}
		}
		for _, from := range []uint64{1, 100, 512, n} {
			p, err := l.ConsistencyProof(ctx, from, n)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d) = %v", from, n, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, n, p, mem.HashAt(from), mem.Hash()); err != nil {
				t.Errorf("ConsistencyProof(%d, %d) does not verify: %v", from, n, err)
			}
		}
		if p, err := l.ConsistencyProof(ctx, 0, n); err != nil || len(p) != 0 {
			t.Errorf("ConsistencyProof(0, %d) = %x, %v; want empty", n, p, err)
		}
		if _, err := l.Leaf(ctx, n+10); !errors.Is(err, anchor.ErrNotIntegrated) {
			t.Errorf("Leaf(beyond) = %v, want ErrNotIntegrated", err)
		}
		if _, err := l.InclusionProof(ctx, 0, n+10); !errors.Is(err, anchor.ErrNotIntegrated) {
			t.Errorf("InclusionProof(0, beyond) = %v, want ErrNotIntegrated", err)
		}
		if _, err := l.ConsistencyProof(ctx, 1, n+10); !errors.Is(err, anchor.ErrNotIntegrated) {
			t.Errorf("ConsistencyProof(1, beyond) = %v, want ErrNotIntegrated", err)
		}
	})

	t.Run("idempotent", func(t *testing.T) {
		start := time.Now()
		if err := l.Append(ctx, toEntries(0, leaves)); err != nil {
			t.Fatalf("Append(all again) = %v, want nil", err)
		}
		t.Logf("re-Append of %d present leaves took %v", n, time.Since(start))
		if err := l.Append(ctx, toEntries(600, leaves[600:700])); err != nil {
			t.Fatalf("Append(600-699 again) = %v, want nil", err)
		}
		more := readings(t, newDeviceKey(t), "d2", 66)
		mem.AppendData(more...)
		all := append(leaves[:n:n], more...)
		if err := l.Append(ctx, toEntries(1200, all[1200:])); err != nil {
			t.Fatalf("Append(1200-%d, overlapping) = %v, want nil", len(all)-1, err)
		}
		waitForSize(t, l, uint64(len(all)))
		if size, root, err := l.Root(ctx); err != nil || size != uint64(len(all)) || !bytes.Equal(root, mem.Hash()) {
			t.Errorf("Root() = %d, %x, %v; want %d, %x", size, root, err, len(all), mem.Hash())
		}
	})

	t.Run("conflict", func(t *testing.T) {
		tests := []struct {
			name    string
			entries []tapproof.Leaf
			index   uint64
		}{
			{"one leaf", []tapproof.Leaf{{Index: 5, Bytes: []byte("forged")}}, 5},
			{"inside a batch", func() []tapproof.Leaf {
				es := toEntries(3, leaves[3:9])
				es[3].Bytes = leaves[40]
				return es
			}(), 6},
		}
		for _, tt := range tests {
			err := l.Append(ctx, tt.entries)
			var ce *anchor.ConflictError
			if !errors.As(err, &ce) || ce.Index != tt.index {
				t.Errorf("Append(%s) = %v, want a *ConflictError at %d", tt.name, err, tt.index)
				continue
			}
			if !bytes.Equal(ce.Logged, leaves[tt.index]) {
				t.Errorf("Append(%s): ConflictError.Logged = %.40q, want %.40q", tt.name, ce.Logged, leaves[tt.index])
			}
		}
		// A conflict at an index stored but maybe not yet integrated.
		size, _, err := l.Root(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, []tapproof.Leaf{{Index: size, Bytes: []byte("first")}}); err != nil {
			t.Fatal(err)
		}
		err = l.Append(ctx, []tapproof.Leaf{{Index: size, Bytes: []byte("second")}})
		if ce, ok := errors.AsType[*anchor.ConflictError](err); !ok || ce.Index != size || string(ce.Logged) != "first" {
			t.Errorf("Append(second leaf at %d) = %v, want a *ConflictError holding the first", size, err)
		}
		if got, err := l.Leaf(ctx, 5); err != nil || !bytes.Equal(got, leaves[5]) {
			t.Errorf("Leaf(5) after conflicts = %.40q, %v; want the original", got, err)
		}
	})
}

func TestTrillianCheckpoint(t *testing.T) {
	env := newTrillianEnv(t)
	ctx := t.Context()
	key := newDeviceKey(t)
	leaves := readings(t, key, "d1", 25)

	t.Run("grows", func(t *testing.T) {
		l := env.newLog(t, 0)
		store := newMemStore()
		cp0, grew, err := l.Checkpoint(ctx, store, journaled(leaves))
		if err != nil || !grew {
			t.Fatalf("Checkpoint(empty tree) = %v, %v; want a new checkpoint", grew, err)
		}
		if c, err := anchor.OpenCheckpoint(cp0, env.verifier); err != nil || c.Size != 0 {
			t.Fatalf("OpenCheckpoint(first) = %+v, %v; want size 0", c, err)
		}
		for _, size := range []uint64{10, 25} {
			prev, _ := store.latest(testOrigin)
			if err := l.Append(ctx, toEntries(prev, leaves[prev:size])); err != nil {
				t.Fatal(err)
			}
			waitForSize(t, l, size)
			cp, grew, err := l.Checkpoint(ctx, store, journaled(leaves))
			if err != nil || !grew {
				t.Fatalf("Checkpoint(size %d) = %v, %v; want a new checkpoint", size, grew, err)
			}
			c, err := anchor.OpenCheckpoint(cp, env.verifier)
			if err != nil {
				t.Fatal(err)
			}
			mem := testonly.New(rfc6962.DefaultHasher)
			mem.AppendData(leaves[:size]...)
			if c.Origin != testOrigin || c.Size != size || !bytes.Equal(c.Hash, mem.Hash()) {
				t.Errorf("checkpoint = %+v, want %s size %d root %x", c, testOrigin, size, mem.Hash())
			}
			again, grew, err := l.Checkpoint(ctx, store, journaled(leaves))
			if err != nil || grew || !bytes.Equal(again, cp) {
				t.Errorf("Checkpoint(unchanged) = %q, %v, %v; want the same checkpoint, not grown", again, grew, err)
			}
		}
		if size, puts := store.latest(testOrigin); size != 25 || puts != 3 {
			t.Errorf("store holds size %d after %d puts, want 25 after 3", size, puts)
		}
	})

	t.Run("inconsistent", func(t *testing.T) {
		// Three trees under one key and origin: a split view.
		a, b, c := env.newLog(t, 0), env.newLog(t, 0), env.newLog(t, 0)
		other := readings(t, newDeviceKey(t), "d1", 25)
		for _, x := range []struct {
			l      *anchor.Log
			leaves [][]byte
		}{{a, leaves[:10]}, {b, append(leaves[:3:3], other[3:15]...)}, {c, other[:10]}} {
			if err := x.l.Append(ctx, toEntries(0, x.leaves)); err != nil {
				t.Fatal(err)
			}
			waitForSize(t, x.l, uint64(len(x.leaves)))
		}
		storeA := newMemStore()
		signedA, _, err := a.Checkpoint(ctx, storeA, journaled(leaves[:10]))
		if err != nil {
			t.Fatal(err)
		}
		storeB := newMemStore()
		if _, _, err := b.Checkpoint(ctx, storeB, journaled(append(leaves[:3:3], other[3:15]...))); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name             string
			l                *anchor.Log
			store            *memStore
			oldSize, newSize uint64
			wantProof        bool
		}{
			{"forked and larger", b, storeA, 10, 15, true},
			{"same size, other root", c, storeA, 10, 10, false},
			{"smaller", a, storeB, 15, 10, false},
		}
		for _, tt := range tests {
			_, putsBefore := tt.store.latest(testOrigin)
			got, grew, err := tt.l.Checkpoint(ctx, tt.store, journaled(nil))
			ie, ok := errors.AsType[*anchor.InconsistencyError](err)
			if !ok {
				t.Errorf("Checkpoint(%s) = %q, %v, %v; want an *InconsistencyError", tt.name, got, grew, err)
				continue
			}
			if ie.OldSize != tt.oldSize || ie.NewSize != tt.newSize || (len(ie.Proof) > 0) != tt.wantProof ||
				len(ie.OldRoot) != 32 || len(ie.NewRoot) != 32 || ie.Origin != testOrigin || len(ie.Checkpoint) == 0 {
				t.Errorf("Checkpoint(%s) evidence = %+v, want sizes %d to %d, proof %v", tt.name, ie, tt.oldSize, tt.newSize, tt.wantProof)
			}
			if _, puts := tt.store.latest(testOrigin); puts != putsBefore {
				t.Errorf("Checkpoint(%s) stored a checkpoint", tt.name)
			}
		}
		if got, _ := storeA.LatestCheckpoint(ctx, testOrigin); !bytes.Equal(got, signedA) {
			t.Errorf("store A changed")
		}
	})

	t.Run("runner", func(t *testing.T) {
		l := env.newLog(t, 0)
		store := newMemStore()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		var ticks, grew atomic.Int64
		go func() {
			done <- l.RunCheckpointer(runCtx, store, journaled(leaves), 50*time.Millisecond, anchor.CheckpointerHooks{
				Err:  func(err error) { t.Errorf("checkpointer: %v", err) },
				Tick: func(signed []byte) { ticks.Add(1); grew.Add(int64(len(signed))) },
			})
		}()
		if err := l.Append(ctx, toEntries(0, leaves)); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 30*time.Second, func() error {
			if size, _ := store.latest(testOrigin); size != uint64(len(leaves)) {
				return fmt.Errorf("checkpoint size %d, want %d", size, len(leaves))
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunCheckpointer() = %v after cancel, want nil", err)
		}
		if ticks.Load() == 0 || grew.Load() == 0 {
			t.Errorf("Tick called %d times with %d bytes of checkpoints, want calls and at least one checkpoint", ticks.Load(), grew.Load())
		}
	})
}

// TestTrillianForeignLeaf: Trillian is storage, not authority. A leaf
// appended to the tree directly, by anyone who reaches Trillian's port,
// at the next index extends the last checkpoint, but it is not a leaf
// tapproof appended: the checkpointer refuses to sign, in this process
// and after a restart, naming the index and the leaf found.
func TestTrillianForeignLeaf(t *testing.T) {
	env := newTrillianEnv(t)
	ctx := t.Context()
	leaves := readings(t, newDeviceKey(t), "d1", 20)
	id, err := env.client.CreateTree(ctx, "tapproof test "+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	open := func() *anchor.Log {
		l, err := env.client.Log(anchor.LogConfig{TreeID: id, Signer: env.signer, Verifier: env.verifier})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l, store := open(), newMemStore()
	if err := l.Append(ctx, toEntries(0, leaves)); err != nil {
		t.Fatal(err)
	}
	waitForSize(t, l, 20)
	if _, grew, err := l.Checkpoint(ctx, store, journaled(leaves)); err != nil || !grew {
		t.Fatalf("Checkpoint() = %v, %v; want a checkpoint of 20", grew, err)
	}

	conn, err := grpc.NewClient(env.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	foreign := []byte("written behind tapproof's back")
	resp, err := trillian.NewTrillianLogClient(conn).AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{LogId: id,
		Leaves: []*trillian.LogLeaf{{LeafValue: foreign, LeafIndex: 20, LeafIdentityHash: bytes.Repeat([]byte{7}, 32)}}})
	if err != nil || resp.GetResults()[0].GetStatus().GetCode() != 0 {
		t.Fatalf("AddSequencedLeaves() = %v, %v", resp, err)
	}
	waitForSize(t, l, 21)
	found := rfc6962.DefaultHasher.HashLeaf(foreign)
	for _, tt := range []struct {
		name string
		l    *anchor.Log
	}{{"appending log", l}, {"after a restart", open()}} {
		_, grew, err := tt.l.Checkpoint(ctx, store, journaled(leaves))
		fe, ok := errors.AsType[*anchor.ForeignLeafError](err)
		if !ok || grew || fe.Index != 20 || fe.Size != 21 || fe.Appended != nil || !bytes.Equal(fe.Found, found) {
			t.Errorf("Checkpoint(%s) = %v, %v; want a *ForeignLeafError at 20 with leaf hash %x", tt.name, grew, err, found)
		}
		if size, _ := store.latest(testOrigin); size != 20 {
			t.Errorf("Checkpoint(%s): store at %d, want 20: nothing signed", tt.name, size)
		}
	}
}

func TestTrillianBundle(t *testing.T) {
	env := newTrillianEnv(t)
	ctx := t.Context()
	l := env.newLog(t, 0)
	key := newDeviceKey(t)
	leaves := readings(t, key, "d1", 21) // enrollment at 0, readings 1 to 20
	if err := l.Append(ctx, toEntries(0, leaves)); err != nil {
		t.Fatal(err)
	}
	waitForSize(t, l, 21)
	store := newMemStore()
	cp, _, err := l.Checkpoint(ctx, store, journaled(leaves))
	if err != nil {
		t.Fatal(err)
	}

	b, err := l.Bundle(ctx, 7, cp)
	if err != nil {
		t.Fatalf("Bundle(7) = %v", err)
	}
	if b.Enrollment, err = l.Bundle(ctx, 0, cp); err != nil {
		t.Fatalf("Bundle(0) = %v", err)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got anchor.Bundle
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	v, err := anchor.VerifyBundle(ctx, &got, env.verifier, nil)
	if err != nil {
		t.Fatalf("VerifyBundle() = %v", err)
	}
	if diff := cmp.Diff(testReading("d1", 7), v.Reading); diff != "" || v.Index != 7 || v.Size != 21 || v.EnrollmentIndex != 0 {
		t.Errorf("VerifyBundle() = index %d size %d enrollment %d, reading (-want +got):\n%s", v.Index, v.Size, v.EnrollmentIndex, diff)
	}

	if _, err := l.Bundle(ctx, 21, cp); !errors.Is(err, tapproof.ErrNotYetAnchored) {
		t.Errorf("Bundle(21) under a checkpoint of size 21 = %v, want ErrNotYetAnchored", err)
	}
	otherSigner, _ := newLogKey(t)
	foreign, err := anchor.SignCheckpoint(otherSigner, 21, v.Root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Bundle(ctx, 7, foreign); err == nil {
		t.Error("Bundle() under a checkpoint signed by another key succeeded, want error")
	}
}

// BenchmarkAppend measures one AddSequencedLeaves batch of
// DefaultBatchSize leaves (not their integration).
func BenchmarkAppend(b *testing.B) {
	addr := trillianForTest(b)
	ctx := b.Context()
	c, err := anchor.Dial(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	id, err := c.CreateTree(ctx, "tapproof bench")
	if err != nil {
		b.Fatal(err)
	}
	s, v := newLogKey(b)
	l, err := c.Log(anchor.LogConfig{TreeID: id, Signer: s, Verifier: v})
	if err != nil {
		b.Fatal(err)
	}
	leaves := make([][]byte, anchor.DefaultBatchSize)
	key := newDeviceKey(b)
	for i := range leaves {
		leaves[i] = signReading(b, key, testReading("d1", uint64(i+1)))
	}
	var next uint64
	b.ResetTimer()
	for b.Loop() {
		if err := l.Append(ctx, toEntries(next, leaves)); err != nil {
			b.Fatal(err)
		}
		next += uint64(len(leaves))
	}
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "leaves/s")
}
