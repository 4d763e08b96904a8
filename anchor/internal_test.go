package anchor

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/trillian"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tapproof/tapproof"
)

// fakeLog mimics the AddSequencedLeaves and GetLeavesByRange behaviour of
// Trillian's PostgreSQL and MySQL storage for a PREORDERED_LOG tree, for the
// paths a real server makes slow or hard to reach. The Trillian tests in
// trillian_test.go cover the real thing.
type fakeLog struct {
	trillian.TrillianLogClient // nil: other methods panic

	mu         sync.Mutex
	stored     map[int64]*trillian.LogLeaf
	integrated int64 // leaves below this index are visible to GetLeavesByRange
	batches    []int
}

func newFakeLog() *fakeLog { return &fakeLog{stored: map[int64]*trillian.LogLeaf{}} }

func (f *fakeLog) AddSequencedLeaves(_ context.Context, req *trillian.AddSequencedLeavesRequest, _ ...grpc.CallOption) (*trillian.AddSequencedLeavesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, len(req.Leaves))
	resp := &trillian.AddSequencedLeavesResponse{}
	for _, l := range req.Leaves {
		st := status.New(codes.OK, "OK")
		if old, ok := f.stored[l.LeafIndex]; ok {
			if bytes.Equal(old.LeafIdentityHash, l.LeafIdentityHash) {
				st = status.New(codes.FailedPrecondition, "conflicting LeafIdentityHash")
			} else {
				st = status.New(codes.FailedPrecondition, "conflicting LeafIndex")
			}
		} else {
			f.stored[l.LeafIndex] = l
		}
		resp.Results = append(resp.Results, &trillian.QueuedLogLeaf{Status: st.Proto()})
	}
	return resp, nil
}

func (f *fakeLog) GetLeavesByRange(_ context.Context, req *trillian.GetLeavesByRangeRequest, _ ...grpc.CallOption) (*trillian.GetLeavesByRangeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &trillian.GetLeavesByRangeResponse{}
	if req.StartIndex >= f.integrated {
		return resp, nil
	}
	for i := req.StartIndex; i < req.StartIndex+req.Count; i++ {
		l, ok := f.stored[i]
		if !ok {
			break
		}
		resp.Leaves = append(resp.Leaves, l)
	}
	return resp, nil
}

func (f *fakeLog) integrate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if _, ok := f.stored[f.integrated]; !ok {
			return
		}
		f.integrated++
	}
}

func testKey(t *testing.T, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func newFakeBackedLog(t *testing.T, f *fakeLog, batchSize int) *Log {
	t.Helper()
	s, v := testKey(t, "tapproof.local/log/test")
	l, err := (&Client{log: f}).Log(LogConfig{TreeID: 1, Signer: s, Verifier: v, BatchSize: batchSize})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func entries(first, n int, tag string) []tapproof.Leaf {
	var es []tapproof.Leaf
	for i := first; i < first+n; i++ {
		es = append(es, tapproof.Leaf{Index: uint64(i), Bytes: fmt.Appendf(nil, "%s-%d", tag, i)})
	}
	return es
}

func TestAppendBatches(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	tests := []struct {
		name      string
		batchSize int
		entries   []tapproof.Leaf
		want      []int
	}{
		{"by count", 3, entries(0, 10, "a"), []int{3, 3, 3, 1}},
		{"default size", 0, entries(0, 1201, "a"), []int{500, 500, 201}},
		{"by bytes", 500, []tapproof.Leaf{{Index: 0, Bytes: big}, {Index: 1, Bytes: big}, {Index: 2, Bytes: big}, {Index: 3, Bytes: big}, {Index: 4, Bytes: big}}, []int{2, 2, 1}},
		{"one", 500, entries(7, 1, "a"), []int{1}},
		{"none", 500, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeLog()
			l := newFakeBackedLog(t, f, tt.batchSize)
			if err := l.Append(t.Context(), tt.entries); err != nil {
				t.Fatalf("Append() = %v", err)
			}
			if diff := cmp.Diff(tt.want, f.batches); diff != "" {
				t.Errorf("batch sizes mismatch (-want +got):\n%s", diff)
			}
			for _, e := range tt.entries {
				l := f.stored[int64(e.Index)]
				if l == nil || !bytes.Equal(l.LeafValue, e.Bytes) || !bytes.Equal(l.LeafIdentityHash, identityHash(e.Index, e.Bytes)) {
					t.Fatalf("leaf %d stored as %v", e.Index, l)
				}
			}
		})
	}
}

func TestAppendInvalid(t *testing.T) {
	l := newFakeBackedLog(t, newFakeLog(), 0)
	tests := []struct {
		name    string
		entries []tapproof.Leaf
	}{
		{"gap", []tapproof.Leaf{{Index: 0, Bytes: []byte("a")}, {Index: 2, Bytes: []byte("b")}}},
		{"descending", []tapproof.Leaf{{Index: 1, Bytes: []byte("a")}, {Index: 0, Bytes: []byte("b")}}},
		{"repeated", []tapproof.Leaf{{Index: 1, Bytes: []byte("a")}, {Index: 1, Bytes: []byte("a")}}},
		{"empty leaf", []tapproof.Leaf{{Index: 0, Bytes: []byte("a")}, {Index: 1, Bytes: nil}}},
		{"index too large", []tapproof.Leaf{{Index: 1 << 63, Bytes: []byte("a")}}},
	}
	for _, tt := range tests {
		if err := l.Append(t.Context(), tt.entries); err == nil {
			t.Errorf("Append(%s) = nil, want error", tt.name)
		}
	}
}

func TestAppendIdempotent(t *testing.T) {
	f := newFakeLog()
	l := newFakeBackedLog(t, f, 4)
	ctx := t.Context()
	if err := l.Append(ctx, entries(0, 10, "a")); err != nil {
		t.Fatal(err)
	}
	f.integrate()
	for _, es := range [][]tapproof.Leaf{entries(0, 10, "a"), entries(3, 2, "a"), entries(6, 10, "a")} {
		if err := l.Append(ctx, es); err != nil {
			t.Errorf("Append(%d-%d again) = %v, want nil", es[0].Index, es[len(es)-1].Index, err)
		}
	}
	if got := len(f.stored); got != 16 {
		t.Errorf("stored %d leaves, want 16", got)
	}
	f.integrate()

	// A different leaf at a used index, after some identical ones.
	es := entries(8, 6, "a")
	es[4].Bytes = []byte("forged")
	err := l.Append(ctx, es)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Append(conflicting) = %v, want a *ConflictError", err)
	}
	if ce.Index != 12 || string(ce.Logged) != "a-12" || string(ce.Appended) != "forged" {
		t.Errorf("ConflictError = %+v, want index 12, logged a-12, appended forged", ce)
	}
	if !strings.Contains(err.Error(), "index 12") {
		t.Errorf("error %q does not name the index", err)
	}
}

// TestAppendWaitsForIntegration re-appends leaves Trillian has stored but
// not integrated: Append must wait to compare them.
func TestAppendWaitsForIntegration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLog()
		l := newFakeBackedLog(t, f, 0)
		if err := l.Append(t.Context(), entries(0, 5, "a")); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(3 * time.Second)
			f.integrate()
		}()
		start := time.Now()
		if err := l.Append(t.Context(), entries(0, 5, "a")); err != nil {
			t.Fatalf("Append(again) = %v", err)
		}
		if d := time.Since(start); d < 3*time.Second || d > 5*time.Second {
			t.Errorf("Append(again) took %v, want about 3s", d)
		}

		// Never integrated: give up after readBackWait.
		if err := l.Append(t.Context(), entries(10, 1, "b")); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		err := l.Append(t.Context(), entries(10, 1, "b"))
		if err == nil || !strings.Contains(err.Error(), "not integrated") {
			t.Errorf("Append(never integrated) = %v, want an error saying so", err)
		}
		if d := time.Since(start); d < readBackWait {
			t.Errorf("Append(never integrated) gave up after %v, want %v", d, readBackWait)
		}
	})
}

func TestRunEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		transient := errors.New("transient")
		var mu sync.Mutex
		var calls []time.Duration
		var reported []error
		start := time.Now()
		done := make(chan error)
		go func() {
			done <- runEvery(ctx, time.Second, func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, time.Since(start))
				if len(calls) == 2 {
					return transient
				}
				return nil
			}, func(err error) {
				mu.Lock()
				defer mu.Unlock()
				reported = append(reported, err)
			})
		}()
		time.Sleep(3500 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runEvery() = %v after cancel, want nil", err)
		}
		want := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}
		if diff := cmp.Diff(want, calls); diff != "" {
			t.Errorf("step times mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]error{transient}, reported, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Errorf("reported errors mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestRunEveryStopsOnInconsistency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ie := &InconsistencyError{Origin: "o", Err: errors.New("fork")}
		var reported int
		err := runEvery(t.Context(), 0, func(context.Context) error {
			return fmt.Errorf("checkpoint: %w", ie)
		}, func(error) { reported++ })
		if !errors.Is(err, ie) {
			t.Errorf("runEvery() = %v, want the inconsistency", err)
		}
		if reported != 0 {
			t.Errorf("onErr called %d times, want 0", reported)
		}
	})
}

func TestLogConfigValidate(t *testing.T) {
	s, v := testKey(t, "tapproof.local/log/a")
	_, v2 := testKey(t, "tapproof.local/log/a")
	tests := []struct {
		name string
		cfg  LogConfig
		ok   bool
	}{
		{"ok", LogConfig{TreeID: 1, Signer: s, Verifier: v}, true},
		{"ok with origin", LogConfig{TreeID: 1, Origin: "tapproof.local/log/a", Signer: s, Verifier: v, BatchSize: 10}, true},
		{"no tree", LogConfig{Signer: s, Verifier: v}, false},
		{"no verifier", LogConfig{TreeID: 1, Signer: s}, false},
		{"verifier of another key", LogConfig{TreeID: 1, Signer: s, Verifier: v2}, false},
		{"origin not the key name", LogConfig{TreeID: 1, Origin: "tapproof.local/log/b", Signer: s, Verifier: v}, false},
		{"negative batch", LogConfig{TreeID: 1, Signer: s, Verifier: v, BatchSize: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%s) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	l, err := (&Client{}).Log(LogConfig{TreeID: 1, Signer: s, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	if l.Origin() != "tapproof.local/log/a" || l.cfg.BatchSize != DefaultBatchSize {
		t.Errorf("Log() config = %+v, want origin from the key and the default batch size", l.cfg)
	}
}

func TestDialUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// Port 1 on loopback is not a Trillian server.
	if c, err := Dial(ctx, "127.0.0.1:1"); err == nil {
		c.Close()
		t.Fatal("Dial(127.0.0.1:1) = nil error, want one")
	}
}

// A call to Trillian without a deadline gets one, so a log server waiting
// on its database cannot hold an anchor for ever; a caller's own deadline
// is kept.
func TestCallDeadline(t *testing.T) {
	intercept := callDeadline(time.Minute)
	var got time.Time
	var has bool
	invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		got, has = ctx.Deadline()
		return nil
	}
	_ = intercept(context.Background(), "/trillian.TrillianLog/AddSequencedLeaves", nil, nil, nil, invoker)
	if !has || time.Until(got) > time.Minute || time.Until(got) < 50*time.Second {
		t.Errorf("call without a deadline got deadline %v (set %v), want about a minute from now", got, has)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	want, _ := ctx.Deadline()
	_ = intercept(ctx, "/trillian.TrillianLog/GetLeavesByRange", nil, nil, nil, invoker)
	if !got.Equal(want) {
		t.Errorf("caller's deadline %v replaced by %v", want, got)
	}
}
