package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/witness"
)

// Defaults of Config.
const (
	DefaultInterval   = 10 * time.Second
	DefaultStaleAfter = 10 * time.Minute
)

// API is what the monitor reads of a tapproof server: the latest signed
// checkpoint of a log, consistency proofs and leaves. It trusts none of it.
// *httpapi.Client implements it.
type API interface {
	Checkpoint(ctx context.Context, utility string) ([]byte, error)
	ConsistencyProof(ctx context.Context, utility string, from, to uint64) ([][]byte, error)
	// Leaves returns leaves from start on: at most count, fewer past the
	// end of the log.
	Leaves(ctx context.Context, utility string, start, count uint64) ([]tapproof.Leaf, error)
}

// Log is a log to follow: a utility's, and the note verifier key its
// checkpoints must be signed with, obtained out of band (never from the
// server).
type Log struct {
	Utility string
	Key     note.Verifier
}

// Config configures a Monitor. Zero values take the defaults.
type Config struct {
	API  API
	Logs []Log
	// StateDir keeps each log's State and the evidence of findings. It
	// is created if need be. Required: a monitor that keeps no state
	// checks nothing.
	StateDir string
	// Policy, if set, is the witness policy every checkpoint's
	// cosignatures must meet.
	Policy *witness.Policy
	// Keys are the labs' and state reviewers' keys lab samples and
	// invalidations are verified with. Without keys of a role, its
	// entries are counted as unchecked, and without lab keys no
	// compliance is recomputed.
	Keys compliance.KeySet
	// Rounding and Rules are the state's rounding of a fractional
	// 90th-percentile rank (compliance.HalfUp if empty, as tapproof
	// compliance's default) and the rules (federal if zero) the monitor
	// recomputes the monitoring periods new lab samples and invalidations
	// touch with, reporting each stretch of the log during which one is
	// undetermined (KindUndetermined).
	Rounding compliance.Rounding
	Rules    tapproof.RuleBook
	// Interval is the time between two polls of a log (DefaultInterval).
	Interval time.Duration
	// StaleAfter is how long a log may show no larger checkpoint before a
	// stale finding (DefaultStaleAfter).
	StaleAfter time.Duration
	// WebhookURL, if set, receives a POST of each finding as JSON, signed
	// with WebhookSecret if set (alerts.HeaderSignature). WebhookClient is the
	// client used, one with a timeout and no redirects if nil.
	WebhookURL, WebhookSecret string
	WebhookClient             *http.Client
	// Metrics count findings and progress; nil counts nothing.
	Metrics *Metrics
	// Log receives findings and progress; nil discards.
	Log *slog.Logger
	// Workers verify signatures in parallel (runtime.GOMAXPROCS if zero).
	Workers int
	// PageSize is how many leaves to ask the server for at once (MaxPage
	// if zero, at most MaxPage), and Prefetch how many pages to fetch
	// ahead of the checks (2 × Workers + 2 if zero).
	PageSize uint64
	Prefetch int
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Monitor follows tapproof logs and reports what it finds wrong with
// them. Run and Once must not run at the same time.
type Monitor struct {
	cfg       Config
	followers []*follower
	lock      *os.File
	metrics   *Metrics
	hook      *webhookSender

	workers, prefetch int
	pageSize          uint64
}

// LogResult is what one poll of a log found.
type LogResult struct {
	Utility string
	Size    uint64 // the stored (verified) size after the poll
	Checked uint64 // leaves checked in the poll
	// Findings are those reported in the poll.
	Findings []Finding
	// Blocked: a fork, rollback or inconsistency keeps the state where it
	// was.
	Blocked bool
	// Stale: no larger checkpoint for StaleAfter (reported once per
	// episode, but true on every poll while it lasts).
	Stale bool
	// Err is why the log could not be checked: the server unreachable or
	// failing, a checkpoint not signed by the log's key, the state not
	// stored.
	Err error
}

// Result is what one pass over every log found.
type Result struct {
	Logs []LogResult
}

// Clean reports whether every log was checked and nothing was found
// wrong: no finding, no error, no log stale.
func (r Result) Clean() bool {
	for _, l := range r.Logs {
		if len(l.Findings) > 0 || l.Err != nil || l.Stale || l.Blocked {
			return false
		}
	}
	return true
}

// New returns a Monitor of cfg.Logs, each continuing from its state in
// cfg.StateDir, which it locks until Close. A state that does not verify
// (another log's, another key's, a frontier that does not hash to its
// checkpoint) is an error: the monitor starts from no state only where
// there is none.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Rounding == "" {
		cfg.Rounding = compliance.HalfUp
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Monitor{cfg: cfg, metrics: cfg.Metrics, workers: cfg.Workers, prefetch: cfg.Prefetch, pageSize: cfg.PageSize}
	if m.workers == 0 {
		m.workers = runtime.GOMAXPROCS(0)
	}
	if m.prefetch == 0 {
		m.prefetch = 2*m.workers + 2
	}
	if m.pageSize == 0 || m.pageSize > MaxPage {
		m.pageSize = MaxPage
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, logsDir), filepath.Join(cfg.StateDir, findingsDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	lock, err := lockDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	m.lock = lock
	fail := func(err error) (*Monitor, error) {
		lock.Close()
		return nil, err
	}
	for _, d := range []string{logsDir, findingsDir} {
		if err := removeTemporaries(filepath.Join(cfg.StateDir, d)); err != nil {
			return fail(fmt.Errorf("state directory: %w", err))
		}
	}
	now := cfg.Now()
	for _, l := range cfg.Logs {
		st, err := ReadState(cfg.StateDir, l.Utility, l.Key)
		if err != nil {
			return fail(err)
		}
		if st == nil {
			st = newState(l.Utility, l.Key)
			st.GrewAt = now
		}
		m.followers = append(m.followers, &follower{
			m: m, utility: l.Utility, key: l.Key, st: st, saved: map[string]string{},
			checker: &leafChecker{utility: l.Utility, keys: cfg.Keys},
			log:     cfg.Log.With(slog.String("log", l.Utility)),
		})
		m.metrics.follow(l.Utility, st.Size)
		cfg.Log.Info("monitor: following log", slog.String("log", l.Utility), slog.String("origin", l.Key.Name()), slog.Uint64("stored_size", st.Size))
	}
	if cfg.WebhookURL != "" {
		m.hook = newWebhookSender(cfg.WebhookURL, cfg.WebhookSecret, cfg.WebhookClient, m.metrics, cfg.Log)
	}
	return m, nil
}

func (c Config) validate() error {
	switch {
	case c.API == nil:
		return errors.New("monitor: no API to read the logs from")
	case c.StateDir == "":
		return errors.New("monitor: a state directory is required: a monitor that keeps no state checks nothing")
	case len(c.Logs) == 0:
		return errors.New("monitor: no log to follow")
	case c.Interval < 0 || c.StaleAfter < 0 || c.Workers < 0 || c.Prefetch < 0:
		return errors.New("monitor: negative interval, stale-after, workers or prefetch")
	}
	seen := map[string]bool{}
	for _, l := range c.Logs {
		if !tapproof.ValidID(l.Utility) {
			return fmt.Errorf("monitor: log %q: not a valid utility id", l.Utility)
		}
		if l.Key == nil {
			return fmt.Errorf("monitor: log %s: no key", l.Utility)
		}
		if seen[l.Utility] {
			return fmt.Errorf("monitor: log %s given twice", l.Utility)
		}
		seen[l.Utility] = true
	}
	if err := c.Keys.Validate(); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if c.WebhookURL != "" {
		if err := validateWebhookURL(c.WebhookURL); err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
	}
	return nil
}

// Close releases the state directory.
func (m *Monitor) Close() error { return m.lock.Close() }

// State returns the stored state of utility's log, nil if it follows no
// such log. It must not be modified.
func (m *Monitor) State(utility string) *State {
	for _, f := range m.followers {
		if f.utility == utility {
			return f.st
		}
	}
	return nil
}

// Once polls every log once, all at a time, and returns what it found,
// after delivering the findings to the webhook (for at most 15 s).
func (m *Monitor) Once(ctx context.Context) Result {
	stop := m.startHook()
	defer stop()
	res := Result{Logs: make([]LogResult, len(m.followers))}
	var wg sync.WaitGroup
	for i, f := range m.followers {
		wg.Go(func() { res.Logs[i] = f.poll(ctx) })
	}
	wg.Wait()
	return res
}

// Run polls each log every Config.Interval until ctx is done, then returns
// nil. Nothing a server does stops it: failures are logged, counted and
// tried again at the next poll.
func (m *Monitor) Run(ctx context.Context) error {
	stop := m.startHook()
	defer stop()
	var wg sync.WaitGroup
	for _, f := range m.followers {
		wg.Go(func() {
			t := time.NewTicker(m.cfg.Interval)
			defer t.Stop()
			for {
				f.poll(ctx)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (m *Monitor) startHook() (stop func()) {
	if m.hook == nil {
		return func() {}
	}
	return m.hook.start()
}

func (m *Monitor) now() time.Time { return m.cfg.Now() }
