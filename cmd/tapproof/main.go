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
	"syscall"

	"github.com/spf13/cobra"
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
		os.Exit(1)
	}
}

// exitCode ends the program with a status and no further message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tapproof",
		Short:         "Tamper-evident water-quality monitoring",
		Long:          "tapproof verifies signed sensor readings, stores them in InfluxDB and a Trillian verifiable log, raises lead alerts, and serves proofs regulators can check offline.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newSimulateCmd(), newVerifyCmd(), newDeviceCmd(), newComplianceCmd(), newBrokerCmd())
	return root
}

// env returns the value of TAPPROOF_<name>, or def.
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
