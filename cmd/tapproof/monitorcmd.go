package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/monitor"
	"github.com/tapproof/tapproof/witness"
)

func newMonitorCmd() *cobra.Command {
	var (
		cfg                   monitor.Config
		server, policyFile    string
		keysFile, metricsAddr string
		logLevel              string
		logs                  []string
		labKeys, reviewerKeys []string
		rounding              string
		jurisdictions         []string
		once                  bool
	)
	cmd := &cobra.Command{
		Use:   "monitor --state DIR --log UTILITY=KEY... [--server URL] [--once]",
		Short: "Follow utilities' logs as a regulator: verify every checkpoint and leaf, keep state, save evidence of what is wrong",
		Long: `Follow the verifiable logs of utilities from a tapproof API, on the
regulator's own machine, trusting nothing the server says that can be
checked.

Each --log names a utility and its log's note verifier key, obtained out of
band (never from the server). For each log the monitor keeps, in --state,
the last checkpoint it verified and what it needs to go on from there
without reading the log again: the compact range of the tree and the keys
of the devices the log enrolled. Every --interval it fetches the latest
checkpoint and checks its signature, and with --witness-policy the
witnesses' cosignatures; a smaller checkpoint is a rollback, the same size
with another root a fork, and a larger one needs a consistency proof that
verifies, or it is a fork. It then reads every new leaf, requires them to
hash with the stored tree to the new root, and checks each: a reading must
be signed by its device's key as enrolled earlier in the same log and not
revoked before it, and be of a method and analyte its enrolled kind
permits; an enrollment by the key it enrolls; lab samples and
invalidations by the keys given with --lab-key, --reviewer-key or --keys
(without keys they are counted as unchecked); a set-aside record (an entry
of the journal tapproof did not write, or could not decode) is a finding.
With lab keys it recomputes every monitoring period new lab samples and
invalidations touch, by --rounding and the rules of each utility's
--jurisdiction (give the values tapproof serve was given, to reach its
decisions), and reports a period left undetermined. Only then does it store the
new checkpoint, atomically: killed at any moment, it resumes from the old
state or the new one. A fork, a rollback or leaves that do not hash to the
checkpoint keep the old state, and are reported on every poll. A log that
shows no larger checkpoint for --stale-after is reported once.

Each finding is saved in DIR/findings/<UTC time>-<utility>-<kind>/ (the
stored and the new checkpoint, the consistency proof, the offending leaf,
finding.json), logged, counted on --metrics, and POSTed as JSON to
--webhook, signed in X-Tapproof-Signature with
$TAPPROOF_MONITOR_WEBHOOK_SECRET if it is set.

--once makes one pass over every log and exits: 0 if every log was checked
and nothing is wrong, 1 if something was found wrong (or a log is stale), 2
if nothing was found but a log could not be checked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.StateDir == "" {
				return errors.New("--state is required: the directory the monitor keeps what it verified in; without it, it checks nothing")
			}
			var err error
			if cfg.Logs, err = monitorLogs(logs); err != nil {
				return err
			}
			if cfg.Keys, err = complianceKeys(keysFile, labKeys, reviewerKeys); err != nil {
				return err
			}
			if cfg.Rounding, err = compliance.ParseRounding(rounding); err != nil {
				return fmt.Errorf("--rounding: %w", err)
			}
			if cfg.Rules, err = monitorRules(jurisdictions, cfg.Logs); err != nil {
				return err
			}
			if policyFile != "" {
				if cfg.Policy, err = witness.ReadPolicyFile(policyFile); err != nil {
					return fmt.Errorf("--witness-policy: %w", err)
				}
			}
			if server == "" {
				return errors.New("--server is required: the tapproof API to read the logs from")
			}
			cfg.API = &httpapi.Client{BaseURL: server, HTTP: &http.Client{Timeout: 2 * time.Minute}}
			cfg.WebhookSecret = os.Getenv("TAPPROOF_MONITOR_WEBHOOK_SECRET")
			cfg.Log = newLogger(logLevel)
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg.Metrics = monitor.NewMetrics(reg)

			m, err := monitor.New(cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			if metricsAddr != "" {
				stop, err := serveMonitorMetrics(ctx, metricsAddr, reg)
				if err != nil {
					return err
				}
				defer stop()
				cfg.Log.Info("monitor: metrics", "addr", metricsAddr)
			}
			if once {
				return monitorOnce(ctx, cmd.OutOrStdout(), m)
			}
			return m.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "http://127.0.0.1:8480", "tapproof HTTP API to read the logs from ($TAPPROOF_SERVER)")
	f.StringArrayVar(&logs, "log", nil, "a log to follow: UTILITY=NOTE_VERIFIER_KEY, the key obtained out of band (repeatable)")
	f.StringVar(&cfg.StateDir, "state", "", "directory of the monitor's state and the evidence of its findings (required) ($TAPPROOF_MONITOR_STATE)")
	f.StringVar(&policyFile, "witness-policy", "", "a witness policy every checkpoint's cosignatures must meet ($TAPPROOF_WITNESS_POLICY)")
	f.StringArrayVar(&labKeys, "lab-key", nil, "a certified lab's key, LAB=BASE64 Ed25519 public key (repeatable)")
	f.StringArrayVar(&reviewerKeys, "reviewer-key", nil, "a state reviewer's key, ID=BASE64 Ed25519 public key (repeatable)")
	f.StringVar(&keysFile, "keys", "", `JSON file of keys: {"labs":{"LAB":["BASE64"]},"reviewers":{"ID":["BASE64"]}}`)
	f.StringVar(&rounding, "rounding", string(compliance.HalfUp), "the state's rounding of a fractional 90th-percentile rank, as tapproof serve's: half-up, half-even or up ($TAPPROOF_ROUNDING)")
	f.StringArrayVar(&jurisdictions, "jurisdiction", nil, "utility=JURISDICTION, e.g. flint=US-MI, as tapproof serve's; default US (repeatable)")
	f.DurationVar(&cfg.Interval, "interval", monitor.DefaultInterval, "time between two polls of a log ($TAPPROOF_MONITOR_INTERVAL)")
	f.DurationVar(&cfg.StaleAfter, "stale-after", monitor.DefaultStaleAfter, "report a log that shows no larger checkpoint for this long ($TAPPROOF_MONITOR_STALE_AFTER)")
	f.BoolVar(&once, "once", false, "one pass over every log, then exit: 0 clean, 1 something wrong, 2 a log not checked")
	f.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics on this address, at /metrics ($TAPPROOF_MONITOR_METRICS)")
	f.StringVar(&cfg.WebhookURL, "webhook", "", "URL to POST each finding to, as JSON ($TAPPROOF_MONITOR_WEBHOOK)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error ($TAPPROOF_LOG_LEVEL)")
	return cmd
}

// monitorLogs parses the --log flags.
func monitorLogs(flags []string) ([]monitor.Log, error) {
	if len(flags) == 0 {
		return nil, errors.New("--log UTILITY=KEY is required: the logs to follow and their note verifier keys, obtained out of band")
	}
	var out []monitor.Log
	for _, kv := range flags {
		u, key, ok := strings.Cut(kv, "=")
		if !ok || !tapproof.ValidID(u) {
			return nil, fmt.Errorf("--log %q: want UTILITY=NOTE_VERIFIER_KEY", kv)
		}
		v, err := note.NewVerifier(strings.TrimSpace(key))
		if err != nil {
			return nil, fmt.Errorf("--log %s: the key: %w", u, err)
		}
		out = append(out, monitor.Log{Utility: u, Key: v})
	}
	return out, nil
}

// monitorRules parses the --jurisdiction flags, as tapproof serve does,
// into the rules the monitor recomputes compliance by. Each must name a
// followed log.
func monitorRules(flags []string, logs []monitor.Log) (tapproof.RuleBook, error) {
	var rules tapproof.RuleBook
	for _, kv := range flags {
		u, j, ok := strings.Cut(kv, "=")
		if !ok || !tapproof.ValidID(u) || j == "" {
			return rules, fmt.Errorf("--jurisdiction %q: want utility=JURISDICTION, e.g. flint=US-MI", kv)
		}
		if !slices.ContainsFunc(logs, func(l monitor.Log) bool { return l.Utility == u }) {
			return rules, fmt.Errorf("--jurisdiction %q: no --log %s to follow", kv, u)
		}
		if rules.Jurisdictions == nil {
			rules.Jurisdictions = map[string]tapproof.Jurisdiction{}
		}
		rules.Jurisdictions[u] = tapproof.Jurisdiction(j)
	}
	return rules, nil
}

// monitorOnce makes one pass, prints a line per log and finding, and
// returns the exit status.
func monitorOnce(ctx context.Context, out io.Writer, m *monitor.Monitor) error {
	res := m.Once(ctx)
	for _, l := range res.Logs {
		switch {
		case l.Err != nil:
			fmt.Fprintf(out, "ERROR %s: not checked: %v\n", l.Utility, l.Err)
		case len(l.Findings) > 0 || l.Stale || l.Blocked:
			fmt.Fprintf(out, "FAIL %s: %d leaves verified (%d new), %d findings\n", l.Utility, l.Size, l.Checked, len(l.Findings))
		default:
			fmt.Fprintf(out, "OK %s: %d leaves verified (%d new)\n", l.Utility, l.Size, l.Checked)
		}
		for _, f := range l.Findings {
			fmt.Fprintf(out, "  %s: %s\n", f.Kind, f.Message)
			if f.Evidence != "" {
				fmt.Fprintf(out, "    evidence: %s\n", f.Evidence)
			}
		}
		if l.Stale && !hasKind(l.Findings, monitor.KindStale) {
			fmt.Fprintf(out, "  stale: no larger checkpoint for longer than --stale-after (reported before)\n")
		}
	}
	for _, l := range res.Logs {
		if len(l.Findings) > 0 || l.Stale || l.Blocked {
			return exitWrong
		}
	}
	if !res.Clean() {
		return exitUnchecked
	}
	return nil
}

func hasKind(fs []monitor.Finding, k monitor.Kind) bool {
	for _, f := range fs {
		if f.Kind == k {
			return true
		}
	}
	return false
}

// serveMonitorMetrics serves reg at addr/metrics until stop.
func serveMonitorMetrics(ctx context.Context, addr string, reg *prometheus.Registry) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httpapi.NewServer(addr, mux)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
	}, nil
}
