// Package localstack starts the real components tapproof depends on —
// PostgreSQL, a Trillian log server and log signer on PostgreSQL, and
// InfluxDB 1.8 — as child processes listening on 127.0.0.1, for integration
// tests and for the demo command. No containers are involved: the binaries are
// built once with the Go toolchain and cached outside the repository, and
// PostgreSQL comes from the system (installed with apt-get when missing and
// running as root).
//
// It owns that plumbing and nothing else. Production packages must never
// import it; the only non-test importer allowed is the demo command. It
// imports no other tapproof package.
//
// The package runs on Linux (and other Unix systems, without the
// parent-death signal); it needs the go command on PATH.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultInfluxDatabase is the InfluxDB database Start creates when
// Config.InfluxDatabase is empty.
const DefaultInfluxDatabase = "tapproof"

// Config says where a stack keeps its data and which loopback ports it uses.
// The zero value of every field except Dir is usable.
type Config struct {
	// Dir holds all data and logs of the stack: postgres/, influxdb/ and
	// logs/. Starting again on the same Dir continues on the same data.
	// Required. When running as root the user postgres must be able to
	// search every parent directory of Dir.
	Dir string

	// CacheDir holds the built binaries, under CacheDir/bin. Empty means
	// $TAPPROOF_CACHE, or else the "tapproof" directory in
	// os.UserCacheDir().
	CacheDir string

	// Log receives progress lines (builds, starts, stops). Nil means
	// io.Discard. Child process output never goes here; it goes to files
	// under Dir/logs (see Stack.LogFile).
	Log io.Writer

	// Ports on 127.0.0.1. Zero means a free port picked by Start. Picked
	// ports are kept for the life of the Stack, so Restart reuses them.
	PostgresPort     int
	TrillianRPCPort  int // log server gRPC (admin and log API)
	TrillianHTTPPort int // log server /metrics and /healthz
	SignerRPCPort    int
	SignerHTTPPort   int
	InfluxPort       int // InfluxDB HTTP API
	InfluxRPCPort    int // InfluxDB backup/restore RPC

	// InfluxDatabase is the database Start creates. Empty means
	// DefaultInfluxDatabase.
	InfluxDatabase string
}

// ports returns pointers to the port fields, in a fixed order.
func (c *Config) ports() []*int {
	return []*int{
		&c.PostgresPort, &c.TrillianRPCPort, &c.TrillianHTTPPort,
		&c.SignerRPCPort, &c.SignerHTTPPort, &c.InfluxPort, &c.InfluxRPCPort,
	}
}

// Validate reports whether c can be started: Dir is set, ports are in range
// and the ports that are set are distinct.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("config: Dir is required")
	}
	seen := make(map[int]bool)
	for _, p := range c.ports() {
		if *p < 0 || *p > 65535 {
			return fmt.Errorf("config: port %d out of range", *p)
		}
		if *p != 0 && seen[*p] {
			return fmt.Errorf("config: port %d used twice", *p)
		}
		seen[*p] = true
	}
	return nil
}

// withDefaults returns c with empty fields filled in and zero ports picked.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return c, err
		}
		c.CacheDir = dir
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.InfluxDatabase == "" {
		c.InfluxDatabase = DefaultInfluxDatabase
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	c.Dir = dir
	if err := pickPorts(c.ports()); err != nil {
		return c, fmt.Errorf("pick ports: %w", err)
	}
	return c, nil
}

// DefaultCacheDir is where built and downloaded dependencies are kept when
// no cache directory is configured: $TAPPROOF_CACHE, else
// os.UserCacheDir()/tapproof.
func DefaultCacheDir() (string, error) {
	if dir := os.Getenv("TAPPROOF_CACHE"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(dir, "tapproof"), nil
}

// Component names one child process of a Stack.
type Component int

// The components, in the order Start starts them.
const (
	Postgres  Component = iota // PostgreSQL, Trillian's storage
	LogServer                  // trillian_log_server
	LogSigner                  // trillian_log_signer (the sequencer)
	InfluxDB                   // influxd
	numComponents
)

// String returns the component's program name, which also names its log file.
func (c Component) String() string {
	switch c {
	case Postgres:
		return "postgres"
	case LogServer:
		return "trillian_log_server"
	case LogSigner:
		return "trillian_log_signer"
	case InfluxDB:
		return "influxd"
	}
	return fmt.Sprintf("Component(%d)", int(c))
}

// stopOrder is the order Close stops components in: the signer and server
// before their database.
var stopOrder = []Component{LogSigner, LogServer, InfluxDB, Postgres}

// Stack is a running set of components. Its exported fields describe where
// to reach them; they are set by Start and must not be changed.
type Stack struct {
	// Dir is the absolute data directory (Config.Dir).
	Dir string
	// PostgresURI is the Trillian database as a libpq URI:
	// postgresql:///trillian?host=127.0.0.1&port=N&user=postgres.
	PostgresURI string
	// TrillianAddr is the log server's gRPC address, host:port, serving
	// both trillian.TrillianAdmin and trillian.TrillianLog.
	TrillianAddr string
	// InfluxURL is InfluxDB's HTTP API, http://127.0.0.1:N.
	InfluxURL string
	// InfluxDatabase is the database Start created.
	InfluxDatabase string

	cfg Config // defaults filled in, ports picked
	// repickable are the components whose ports Start picked, which it may
	// pick again if they are taken before the component starts.
	repickable map[Component]bool
	bins       binaries

	logMu sync.Mutex // Start runs InfluxDB's start concurrently

	mu     sync.Mutex // guards procs and closed
	procs  [numComponents]*process
	closed bool
}

// Start builds the binaries if they are not cached yet (minutes, once per
// machine; progress goes to cfg.Log), then starts PostgreSQL, the Trillian
// log server and signer, and InfluxDB on cfg.Dir, and returns when all of
// them answer. It creates the Trillian database and schema and the InfluxDB
// database when they do not exist yet. On error nothing is left running.
// The caller must Close the stack.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	asked := cfg
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("stack dir: %w", err)
	}
	bins, err := ensureBinaries(ctx, cfg.CacheDir, cfg.Log)
	if err != nil {
		return nil, err
	}
	s := &Stack{
		Dir: cfg.Dir,
		PostgresURI: fmt.Sprintf("postgresql:///trillian?host=127.0.0.1&port=%d&user=postgres",
			cfg.PostgresPort),
		TrillianAddr:   fmt.Sprintf("127.0.0.1:%d", cfg.TrillianRPCPort),
		InfluxURL:      fmt.Sprintf("http://127.0.0.1:%d", cfg.InfluxPort),
		InfluxDatabase: cfg.InfluxDatabase,
		cfg:            cfg,
		bins:           bins,
		repickable:     map[Component]bool{},
	}
	for _, c := range []Component{Postgres, LogServer, LogSigner, InfluxDB} {
		free := true
		for _, p := range (&Stack{cfg: asked}).componentPortPtrs(c) {
			free = free && *p == 0
		}
		s.repickable[c] = free
	}
	begin := time.Now()
	// influxd spends about 2 s initializing before it reads its config;
	// start it alongside the others.
	influxErr := make(chan error, 1)
	go func() { influxErr <- s.start(ctx, InfluxDB) }()
	var startErr error
	for _, c := range []Component{Postgres, LogServer, LogSigner} {
		if startErr = s.start(ctx, c); startErr != nil {
			break
		}
	}
	if err := errors.Join(startErr, <-influxErr); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.logf("stack ready in %v: trillian %s, influxdb %s, postgres port %d, dir %s",
		time.Since(begin).Round(time.Millisecond), s.TrillianAddr, s.InfluxURL, cfg.PostgresPort, cfg.Dir)
	return s, nil
}

// Config returns the configuration the stack runs with: defaults filled in
// and the ports it picked.
func (s *Stack) Config() Config { return s.cfg }

// LogFile returns the file that receives c's standard output and error.
// Each start appends to it after a header line.
func (s *Stack) LogFile(c Component) string {
	return filepath.Join(s.Dir, "logs", c.String()+".log")
}

// Stop stops one component, as for a fault test, and leaves the others
// running. Stopping a stopped component does nothing. Like Close, it kills
// the Trillian binaries rather than asking them to stop.
func (s *Stack) Stop(c Component) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("stop: stack closed")
	}
	return s.stop(c)
}

// Restart stops c if it is running and starts it again on the same ports
// and data, returning when it answers. It does not touch other components.
func (s *Stack) Restart(ctx context.Context, c Component) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("restart: stack closed")
	}
	if err := s.stop(c); err != nil {
		return err
	}
	return s.start(ctx, c)
}

// Close stops the log signer, the log server, InfluxDB and then PostgreSQL,
// waits for each to exit and kills what remains of its process group. The
// Trillian binaries are killed (their state is all in PostgreSQL), influxd
// gets SIGTERM and PostgreSQL a fast shutdown (SIGINT, as pg_ctl stop -m
// fast sends). Data stays in Dir. Close is idempotent.
func (s *Stack) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, c := range stopOrder {
		errs = append(errs, s.stop(c))
	}
	return errors.Join(errs...)
}

// start starts c and records its process. s.mu is held, or s is not
// shared yet and each goroutine starts different components.
func (s *Stack) start(ctx context.Context, c Component) error {
	begin := time.Now()
	if err := s.claimPorts(c); err != nil {
		return fmt.Errorf("start %v: %w", c, err)
	}
	var (
		p   *process
		err error
	)
	switch c {
	case Postgres:
		p, err = s.startPostgres(ctx)
	case LogServer:
		p, err = s.startLogServer(ctx)
	case LogSigner:
		p, err = s.startLogSigner(ctx)
	case InfluxDB:
		p, err = s.startInfluxDB(ctx)
	default:
		err = errors.New("unknown component")
	}
	if err != nil {
		return fmt.Errorf("start %v: %w", c, err)
	}
	s.procs[c] = p
	s.logf("%v ready in %v", c, time.Since(begin).Round(time.Millisecond))
	return nil
}

// claimPorts makes sure nothing listens on c's ports. A stranger there
// would answer the readiness checks. A port Start picked can have been
// taken since, by any process's outgoing connection (picked ports come
// from the ephemeral range): then it picks again, a few times.
func (s *Stack) claimPorts(c Component) error {
	for attempt := 0; ; attempt++ {
		err := portsFree(s.componentPorts(c))
		if err == nil {
			return nil
		}
		if !s.repickable[c] || attempt == 3 {
			return err
		}
		s.logf("%v: %v; picking other ports", c, err)
		if err := s.repick(c); err != nil {
			return err
		}
	}
}

// componentPorts returns the ports c listens on.
func (s *Stack) componentPorts(c Component) []int {
	var out []int
	for _, p := range s.componentPortPtrs(c) {
		out = append(out, *p)
	}
	return out
}

func (s *Stack) componentPortPtrs(c Component) []*int {
	switch c {
	case Postgres:
		return []*int{&s.cfg.PostgresPort}
	case LogServer:
		return []*int{&s.cfg.TrillianRPCPort, &s.cfg.TrillianHTTPPort}
	case LogSigner:
		return []*int{&s.cfg.SignerRPCPort, &s.cfg.SignerHTTPPort}
	case InfluxDB:
		return []*int{&s.cfg.InfluxPort, &s.cfg.InfluxRPCPort}
	}
	return nil
}

// repick gives c new free ports, before it first starts, and updates the
// addresses derived from them. Each component's fields are its own, so
// InfluxDB, started alongside the others, may repick concurrently.
func (s *Stack) repick(c Component) error {
	ptrs := s.componentPortPtrs(c)
	for _, p := range ptrs {
		*p = 0
	}
	if err := pickPorts(ptrs); err != nil {
		return err
	}
	switch c {
	case Postgres:
		s.PostgresURI = fmt.Sprintf("postgresql:///trillian?host=127.0.0.1&port=%d&user=postgres", s.cfg.PostgresPort)
	case LogServer:
		s.TrillianAddr = fmt.Sprintf("127.0.0.1:%d", s.cfg.TrillianRPCPort)
	case InfluxDB:
		s.InfluxURL = fmt.Sprintf("http://127.0.0.1:%d", s.cfg.InfluxPort)
	}
	return nil
}

// stop stops c if it runs. s.mu is held.
func (s *Stack) stop(c Component) error {
	p := s.procs[c]
	if p == nil {
		return nil
	}
	s.procs[c] = nil
	if err := p.exitErr(); err != nil {
		s.logf("%v had exited on its own: %v (see %s)", c, err, s.LogFile(c))
	}
	begin := time.Now()
	if err := p.stop(stopTimeout); err != nil {
		return fmt.Errorf("stop %v: %w", c, err)
	}
	s.logf("%v stopped in %v", c, time.Since(begin).Round(time.Millisecond))
	return nil
}

// stopTimeout is how long a component gets to exit after its stop signal
// before its process group is killed.
const stopTimeout = 20 * time.Second

func (s *Stack) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	logf(s.cfg.Log, format, args...)
}

// logf writes one progress line to w. It calls w.Write itself, so that a
// testing.TB behind w reports this line rather than one in fmt.
func logf(w io.Writer, format string, args ...any) {
	w.Write([]byte("localstack: " + fmt.Sprintf(format, args...) + "\n"))
}

// launch starts c's program with its output appended to c's log file.
func (s *Stack) launch(c Component, spec procSpec) (*process, error) {
	spec.logPath = s.LogFile(c)
	if spec.dir == "" {
		spec.dir = s.Dir
	}
	return launch(spec)
}

// await waits until ready succeeds, for at most timeout. On failure it stops
// p and returns an error quoting the end of c's log.
func (s *Stack) await(ctx context.Context, c Component, p *process, timeout time.Duration, ready func(context.Context) error) error {
	err := await(ctx, p, timeout, ready)
	if err == nil {
		return nil
	}
	if stopErr := p.stop(stopTimeout); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	return fmt.Errorf("%w\n--- end of %s:\n%s", err, s.LogFile(c), tail(s.LogFile(c), 2048))
}
