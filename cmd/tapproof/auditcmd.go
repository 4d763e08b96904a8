package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/monitor"
	"github.com/tapproof/tapproof/witness"
)

// auditMaxCheckpoint bounds a --checkpoint file, in bytes.
const auditMaxCheckpoint = 64 << 10

func newAuditCmd() *cobra.Command {
	var (
		server, utility, logKey, cpFile string
		monitorState, policyFile        string
		ic                              audit.InfluxConfig
		asJSON                          bool
	)
	cmd := &cobra.Command{
		Use:   "audit --utility ID --log-key KEY [--checkpoint FILE | --monitor-state DIR] [--witness-policy FILE] [--server URL] [--influx-url URL] [--influx-db DB] [--json]",
		Short: "Check that InfluxDB holds every reading and lab sample of the log, as logged, and nothing else",
		Long: `Check InfluxDB, which the dashboards chart, against the utility's verifiable
log, which is the record. The log is read back from the tapproof API at
--server and checked against a signed checkpoint, whose signature --log-key
must verify: the server's latest, or with --checkpoint FILE one you hold,
or with --monitor-state DIR the last one a regulator's monitor (tapproof
monitor --state DIR) verified; with --witness-policy its cosignatures must
meet the policy. Every leaf the checkpoint
covers must hash to its root, so a server that leaves a leaf out or alters
one fails the audit instead of passing it.

For each reading and lab sample in the log, the point tapproof writes for
it (measurement reading) must be in InfluxDB exactly; and every point of
the utility in InfluxDB must be one of those. Each discrepancy is printed on
a line of its own with its device, seq and leaf index:

  MISSING       the point of a leaf is not in InfluxDB (deleted);
  CHANGED       it is there with another value, time, tag, seq or leaf index;
  WITHOUT_LEAF  a point no leaf accounts for (added).

Points claiming a leaf index the checkpoint does not cover yet are newer
than the checkpoint: counted, not findings.

The audit only issues SELECT queries: give it an InfluxDB user that may only
read (1.8: CREATE USER auditor WITH PASSWORD '...'; GRANT READ ON tapproof TO
auditor), as "user:password" in $TAPPROOF_AUDIT_INFLUX_TOKEN rather than on
the command line.

Exit status: 0 when InfluxDB and the log agree, 1 when there is any finding,
2 when the audit could not run (a checkpoint that does not verify, a log
that does not match it, InfluxDB unreachable).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logKey == "" {
				return errors.New("--log-key is required: the log's note verifier key, obtained out of band")
			}
			v, err := note.NewVerifier(strings.TrimSpace(logKey))
			if err != nil {
				return fmt.Errorf("--log-key: %w", err)
			}
			store, err := audit.NewInflux(ic)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c := &httpapi.Client{BaseURL: server}
			var signedCP []byte
			switch {
			case cpFile != "" && monitorState != "":
				return errors.New("give --checkpoint or --monitor-state, not both")
			case cpFile != "":
				if signedCP, err = readCheckpointFile(cpFile); err != nil {
					return err
				}
			case monitorState != "":
				st, err := monitor.ReadState(monitorState, utility, v)
				if err != nil {
					return fmt.Errorf("--monitor-state: %w", err)
				}
				if st == nil {
					return fmt.Errorf("--monitor-state %s: the monitor has verified no checkpoint of %s yet", monitorState, utility)
				}
				signedCP = []byte(st.Checkpoint)
			default:
				if signedCP, err = c.Checkpoint(ctx, utility); err != nil {
					return fmt.Errorf("log %s: %w", utility, err)
				}
			}
			cp, err := anchor.OpenCheckpoint(signedCP, v)
			if err != nil {
				return fmt.Errorf("log %s: %w", utility, err)
			}
			if policyFile != "" {
				policy, err := witness.ReadPolicyFile(policyFile)
				if err != nil {
					return fmt.Errorf("--witness-policy: %w", err)
				}
				if err := policy.Check(signedCP); err != nil {
					return fmt.Errorf("log %s: its checkpoint: %w", utility, err)
				}
			}
			rep, err := audit.Run(ctx, c.Log(utility), store, utility, cp)
			if err != nil {
				return err
			}
			rep.Checkpoint = string(signedCP)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				err = rep.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if !rep.Clean() {
				return exitWrong
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "http://127.0.0.1:8480", "tapproof HTTP API to read the log back from ($TAPPROOF_SERVER)")
	f.StringVar(&utility, "utility", "", "utility (water system) id")
	f.StringVar(&logKey, "log-key", "", "the log's note verifier key ($TAPPROOF_LOG_KEY)")
	f.StringVar(&cpFile, "checkpoint", "", "audit at this signed checkpoint instead of the server's latest; it must verify with --log-key")
	f.StringVar(&monitorState, "monitor-state", "", "audit at the last checkpoint the monitor with this state directory verified ($TAPPROOF_MONITOR_STATE)")
	f.StringVar(&policyFile, "witness-policy", "", "a witness policy the checkpoint's cosignatures must meet ($TAPPROOF_WITNESS_POLICY)")
	f.StringVar(&ic.URL, "influx-url", "http://127.0.0.1:8086", "InfluxDB URL ($TAPPROOF_INFLUX_URL)")
	f.StringVar(&ic.Database, "influx-db", "tapproof", "InfluxDB database, db or db/rp ($TAPPROOF_INFLUX_DB)")
	f.StringVar(&ic.Token, "influx-token", "", `read-only InfluxDB credentials, "user:password" for 1.8 or a token; a secret, better in the environment ($TAPPROOF_AUDIT_INFLUX_TOKEN)`)
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	_ = cmd.MarkFlagRequired("utility")
	return cmd
}

// readCheckpointFile reads a signed checkpoint from a file.
func readCheckpointFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, auditMaxCheckpoint+1))
	if err != nil {
		return nil, fmt.Errorf("--checkpoint %s: %w", name, err)
	}
	if len(b) > auditMaxCheckpoint {
		return nil, fmt.Errorf("--checkpoint %s: more than %d bytes: not a checkpoint", name, auditMaxCheckpoint)
	}
	return b, nil
}
