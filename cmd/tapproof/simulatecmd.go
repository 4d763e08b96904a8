package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/simulate"
)

func newSimulateCmd() *cobra.Command {
	var (
		natsURL, server, fleetFile string
		caFile                     string
		fc                         simulate.FleetConfig
		rate                       float64
		duration                   time.Duration
		noSpikes                   bool
		labFile                    string
		labAfter                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run simulated lead and NIRS sensors that sign and publish readings",
		Long: `Run a fleet of simulated sensors. The fleet (device ids and private keys) is
kept in --fleet so a second run continues with the same devices. Devices are
enrolled through the admin API first (TAPPROOF_ADMIN_TOKEN). Unless
--no-spikes, the second site of the first utility sees a 24 ppb lead spike
15 s after start, for 20 s, every 5 minutes.

With --lab, a simulated certified lab (its key kept in that file; give its
public key to serve with --lab-key) reports, --lab-after the start, 20 lead
results of the first utility's previous half-year monitoring period whose
90th percentile, 17 ppb, exceeds the action level: tapproof raises the
Tier 1 alert. A period already reported is not reported again.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger("info")
			fleet, err := simulate.LoadOrCreate(fleetFile, fc)
			if err != nil {
				return err
			}
			if token := os.Getenv("TAPPROOF_ADMIN_TOKEN"); token != "" {
				if err := fleet.Enroll(cmd.Context(), server, token); err != nil {
					return err
				}
				log.Info("fleet enrolled", slog.Int("devices", len(fleet.Sensors)))
			} else {
				log.Warn("TAPPROOF_ADMIN_TOKEN not set: assuming the fleet is enrolled already")
			}
			// Each sensor, and the lab, connects with its own key: the
			// broker admits nobody else.
			dial := func(s *simulate.Sensor) (*nats.Conn, error) {
				return broker.DialParty(natsURL, caFile, broker.Device, s.Device.ID, s.Key, nats.MaxReconnects(-1))
			}
			var spikes []simulate.Spike
			if !noSpikes {
				spikes = fleet.DefaultSpikes()
				for _, s := range spikes {
					log.Info("scripted lead spike", slog.String("utility", s.Utility), slog.String("site", s.Site),
						slog.Duration("after", s.After), slog.Duration("for", s.For), slog.Float64("ppb", s.PPB))
				}
			}
			if labFile != "" {
				lab, err := simulate.LoadOrCreateLab(labFile, "demo-lab")
				if err != nil {
					return err
				}
				utility := fleet.Sensors[0].Device.Utility
				lnc, err := broker.DialParty(natsURL, caFile, broker.Lab, lab.ID, lab.Key, nats.MaxReconnects(-1))
				if err != nil {
					return err
				}
				defer lnc.Close()
				js, err := jetstream.New(lnc)
				if err != nil {
					return err
				}
				go func() {
					select {
					case <-cmd.Context().Done():
						return
					case <-time.After(labAfter):
					}
					if err := reportRound(cmd.Context(), js, server, lab, utility, log); err != nil {
						log.Error("simulated lab", slog.Any("error", err))
					}
				}()
			}
			var n int
			start := time.Now()
			err = fleet.Run(cmd.Context(), dial, simulate.Config{Rate: rate, Duration: duration, Spikes: spikes,
				OnPublish: func(tapproof.Reading) { n++ }})
			log.Info("simulation stopped", slog.Int("published", n), slog.Duration("elapsed", time.Since(start).Round(time.Millisecond)))
			if errors.Is(err, cmd.Context().Err()) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&natsURL, "nats-url", nats.DefaultURL, "NATS server the sensors publish to ($TAPPROOF_NATS_URL)")
	f.StringVar(&caFile, "nats-ca", filepath.Join(env("DATA", "tapproof-data"), "broker", "ca.pem"), "CA certificate the sensors verify the broker with ($TAPPROOF_NATS_CA)")
	f.StringVar(&server, "server", "http://127.0.0.1:8480", "tapproof HTTP API, for enrollment ($TAPPROOF_SERVER)")
	f.StringVar(&fleetFile, "fleet", filepath.Join(env("DATA", "tapproof-data"), "simulated-fleet.json"), "file keeping the fleet's devices and keys")
	f.IntVar(&fc.Utilities, "utilities", 2, "utilities (new fleet only)")
	f.IntVar(&fc.Sites, "sites", 3, "sites per utility (new fleet only)")
	f.IntVar(&fc.LeadPerSite, "lead-per-site", 1, "lead sensors per site (new fleet only)")
	f.IntVar(&fc.NIRSPerUtil, "nirs", 1, "NIRS sensors per utility (new fleet only)")
	f.Float64Var(&rate, "rate", 0, "readings per second across the fleet (0: one per sensor every 2 s)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until interrupted)")
	f.BoolVar(&noSpikes, "no-spikes", false, "no scripted lead spikes")
	f.StringVar(&labFile, "lab", "", "file keeping a simulated certified lab's key; with it the lab reports a monitoring period")
	f.DurationVar(&labAfter, "lab-after", 30*time.Second, "when the simulated lab reports, after start")
	return cmd
}

// reportRound publishes the simulated lab's round of utility's previous
// half-year, unless the report of that period (GET /v1/compliance) already
// has its samples.
func reportRound(ctx context.Context, js jetstream.JetStream, server string, lab *simulate.Lab, utility string, log *slog.Logger) error {
	period := simulate.PreviousHalf(time.Now())
	round := lab.Round(utility, period, simulate.ExceedingRound)
	u := fmt.Sprintf("%s/v1/compliance/%s/%s", strings.TrimSuffix(server, "/"), utility, period.ID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	var rep struct {
		Samples []json.RawMessage `json:"samples"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&rep)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && err == nil && len(rep.Samples) >= len(round) {
		log.Info("simulated lab: period already reported", slog.String("utility", utility), slog.String("period", period.ID))
		return nil
	}
	for _, s := range round {
		if err := lab.Publish(ctx, js, s); err != nil {
			return err
		}
	}
	log.Info("simulated lab reported a monitoring period", slog.String("lab", lab.ID), slog.String("utility", utility),
		slog.String("period", period.ID), slog.Int("samples", len(round)))
	return nil
}
