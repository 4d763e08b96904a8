package platform

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/alerts/webhook"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/witness"
)

// Config is the configuration of a tapproof server (`tapproof serve`).
// Flags and TAPPROOF_* environment variables fill it in cmd/tapproof,
// starting from DefaultConfig; tests fill it directly. Zero fields take the
// defaults (Validate).
type Config struct {
	DataDir    string // embedded NATS store and log signing keys
	HTTPAddr   string
	NATSURL    string // external NATS; empty runs an embedded server
	NATSListen string // embedded server's client address
	// Replicas is how many copies JetStream keeps of every stream and
	// bucket tapproof uses, checked against the cluster's size at start;
	// 0 picks 1 on a single server and 3 on a cluster of three or more.
	Replicas int
	// BrokerDir holds the broker's nkeys and, unless NATSTLS names other
	// files, its local CA and certificate; <DataDir>/broker by default.
	// With an external NATS it must hold what 'tapproof broker init' wrote.
	BrokerDir string
	// NATSTLS are the broker listener's certificate files; empty fields
	// use the local CA in BrokerDir.
	NATSTLS broker.TLSFiles
	// Intake bounds each device's and lab's publishing rate.
	Intake ingest.IntakeConfig
	// StallAfter is how long a consumer may have work pending without
	// finishing any before /readyz fails; DefaultStallAfter if zero.
	StallAfter   time.Duration
	TrillianAddr string
	InfluxURL    string
	InfluxDB     string
	InfluxToken  string // secret
	InfluxOrg    string // InfluxDB 2.x organisation
	AdminToken   string // secret
	Origin       string // checkpoint origin prefix; a log's origin is <Origin>/<utility>
	// LeadActionLevel, if > 0, replaces the lead action level of screening
	// readings (tapproof.RuleBook.LeadOverride).
	LeadActionLevel    float64
	Jurisdictions      map[string]tapproof.Jurisdiction
	Webhooks           []webhook.Config
	DevicesFile        string // signed enrollments loaded at start
	CheckpointInterval time.Duration
	// WitnessPolicy, if set, names the witnesses every checkpoint is
	// submitted to and which of them must cosign it; the checkpoints and
	// bundles served are then the latest that met it.
	WitnessPolicy *witness.Policy
	// AuditInterval, if > 0, is how often each log's InfluxDB points are
	// audited against it (package audit), with AuditInfluxToken.
	AuditInterval time.Duration
	// AuditInfluxToken are read-only InfluxDB credentials for the audit
	// (secret); InfluxToken if empty.
	AuditInfluxToken string
	BatchSize        int
	Workers          int
	// Residents: the public pages, notices and their channels.
	PublicURL   string // base URL of the public pages, for links in notices and CAP
	PublicTitle string
	CAPSender   string
	SitesFile   string // JSON []notice.Site: names, service areas, CAP geocodes
	SMTP        residents.SMTPConfig
	// TrustedProxies are the reverse proxies in front of the public pages
	// whose X-Forwarded-For names the client their rate limits count
	// (public.Config.TrustedProxies); none by default.
	TrustedProxies []netip.Prefix
	Screening      alerts.ScreenerConfig
	// ComplianceKeys are the certified labs' and state reviewers' public
	// keys: lab samples and invalidations are accepted, and compliance
	// reports computed, with these keys only.
	ComplianceKeys compliance.KeySet
	// Rounding is the state's rounding of a fractional rank 0.9 × n in the
	// 90th percentile; compliance.HalfUp if empty, the default of
	// `tapproof compliance` too, so that a report served and one
	// recomputed with default flags agree.
	Rounding compliance.Rounding
	// NoticeDeadlines are the notice clocks reports check the log's notice
	// records against; compliance.DefaultNoticeDeadlines where zero.
	NoticeDeadlines compliance.NoticeDeadlines
	// DebugAddr, if set, serves net/http/pprof there (keep it on loopback).
	DebugAddr string
	Log       *slog.Logger
	// Ready, if set, receives the HTTP and NATS addresses once serving.
	Ready func(httpAddr, natsURL string)
}

// DefaultConfig returns the configuration a server runs with when nothing
// is configured: everything on loopback, data in ./tapproof-data.
func DefaultConfig() Config {
	return Config{
		DataDir:            "tapproof-data",
		HTTPAddr:           httpapi.DefaultAddr,
		NATSListen:         fmt.Sprintf("127.0.0.1:%d", journal.DefaultPort),
		Intake:             ingest.IntakeConfig{Rate: ingest.DefaultPartyRate, Burst: ingest.DefaultPartyBurst},
		StallAfter:         DefaultStallAfter,
		TrillianAddr:       "127.0.0.1:8090",
		InfluxURL:          "http://127.0.0.1:8086",
		InfluxDB:           "tapproof",
		Origin:             "tapproof.local/log",
		CheckpointInterval: 2 * time.Second,
		PublicTitle:        "Drinking water status",
		CAPSender:          "alerts@tapproof.local",
		Rounding:           compliance.HalfUp,
		NoticeDeadlines:    compliance.DefaultNoticeDeadlines,
	}
}

// Validate fills the zero fields of c with DefaultConfig's (BrokerDir with
// <DataDir>/broker, Log with slog.Default) and checks c before anything
// starts. Run calls it.
func (c *Config) Validate() error {
	d := DefaultConfig()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.DataDir, d.DataDir)
	def(&c.BrokerDir, filepath.Join(c.DataDir, "broker"))
	def(&c.HTTPAddr, d.HTTPAddr)
	def(&c.NATSListen, d.NATSListen)
	def(&c.TrillianAddr, d.TrillianAddr)
	def(&c.InfluxURL, d.InfluxURL)
	def(&c.InfluxDB, d.InfluxDB)
	def(&c.Origin, d.Origin)
	def(&c.PublicTitle, d.PublicTitle)
	def(&c.CAPSender, d.CAPSender)
	if c.Intake.Rate <= 0 {
		c.Intake.Rate = d.Intake.Rate
	}
	if c.Intake.Burst <= 0 {
		c.Intake.Burst = d.Intake.Burst
	}
	if c.StallAfter <= 0 {
		c.StallAfter = d.StallAfter
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = d.CheckpointInterval
	}
	if c.Rounding == "" {
		c.Rounding = d.Rounding
	}
	if c.NoticeDeadlines.Tier1 <= 0 {
		c.NoticeDeadlines.Tier1 = d.NoticeDeadlines.Tier1
	}
	if c.NoticeDeadlines.Individual <= 0 {
		c.NoticeDeadlines.Individual = d.NoticeDeadlines.Individual
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if _, err := compliance.ParseRounding(string(c.Rounding)); err != nil {
		return err
	}
	if err := c.Screening.Validate(); err != nil {
		return err
	}
	if c.LeadActionLevel < 0 {
		return fmt.Errorf("lead action level %g must not be negative", c.LeadActionLevel)
	}
	if strings.ContainsAny(c.Origin, " +\n") {
		return fmt.Errorf("origin %q must not contain spaces or '+'", c.Origin)
	}
	for _, w := range c.Webhooks {
		if err := w.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// LogValue describes the configuration for the log without its secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("data_dir", c.DataDir), slog.String("http", c.HTTPAddr),
		slog.Bool("nats_embedded", c.NATSURL == ""), slog.String("broker_dir", c.BrokerDir), slog.String("trillian", c.TrillianAddr),
		slog.String("influx", c.InfluxURL), slog.String("influx_db", c.InfluxDB),
		slog.Bool("admin_api", c.AdminToken != ""), slog.Int("webhooks", len(c.Webhooks)),
		slog.Float64("lead_action_level_override", c.LeadActionLevel),
		slog.String("public_url", c.PublicURL), slog.Bool("smtp", c.SMTP.Host != ""),
	)
}
