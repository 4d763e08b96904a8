package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/alerts/webhook"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/platform"
	"github.com/tapproof/tapproof/witness"
)

func newServeCmd() *cobra.Command {
	var (
		cfg           = platform.DefaultConfig()
		jurisdictions []string
		webhooks      []string
		logLevel      string
		labKeys       []string
		reviewerKeys  []string
		keysFile      string
		rounding      string
		policyFile    string
		proxies       []string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the platform: ingest, log, alerts and the HTTP API",
		Long: `Run the platform. Secrets come from the environment only:
  TAPPROOF_ADMIN_TOKEN     bearer token of the admin API (enrollment); unset disables it
  TAPPROOF_INFLUX_TOKEN    InfluxDB credentials ("user:password" for 1.8, a token for 2.x/3.x)
  TAPPROOF_AUDIT_INFLUX_TOKEN  read-only InfluxDB credentials of --audit-every (default: the above)
  TAPPROOF_WEBHOOK_SECRET  HMAC key for webhook signatures
  TAPPROOF_SMTP_PASSWORD   SMTP password for residents' email notices`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.AdminToken = os.Getenv("TAPPROOF_ADMIN_TOKEN")
			cfg.InfluxToken = os.Getenv("TAPPROOF_INFLUX_TOKEN")
			cfg.AuditInfluxToken = os.Getenv("TAPPROOF_AUDIT_INFLUX_TOKEN")
			cfg.SMTP.Password = os.Getenv("TAPPROOF_SMTP_PASSWORD")
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
				cfg.Webhooks = append(cfg.Webhooks, webhook.Config{URL: u, Secret: secret})
			}
			var err error
			if cfg.ComplianceKeys, err = complianceKeys(keysFile, labKeys, reviewerKeys); err != nil {
				return err
			}
			if cfg.Rounding, err = compliance.ParseRounding(rounding); err != nil {
				return fmt.Errorf("--rounding: %w", err)
			}
			for _, p := range proxies {
				pr, err := netip.ParsePrefix(p)
				if a, aerr := netip.ParseAddr(p); aerr == nil {
					pr, err = a.Prefix(a.BitLen())
				}
				if err != nil {
					return fmt.Errorf("--trusted-proxy %q: want an address or a CIDR prefix", p)
				}
				cfg.TrustedProxies = append(cfg.TrustedProxies, pr.Masked())
			}
			if policyFile != "" {
				if cfg.WitnessPolicy, err = witness.ReadPolicyFile(policyFile); err != nil {
					return fmt.Errorf("--witness-policy: %w", err)
				}
			}
			return platform.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&proxies, "trusted-proxy", nil, "a reverse proxy (address or CIDR) whose X-Forwarded-For names the client the public pages' rate limits count (repeatable)")
	f.StringArrayVar(&labKeys, "lab-key", nil, "a certified lab's key, LAB=BASE64 Ed25519 public key (repeatable)")
	f.StringArrayVar(&reviewerKeys, "reviewer-key", nil, "a state reviewer's key, ID=BASE64 Ed25519 public key (repeatable)")
	f.StringVar(&keysFile, "compliance-keys", "", `JSON file of lab and reviewer keys, {"labs":{"LAB":["BASE64"]},"reviewers":{"ID":["BASE64"]}} ($TAPPROOF_COMPLIANCE_KEYS)`)
	f.DurationVar(&cfg.NoticeDeadlines.Tier1, "tier1-within", cfg.NoticeDeadlines.Tier1, "deadline of the Tier 1 public notice of an action level exceedance, which reports check ($TAPPROOF_TIER1_WITHIN)")
	f.DurationVar(&cfg.NoticeDeadlines.Individual, "consumer-notice-within", cfg.NoticeDeadlines.Individual, "deadline of the consumer notice of an individual result above the action level ($TAPPROOF_CONSUMER_NOTICE_WITHIN)")
	f.StringVar(&rounding, "rounding", string(cfg.Rounding), "the state's rounding of a fractional 90th-percentile rank: half-up, half-even or up ($TAPPROOF_ROUNDING)")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory: embedded NATS store and log signing keys ($TAPPROOF_DATA)")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "HTTP API address ($TAPPROOF_HTTP)")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS server or cluster (comma-separated URLs); empty runs an embedded one ($TAPPROOF_NATS_URL)")
	f.IntVar(&cfg.Replicas, "replicas", 0, "copies JetStream keeps of every stream and bucket, at most the cluster's servers; 0: 1 on one server, 3 on a cluster of 3 or more ($TAPPROOF_REPLICAS)")
	f.StringVar(&cfg.BrokerDir, "broker-dir", "", "the broker's nkeys and local CA; with --nats-url, what 'tapproof broker init' wrote (default <data>/broker) ($TAPPROOF_BROKER_DIR)")
	f.StringVar(&cfg.NATSTLS.Cert, "nats-cert", "", "embedded broker: TLS certificate chain (PEM); default a local CA's ($TAPPROOF_NATS_CERT)")
	f.StringVar(&cfg.NATSTLS.Key, "nats-key", "", "embedded broker: TLS key (PEM) ($TAPPROOF_NATS_KEY)")
	f.StringVar(&cfg.NATSTLS.CA, "nats-ca", "", "CA that signed the broker's certificate, which tapproof verifies ($TAPPROOF_NATS_CA)")
	f.Float64Var(&cfg.Intake.Rate, "device-rate", cfg.Intake.Rate, "messages per second one device or lab may publish; the excess is refused as rate_limited")
	f.IntVar(&cfg.Intake.Burst, "device-burst", cfg.Intake.Burst, "burst above --device-rate one device or lab may publish")
	f.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen, "client address of the embedded NATS server ($TAPPROOF_NATS_LISTEN)")
	f.StringVar(&cfg.TrillianAddr, "trillian", cfg.TrillianAddr, "Trillian log server gRPC address ($TAPPROOF_TRILLIAN)")
	f.StringVar(&cfg.InfluxURL, "influx-url", cfg.InfluxURL, "InfluxDB URL ($TAPPROOF_INFLUX_URL)")
	f.StringVar(&cfg.InfluxDB, "influx-db", cfg.InfluxDB, "InfluxDB database (1.8: db or db/rp) or bucket (2.x/3.x) ($TAPPROOF_INFLUX_DB)")
	f.StringVar(&cfg.InfluxOrg, "influx-org", "", "InfluxDB 2.x organisation; 1.8 and 3.x ignore it ($TAPPROOF_INFLUX_ORG)")
	f.StringVar(&cfg.Origin, "origin", cfg.Origin, "checkpoint origin prefix; each log is <origin>/<utility> ($TAPPROOF_ORIGIN)")
	f.StringVar(&cfg.DevicesFile, "devices", "", "file of signed enrollments to enroll at start ($TAPPROOF_DEVICES)")
	f.Float64Var(&cfg.LeadActionLevel, "lead-action-level", 0, "override the lead action level of screening readings in ppb; 0 uses the rule in force (15 ppb, 10 ppb from 2027-11-01); lab samples and reports always follow the rules ($TAPPROOF_LEAD_ACTION_LEVEL)")
	f.StringArrayVar(&jurisdictions, "jurisdiction", nil, "utility=JURISDICTION, e.g. flint=US-MI; default US (repeatable)")
	f.StringArrayVar(&webhooks, "webhook", nil, "URL to POST alerts to, signed with TAPPROOF_WEBHOOK_SECRET (repeatable)")
	f.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", cfg.CheckpointInterval, "how often each log's new tree head is checked and signed")
	f.StringVar(&policyFile, "witness-policy", "", "witness policy file: every checkpoint goes to its witnesses, and checkpoints and bundles are served once their cosignatures meet it ($TAPPROOF_WITNESS_POLICY)")
	f.DurationVar(&cfg.AuditInterval, "audit-every", 0, "audit each log's InfluxDB points against it this often, counting discrepancies on /metrics; 0 never ($TAPPROOF_AUDIT_EVERY)")
	f.StringVar(&cfg.PublicURL, "public-url", "", "base URL of the public pages, used in notices and CAP alerts (default: the HTTP address) ($TAPPROOF_PUBLIC_URL)")
	f.StringVar(&cfg.PublicTitle, "public-title", cfg.PublicTitle, "title of the public pages and sender name of CAP alerts ($TAPPROOF_PUBLIC_TITLE)")
	f.StringVar(&cfg.CAPSender, "cap-sender", cfg.CAPSender, "CAP sender id, e.g. alerts@water.example.org ($TAPPROOF_CAP_SENDER)")
	f.StringVar(&cfg.SitesFile, "sites-file", "", "JSON list of sites: names, service areas, CAP geocodes ($TAPPROOF_SITES_FILE)")
	f.StringVar(&cfg.SMTP.Host, "smtp-host", "", "SMTP server for residents' email notices; empty disables email ($TAPPROOF_SMTP_HOST)")
	f.IntVar(&cfg.SMTP.Port, "smtp-port", residents.DefaultSMTPPort, "SMTP port ($TAPPROOF_SMTP_PORT)")
	f.StringVar(&cfg.SMTP.Username, "smtp-user", "", "SMTP user; password in TAPPROOF_SMTP_PASSWORD ($TAPPROOF_SMTP_USER)")
	f.StringVar(&cfg.SMTP.From, "smtp-from", "", "sender address of notices ($TAPPROOF_SMTP_FROM)")
	f.StringVar(&cfg.SMTP.TLS, "smtp-tls", residents.SMTPTLSMandatory, "mandatory, opportunistic or none ($TAPPROOF_SMTP_TLS)")
	f.Float64Var(&cfg.Screening.Recovery, "screening-recovery", alerts.DefaultRecovery, "a screening alert clears at or below this fraction of the level (hysteresis)")
	f.DurationVar(&cfg.Screening.Pending, "screening-pending", 0, "how long an exceedance must persist before a screening alert fires")
	f.DurationVar(&cfg.Screening.ClearAfter, "screening-clear-after", 0, "how long values must stay recovered before the all-clear")
	f.Float64Var(&cfg.Screening.Escalation, "screening-escalation", alerts.DefaultEscalation, "factor above the last reported value that publishes an update; -1 never")
	f.IntVar(&cfg.Screening.FlapCount, "screening-flap-count", alerts.DefaultFlapCount, "firings of one device's alert within the flap window that make it flapping: its alert then stays open; -1 never")
	f.DurationVar(&cfg.Screening.FlapWindow, "screening-flap-window", alerts.DefaultFlapWindow, "the flap window, and how long a flapping device must read low before its all-clear")
	f.IntVar(&cfg.Workers, "workers", 0, "ingest workers (0: default)")
	f.DurationVar(&cfg.StallAfter, "stall-after", cfg.StallAfter, "how long a consumer may have work pending without finishing any before /readyz fails")
	f.StringVar(&cfg.DebugAddr, "debug-addr", "", "serve Go's pprof profiles here, e.g. 127.0.0.1:6060 (off by default)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error ($TAPPROOF_LOG_LEVEL)")
	return cmd
}
