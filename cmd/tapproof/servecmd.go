package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
)

func newServeCmd() *cobra.Command {
	var (
		cfg           serveConfig
		jurisdictions []string
		webhooks      []string
		logLevel      string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the platform: ingest, log, alerts and the HTTP API",
		Long: `Run the platform. Secrets come from the environment only:
  TAPPROOF_ADMIN_TOKEN     bearer token of the admin API (enrollment); unset disables it
  TAPPROOF_INFLUX_TOKEN    InfluxDB credentials ("user:password" for 1.8, a token for 2.x/3.x)
  TAPPROOF_WEBHOOK_SECRET  HMAC key for webhook signatures`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.AdminToken = os.Getenv("TAPPROOF_ADMIN_TOKEN")
			cfg.InfluxToken = os.Getenv("TAPPROOF_INFLUX_TOKEN")
			cfg.Log = newLogger(logLevel)
			cfg.Jurisdictions = map[string]tapproof.Jurisdiction{}
			for _, kv := range jurisdictions {
				u, j, ok := strings.Cut(kv, "=")
				if !ok || !tapproof.ValidID(u) {
					return fmt.Errorf("--jurisdiction %q: want utility=JURISDICTION, e.g. flint=US-MI", kv)
				}
				cfg.Jurisdictions[u] = tapproof.Jurisdiction(j)
			}
			secret := os.Getenv("TAPPROOF_WEBHOOK_SECRET")
			for _, u := range webhooks {
				if secret == "" {
					return fmt.Errorf("--webhook needs TAPPROOF_WEBHOOK_SECRET to sign deliveries")
				}
				cfg.Webhooks = append(cfg.Webhooks, alerts.WebhookConfig{URL: u, Secret: secret})
			}
			return serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", env("DATA", "tapproof-data"), "data directory: embedded NATS store and log signing keys ($TAPPROOF_DATA)")
	f.StringVar(&cfg.HTTPAddr, "http", env("HTTP", "127.0.0.1:8480"), "HTTP API address ($TAPPROOF_HTTP)")
	f.StringVar(&cfg.NATSURL, "nats-url", env("NATS_URL", ""), "external NATS server; empty runs an embedded one ($TAPPROOF_NATS_URL)")
	f.StringVar(&cfg.NATSListen, "nats-listen", env("NATS_LISTEN", "127.0.0.1:4222"), "client address of the embedded NATS server ($TAPPROOF_NATS_LISTEN)")
	f.StringVar(&cfg.TrillianAddr, "trillian", env("TRILLIAN", "127.0.0.1:8090"), "Trillian log server gRPC address ($TAPPROOF_TRILLIAN)")
	f.StringVar(&cfg.InfluxURL, "influx-url", env("INFLUX_URL", "http://127.0.0.1:8086"), "InfluxDB URL ($TAPPROOF_INFLUX_URL)")
	f.StringVar(&cfg.InfluxDB, "influx-db", env("INFLUX_DB", "tapproof"), "InfluxDB database (1.8: db or db/rp) or bucket (2.x/3.x) ($TAPPROOF_INFLUX_DB)")
	f.StringVar(&cfg.InfluxOrg, "influx-org", env("INFLUX_ORG", ""), "InfluxDB 2.x organisation; 1.8 and 3.x ignore it ($TAPPROOF_INFLUX_ORG)")
	f.StringVar(&cfg.Origin, "origin", env("ORIGIN", "tapproof.local/log"), "checkpoint origin prefix; each log is <origin>/<utility> ($TAPPROOF_ORIGIN)")
	f.StringVar(&cfg.DevicesFile, "devices", env("DEVICES", ""), "file of signed enrollments to enroll at start ($TAPPROOF_DEVICES)")
	level, _ := strconv.ParseFloat(env("LEAD_ACTION_LEVEL", "0"), 64)
	f.Float64Var(&cfg.LeadActionLevel, "lead-action-level", level, "override the lead action level in ppb; 0 uses the rule in force (15 ppb, 10 ppb from 2027-11-01) ($TAPPROOF_LEAD_ACTION_LEVEL)")
	f.StringArrayVar(&jurisdictions, "jurisdiction", nil, "utility=JURISDICTION, e.g. flint=US-MI; default US (repeatable)")
	f.StringArrayVar(&webhooks, "webhook", nil, "URL to POST alerts to, signed with TAPPROOF_WEBHOOK_SECRET (repeatable)")
	f.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", 2*time.Second, "how often each log's new tree head is checked and signed")
	f.IntVar(&cfg.Workers, "workers", 0, "ingest workers (0: default)")
	f.StringVar(&cfg.DebugAddr, "debug-addr", "", "serve Go's pprof profiles here, e.g. 127.0.0.1:6060 (off by default)")
	f.StringVar(&logLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error ($TAPPROOF_LOG_LEVEL)")
	return cmd
}
