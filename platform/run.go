package platform

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // on --debug-addr only
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/alerts/webhook"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/influx"
	"github.com/tapproof/tapproof/ingest"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/public"
)

// Run runs tapproof until ctx is done, with cfg (see Config.Validate). Shutdown order: stop the HTTP API
// and intake, let in-flight readings finish, stop the sinks (each leaves
// unacknowledged entries in the journal for next time), close clients, and
// last stop the embedded NATS server.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Log
	log.Info("starting tapproof", slog.Any("config", cfg))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	natsURL := cfg.NATSURL
	tlsFiles := cfg.NATSTLS
	var keys *broker.Keys
	var err error
	// local, for the embedded server, connects tapproof's own clients to it
	// in process: no socket, no TLS, and nothing a stranger can reach. The
	// server still checks their nkeys.
	var local []nats.Option
	if natsURL == "" {
		host, port, err := splitHostPort(cfg.NATSListen)
		if err != nil {
			return fmt.Errorf("nats listen: %w", err)
		}
		if keys, err = broker.LoadOrCreateKeys(cfg.BrokerDir); err != nil {
			return err
		}
		if tlsFiles.Cert == "" {
			if tlsFiles, err = broker.EnsureLocalCA(cfg.BrokerDir, host); err != nil {
				return err
			}
		}
		ns, err := journal.StartServer(journal.ServerConfig{Dir: filepath.Join(cfg.DataDir, "nats"), Host: host, Port: port,
			Config: broker.ServerConfig{Keys: keys, TLS: tlsFiles}.Render()})
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		natsURL = ns.ClientURL()
		local = append(local, nats.InProcessServer(ns))
		log.Info("embedded NATS started", slog.String("url", natsURL), slog.String("ca", tlsFiles.CA))
	} else {
		if keys, err = broker.LoadKeys(cfg.BrokerDir); err != nil {
			return err
		}
		if tlsFiles.CA == "" {
			if _, err := os.Stat(filepath.Join(cfg.BrokerDir, broker.CAFile)); err == nil {
				tlsFiles.CA = filepath.Join(cfg.BrokerDir, broker.CAFile)
			}
		}
	}
	nc, err := natsConnect(natsURL, keys.Service, tlsFiles.CA, "tapproof", local...)
	if err != nil {
		return err
	}
	defer nc.Close()
	sys, err := natsConnect(natsURL, keys.System, tlsFiles.CA, "tapproof-system", local...)
	if err != nil {
		return err
	}
	defer sys.Close()
	// The edge (the callout and the intake) and the urgent path (the alert
	// lane, the alert store and the screening state) have connections of
	// their own: one connection is one TCP stream, and under load the bulk
	// consumers' deliveries would queue in front of them.
	edge, err := natsConnect(natsURL, keys.Service, tlsFiles.CA, "tapproof-edge", local...)
	if err != nil {
		return err
	}
	defer edge.Close()
	urgent, err := natsConnect(natsURL, keys.Service, tlsFiles.CA, "tapproof-urgent", local...)
	if err != nil {
		return err
	}
	defer urgent.Close()
	// The callout's answers come from a user that may do nothing else.
	callout, err := natsConnect(natsURL, keys.Callout, tlsFiles.CA, "tapproof-callout", local...)
	if err != nil {
		return err
	}
	defer callout.Close()
	edgeJS, err := jetstream.New(edge)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	urgentJS, err := jetstream.New(urgent)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	n, err := replicas(ctx, sys, cfg.Replicas)
	if err != nil {
		return err
	}
	log.Info("JetStream replicas", slog.Int("replicas", n))
	js, edgeJS, urgentJS = journal.Replicated(js, n), journal.Replicated(edgeJS, n), journal.Replicated(urgentJS, n)
	sealKey, err := journal.LoadOrCreateSealKey(filepath.Join(cfg.DataDir, "journal-seal.key"))
	if err != nil {
		return err
	}
	j, err := openJournal(ctx, js, log, journal.WithSealKey(sealKey))
	if err != nil {
		return err
	}
	// The alert lane looks device heads up on the urgent connection.
	laneJournal, err := journal.Open(ctx, urgentJS, journal.WithSealKey(sealKey))
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := newPlatformMetrics(reg)
	stalls := newStallWatch(cfg.StallAfter, reg)

	trillian, err := anchor.Dial(ctx, cfg.TrillianAddr)
	if err != nil {
		return err
	}
	defer trillian.Close()
	iw, err := influx.New(influx.Config{URL: cfg.InfluxURL, Database: cfg.InfluxDB, Token: cfg.InfluxToken, Org: cfg.InfluxOrg})
	if err != nil {
		return err
	}
	defer iw.Close()
	var auditStore audit.Store
	if cfg.AuditInterval > 0 {
		token := cfg.AuditInfluxToken
		if token == "" {
			token = cfg.InfluxToken
		}
		if auditStore, err = audit.NewInflux(audit.InfluxConfig{URL: cfg.InfluxURL, Database: cfg.InfluxDB, Token: token}); err != nil {
			return err
		}
	}

	alertMetrics := alerts.NewMetrics(reg)
	store, err := alerts.NewStore(ctx, urgentJS, alertMetrics)
	if err != nil {
		return err
	}
	registry, err := j.Registry(ctx)
	if err != nil {
		return err
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tapproof_registry_foreign_changes_total",
		Help: "Changes of the devices bucket tapproof did not write (an entry without a valid seal, a deletion): ignored and undone; the registry follows the log.",
	}, func() float64 { return float64(registry.Foreign()) }))

	p := &app{cfg: cfg, journal: j, registry: registry, trillian: trillian, sys: sys, log: log, logs: map[string]*utilityLog{},
		leavesRead: metrics.leavesRead, leafReads: make(chan struct{}, maxLeafReads)}
	if err := p.openLogs(ctx); err != nil {
		return err
	}
	if err := loadDevices(ctx, p, cfg.DevicesFile, log); err != nil {
		return err
	}

	// One RuleBook decides every action level: screening alerts, the
	// individual compliance alerts and the reports.
	rules := tapproof.RuleBook{Jurisdictions: cfg.Jurisdictions, LeadOverride: cfg.LeadActionLevel}
	eval := alerts.NewEvaluator(rules)
	states, err := alerts.NewScreeningKV(ctx, urgentJS)
	if err != nil {
		return err
	}
	screener, err := alerts.NewScreener(eval, store, states, cfg.Screening, alertMetrics, log)
	if err != nil {
		return err
	}
	labs, reviewers, complianceAPI, err := newComplianceParts(cfg.ComplianceKeys, cfg.Rounding, rules, j)
	if err != nil {
		return err
	}
	complianceAPI.deadlines = cfg.NoticeDeadlines
	exceedances := &exceedanceWatch{journal: j, reports: complianceAPI, alerts: store, log: log, now: time.Now,
		failed: metrics.sinkErrors.WithLabelValues("exceedance").Inc}
	ingestMetrics := ingest.NewMetrics(reg)
	in := ingest.New(ingest.Config{Workers: cfg.Workers, Labs: labs, Reviewers: reviewers}, js, registry, j, screener, ingestMetrics, log)
	intake := ingest.NewIntake(cfg.Intake, edgeJS, ingestMetrics, log)
	lanes := laneParts{nc: urgent, heads: laneJournal,
		cfg: ingest.LaneConfig{Urgent: screener.Urgent, Rate: cfg.Intake.Rate, Burst: cfg.Intake.Burst}}
	authz := broker.NewAuthorizer(broker.AuthorizerConfig{Issuer: keys.Issuer, XKey: keys.XKey},
		partyDirectory{registry: registry, keys: cfg.ComplianceKeys}, reg, log)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	defer ln.Close()
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String() + "/"
	}

	// Residents: subscriptions, notices, the public pages.
	sites, err := newSiteDirectory(cfg.SitesFile, registry)
	if err != nil {
		return err
	}
	// The key of the households' codes, shared by every replica like the
	// seal key: a code issued by one is checked by another.
	householdKey, err := residents.LoadOrCreateHouseholdKey(filepath.Join(cfg.DataDir, "household-code.key"))
	if err != nil {
		return err
	}
	households, err := residents.NewHouseholdCodes(householdKey)
	if err != nil {
		return err
	}
	subs, err := residents.NewSubscriptions(ctx, js, residents.SubscriptionsConfig{Households: households})
	if err != nil {
		return err
	}
	var mailer residents.Mailer
	if cfg.SMTP.Host != "" {
		if mailer, err = residents.NewSMTPMailer(cfg.SMTP); err != nil {
			return err
		}
	}
	links := notice.Links{Base: cfg.PublicURL}
	notifier, err := residents.NewNotifier(ctx, js, subs, sites, residents.NotifierConfig{Links: links, Mailer: mailer, NoticeLog: j}, residents.NewMetrics(reg), log)
	if err != nil {
		return err
	}
	reader, err := influx.NewReader(influx.Config{URL: cfg.InfluxURL, Database: cfg.InfluxDB, Token: cfg.InfluxToken, Org: cfg.InfluxOrg})
	if err != nil {
		return err
	}
	var wh *webhook.Deliverer
	if len(cfg.Webhooks) > 0 {
		if wh, err = webhook.NewDeliverer(js, cfg.Webhooks, webhook.NewMetrics(reg), log); err != nil {
			return err
		}
	}
	// Every replica serves the API; the one holding the lease "leader" also
	// runs the notifiers and decides messages no utility's ingest takes.
	holder := holderName()
	lead := func(ctx context.Context) error {
		log.Info("leading: starting the notifiers")
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return notifier.Run(gctx) })
		if wh != nil {
			g.Go(func() error { return wh.Run(gctx) })
		}
		g.Go(func() error { return sweepStrays(gctx, p, in, holder) })
		err := g.Wait()
		log.Info("no longer leading")
		if err != nil && ctx.Err() == nil {
			failed(ctx, log, "the notifiers", err)
		}
		return nil
	}
	// Each utility's log and ingest run on the replica holding its own lease.
	logs := &logLeases{p: p, holder: holder, ttl: journal.DefaultLeaseTTL, leader: metrics.logLeader, log: log,
		held: map[string]chan struct{}{},
		run: func(ctx context.Context, ul *utilityLog) error {
			r := &logRunner{ul: ul, ingest: in, lane: lanes, journal: j, influx: iw, audit: auditStore, exceedances: exceedances, metrics: metrics, stalls: stalls, cfg: cfg, log: log}
			g, ctx := errgroup.WithContext(ctx)
			r.start(ctx, g)
			err := g.Wait()
			stalls.forget(ul.info.Utility)
			ul.lag.Store(0) // another replica's checkpointer measures it now
			return err
		}}
	lease, err := j.Lease(ctx, "leader", holder, journal.DefaultLeaseTTL)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	// Every replica admits connections and takes devices' messages in.
	g.Go(func() error { return authz.Run(gctx, callout) })
	g.Go(func() error { return intake.Run(gctx, edge) })
	g.Go(func() error { return logs.runAll(gctx) })
	g.Go(func() error {
		return lease.Lead(gctx, lead, func(on bool) {
			p.leading.Store(on)
			metrics.leader.Set(map[bool]float64{false: 0, true: 1}[on])
		})
	})

	api := httpapi.Handler(httpapi.Config{
		Logs: p, Devices: p, Alerts: store, Compliance: complianceAPI, Households: households, Gatherer: reg, AdminToken: cfg.AdminToken, Log: log,
		Ready: func(ctx context.Context) error { return p.ready(ctx, nc, iw, stalls) },
	})
	streamsDone := make(chan struct{})
	pub := public.Handler(public.Config{
		Sites: sites, Readings: reader, Alerts: store, Subscriber: notifier, Title: cfg.PublicTitle, Rules: rules,
		CAP: cap.Config{Sender: cfg.CAPSender, SenderName: cfg.PublicTitle, Links: links}, Log: log, Done: streamsDone,
		TrustedProxies: cfg.TrustedProxies, Metrics: public.NewMetrics(reg),
	})
	srv := httpapi.NewServer(cfg.HTTPAddr, routes(api, pub))
	srv.RegisterOnShutdown(func() { close(streamsDone) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	if cfg.DebugAddr != "" {
		dbg := &http.Server{Addr: cfg.DebugAddr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := dbg.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("debug listener: %w", err)
			}
			return nil
		})
		g.Go(func() error { <-gctx.Done(); return dbg.Close() })
	}
	log.Info("tapproof serving", slog.String("http", "http://"+ln.Addr().String()), slog.String("nats", natsURL))
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String(), natsURL)
	}
	err = g.Wait()
	log.Info("tapproof stopped")
	return err
}

// openWait is how long serve tries to open the journal at start.
const openWait = time.Minute

// openJournal opens the journal, trying again for up to openWait: on a
// NATS cluster that has just formed, or is electing leaders, creating the
// streams can time out or be refused as temporarily unavailable (seen on
// a cluster of three started a moment before).
func openJournal(ctx context.Context, js jetstream.JetStream, log *slog.Logger, opts ...journal.Option) (*journal.Journal, error) {
	deadline := time.Now().Add(openWait)
	for {
		j, err := journal.Open(ctx, js, opts...)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return j, err
		}
		log.Warn("journal not open yet; will retry", slog.Any("error", err))
		if !sleepCtx(ctx, time.Second) {
			return nil, ctx.Err()
		}
	}
}

// holderName names this replica in the leases: its host, its process and
// a random token, since two replicas may run in one process (tests).
func holderName() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", h, os.Getpid(), rand.Text()[:8])
}

// routes puts the regulator and operator API and the residents' pages on
// one listener: the API's paths go to api, everything else to pub
// (status pages, subscriptions, /v1/alerts/{id}/cap.xml, the feed, live
// events). "/v1/alerts" itself is the API's list.
func routes(api, pub http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", pub)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/logs", "/v1/logs/", "/v1/readings/", "/v1/devices", "/v1/alerts", "/v1/admin/", "/v1/compliance/"} {
		mux.Handle(p, api)
	}
	return mux
}

// ready reports whether every component tapproof writes to answers.
func (p *app) ready(ctx context.Context, nc *nats.Conn, iw *influx.Writer, stalls *stallWatch) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if !nc.IsConnected() {
		return errors.New("nats disconnected")
	}
	p.mu.Lock()
	uls := make([]*utilityLog, 0, len(p.logs))
	for _, ul := range p.logs {
		uls = append(uls, ul)
	}
	p.mu.Unlock()
	// A log whose checkpointer refused first, with its evidence: its
	// anchor, refused by Trillian too, stalls behind it.
	for _, ul := range uls {
		if ie := ul.inconsistent.Load(); ie != nil {
			return fmt.Errorf("log %s is inconsistent, no checkpoint is signed: %w", ul.info.Utility, ie)
		}
		if fe := ul.foreign.Load(); fe != nil {
			return fmt.Errorf("log %s holds a leaf tapproof did not append, no checkpoint is signed: %w", ul.info.Utility, fe)
		}
	}
	if err := stalls.check(); err != nil {
		return err
	}
	if err := iw.Ping(ctx); err != nil {
		return fmt.Errorf("influxdb: %w", err)
	}
	for i, ul := range uls {
		if i == 0 {
			if _, _, err := ul.log.Root(ctx); err != nil {
				return fmt.Errorf("trillian: %w", err)
			}
		}
		if lag := time.Duration(ul.lag.Load()); lag > maxLag {
			return fmt.Errorf("log %s is behind: its oldest unanchored entry waited %s (limit %s)", ul.info.Utility, lag.Round(time.Second), maxLag)
		}
	}
	return nil
}

// loadDevices enrolls the devices of a file of signed enrollments, one JSON
// envelope per line or a JSON array of envelopes.
func loadDevices(ctx context.Context, p *app, path string, log *slog.Logger) error {
	if path == "" {
		return nil
	}
	envs, err := ReadEnrollments(path)
	if err != nil {
		return err
	}
	for _, env := range envs {
		d, err := p.Enroll(ctx, env)
		if err != nil {
			return fmt.Errorf("devices file %s: %w", path, err)
		}
		log.Info("device from file", slog.String("device", d.ID), slog.String("utility", d.Utility))
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscan(ps, &port); err != nil {
		return "", 0, fmt.Errorf("port %q: %w", ps, err)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}
