package anchor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/trillian"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultBatchSize is the number of leaves sent in one AddSequencedLeaves
// call when LogConfig.BatchSize is zero.
const DefaultBatchSize = 500

// maxBatchBytes bounds the leaf bytes of one AddSequencedLeaves call, well
// under gRPC's default 4 MiB message limit.
const maxBatchBytes = 2 << 20

// Client is a connection to a Trillian log server, which serves both the
// admin and the log API.
type Client struct {
	conn  *grpc.ClientConn
	admin trillian.TrillianAdminClient
	log   trillian.TrillianLogClient
}

// Dial connects to the Trillian server at addr (host:port) and waits until
// the connection is ready or ctx is done. The connection is plaintext, meant
// for loopback or a private network; opts are applied after the default
// options and may replace the transport credentials.
func Dial(ctx context.Context, addr string, opts ...grpc.DialOption) (*Client, error) {
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(callDeadline(DefaultCallTimeout))}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial trillian %s: %w", addr, err)
	}
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			return nil, fmt.Errorf("dial trillian %s: %w (last state %s)", addr, ctx.Err(), s)
		}
	}
	return &Client{
		conn:  conn,
		admin: trillian.NewTrillianAdminClient(conn),
		log:   trillian.NewTrillianLogClient(conn),
	}, nil
}

// DefaultCallTimeout bounds each call to Trillian that its caller gave no
// deadline. A log server waiting on its database (a lock held by the
// transaction of a client that died, say) would otherwise hold an anchor
// for ever; cancelled, the call rolls its transaction back and the
// anchor's retry finds the database free.
const DefaultCallTimeout = 30 * time.Second

// callDeadline gives every unary call without a deadline one of d.
func callDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// CreateTree creates an ACTIVE PREORDERED_LOG tree, initialises it and waits
// until its empty root can be read, so that it is ready to take leaves. name
// is stored as the tree's description (at most 200 bytes) and, cut to 20
// bytes, as its display name. It returns the new tree's id.
func (c *Client) CreateTree(ctx context.Context, name string) (int64, error) {
	if len(name) > 200 {
		return 0, fmt.Errorf("create tree: name of %d bytes exceeds 200", len(name))
	}
	display := name
	if len(display) > 20 {
		display = display[:20]
	}
	tree, err := c.admin.CreateTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeType:        trillian.TreeType_PREORDERED_LOG,
		TreeState:       trillian.TreeState_ACTIVE,
		DisplayName:     display,
		Description:     name,
		MaxRootDuration: durationpb.New(0),
	}})
	if err != nil {
		return 0, fmt.Errorf("create tree %q: %w", name, err)
	}
	id := tree.GetTreeId()
	if _, err := c.log.InitLog(ctx, &trillian.InitLogRequest{LogId: id}); err != nil {
		return 0, fmt.Errorf("init tree %d: %w", id, err)
	}
	// The root written by InitLog may take a moment to become readable.
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, err := c.log.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: id})
		if err == nil {
			return id, nil
		}
		if status.Code(err) != codes.FailedPrecondition && status.Code(err) != codes.NotFound {
			return 0, fmt.Errorf("read root of new tree %d: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("read root of new tree %d: %w", id, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// LogConfig identifies one utility's log: its Trillian tree and the note key
// that signs its checkpoints.
type LogConfig struct {
	// TreeID is the Trillian tree, a PREORDERED_LOG made by CreateTree.
	TreeID int64
	// Origin is the checkpoint origin line, such as
	// "tapproof.local/log/<utility>". It must equal the note key's name;
	// if empty it is taken from Signer.
	Origin string
	// Signer signs checkpoints with the log's Ed25519 note key
	// (note.NewSigner of a key from note.GenerateKey).
	Signer note.Signer
	// Verifier is the public half of Signer (note.NewVerifier). It checks the
	// stored checkpoints the anchor builds on, and the checkpoints in bundles.
	Verifier note.Verifier
	// BatchSize is the number of leaves per AddSequencedLeaves call;
	// DefaultBatchSize if zero.
	BatchSize int
}

// Validate checks that c is complete and that its keys belong together.
func (c LogConfig) Validate() error {
	switch {
	case c.TreeID == 0:
		return errors.New("log config: tree id is required")
	case c.Signer == nil || c.Verifier == nil:
		return errors.New("log config: signer and verifier are required")
	case c.Signer.Name() != c.Verifier.Name() || c.Signer.KeyHash() != c.Verifier.KeyHash():
		return fmt.Errorf("log config: signer %s+%08x and verifier %s+%08x are not one key",
			c.Signer.Name(), c.Signer.KeyHash(), c.Verifier.Name(), c.Verifier.KeyHash())
	case c.Origin != "" && c.Origin != c.Signer.Name():
		return fmt.Errorf("log config: origin %q differs from the key name %q", c.Origin, c.Signer.Name())
	case c.BatchSize < 0:
		return fmt.Errorf("log config: negative batch size %d", c.BatchSize)
	}
	return nil
}

// LogValue describes c for log/slog without the key material.
func (c LogConfig) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Int64("tree_id", c.TreeID), slog.String("origin", c.Origin), slog.Int("batch_size", c.BatchSize)}
	if c.Verifier != nil {
		attrs = append(attrs, slog.String("key_hash", fmt.Sprintf("%08x", c.Verifier.KeyHash())))
	}
	return slog.GroupValue(attrs...)
}

// Log returns the log described by cfg. It does not contact the server.
func (c *Client) Log(cfg LogConfig) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Origin == "" {
		cfg.Origin = cfg.Signer.Name()
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	return &Log{cfg: cfg, log: c.log}, nil
}
