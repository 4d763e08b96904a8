// Command tapproof is the tapproof water-quality platform: it verifies
// signed sensor readings from NATS JetStream, stores them in InfluxDB and in
// a Trillian verifiable log per utility, raises lead alerts, and serves the
// proofs regulators check.
//
// Subcommands:
//
//	tapproof serve      run the platform
//	tapproof simulate   run simulated sensors against a running platform
//	tapproof verify     check an offline reading bundle (for regulators)
//	tapproof device     generate device keys and enroll devices
//	tapproof compliance compute a monitoring period's 90th percentile from the log
//	tapproof monitor    follow logs as a regulator, keeping state and evidence
//	tapproof audit      check InfluxDB against the log: nothing deleted, changed or added
//	tapproof household-code  the code a household subscribes to its own lab result with
//
// Flags and TAPPROOF_* environment variables are read here and nowhere else.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "tapproof:", err)
		os.Exit(int(exitUnchecked))
	}
}

// exitCode ends the program with a status and no further message.
type exitCode int

// The exit statuses of tapproof, as diff's: 0 all is well; 1 something was
// checked and found wrong (verify's failed check, a finding of audit or
// monitor --once); 2 nothing could be checked or done (bad flags or input,
// a server unreachable, any other error).
const (
	exitWrong     = exitCode(1)
	exitUnchecked = exitCode(2)
)

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tapproof",
		Short:         "Tamper-evident water-quality monitoring",
		Long:          "tapproof verifies signed sensor readings, stores them in InfluxDB and a Trillian verifiable log, raises lead alerts, and serves proofs regulators can check offline.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every command's flags take their environment variables here,
		// so that a bad value is an error, as on the command line.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd.Flags()) },
	}
	root.AddCommand(newServeCmd(), newSimulateCmd(), newVerifyCmd(), newDeviceCmd(), newComplianceCmd(), newAuditCmd(), newBrokerCmd(), newMonitorCmd(), newHouseholdCodeCmd())
	return root
}

// envName finds the environment variable of a flag in its usage, which
// ends "($TAPPROOF_NAME)" when it has one.
var envName = regexp.MustCompile(`\(\$(TAPPROOF_[A-Z0-9_]+)\)$`)

// bindEnv sets each flag not given on the command line from its
// environment variable, if set. A value that does not parse is an error
// naming the variable.
func bindEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		m := envName.FindStringSubmatch(f.Usage)
		if m == nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(m[1]); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("$%s: %w", m[1], err))
			}
		}
	})
	return errors.Join(errs...)
}

// env returns the value of TAPPROOF_<name>, or def: for defaults computed
// from another variable.
func env(name, def string) string {
	if v, ok := os.LookupEnv("TAPPROOF_" + name); ok {
		return v
	}
	return def
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
