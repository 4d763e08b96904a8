// Package simulate is a fleet of simulated sensors: lead sensors at several
// sites of several utilities and NIRS sensors reporting surrogate channels,
// each with its own Ed25519 key, publishing signed readings to NATS
// JetStream at a chosen rate, with scripted lead spikes.
//
// It is used by `tapproof simulate`, the demo and the load benchmark. It
// talks to tapproof only as a sensor would (NATS) and as an administrator
// would (the HTTP admin API, to enroll its devices).
package simulate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/signed"
)

// Firmware is the simulated firmware image; its SHA-256 is what devices
// report and what they are enrolled with.
var Firmware = sha256.Sum256([]byte("tapproof simulated sensor firmware 1.0"))

// NIRSModel is the calibration model version NIRS estimates carry.
const NIRSModel = "pls-snv-2026.1"

// FleetConfig sizes a fleet.
type FleetConfig struct {
	Utilities    int // default 2
	Sites        int // sites per utility; default 3
	LeadPerSite  int // lead sensors per site; default 1
	NIRSPerUtil  int // NIRS sensors per utility; default 1
	UtilityNames []string
}

func (c *FleetConfig) setDefaults() {
	if c.Utilities <= 0 {
		c.Utilities = 2
	}
	if c.Sites <= 0 {
		c.Sites = 3
	}
	if c.LeadPerSite <= 0 {
		c.LeadPerSite = 1
	}
	if c.NIRSPerUtil < 0 {
		c.NIRSPerUtil = 0
	} else if c.NIRSPerUtil == 0 {
		c.NIRSPerUtil = 1
	}
}

// Sensor is one simulated device.
type Sensor struct {
	Device tapproof.Device    `json:"device"`
	Key    ed25519.PrivateKey `json:"private_key"`
	seq    uint64
}

// Fleet is a set of simulated sensors.
type Fleet struct {
	Sensors []*Sensor `json:"sensors"`
}

// NewFleet creates a fleet with fresh keys.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	cfg.setDefaults()
	f := &Fleet{}
	add := func(id, utility, site string, kind tapproof.Method) error {
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		f.Sensors = append(f.Sensors, &Sensor{Key: key, Device: tapproof.Device{
			ID: id, Utility: utility, Site: site, Kind: kind, PublicKey: pub,
			Firmware: hex.EncodeToString(Firmware[:]), Status: tapproof.DeviceActive,
			EnrolledAt: time.Now().UTC().Truncate(time.Second),
		}})
		return nil
	}
	for u := range cfg.Utilities {
		utility := fmt.Sprintf("utility-%d", u+1)
		if u < len(cfg.UtilityNames) {
			utility = cfg.UtilityNames[u]
		}
		for s := range cfg.Sites {
			site := fmt.Sprintf("site-%d", s+1)
			for d := range cfg.LeadPerSite {
				if err := add(fmt.Sprintf("%s-%s-pb%d", utility, site, d+1), utility, site, tapproof.ASV); err != nil {
					return nil, err
				}
			}
		}
		for d := range cfg.NIRSPerUtil {
			if err := add(fmt.Sprintf("%s-nirs%d", utility, d+1), utility, "site-1", tapproof.NIRS); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// LoadOrCreate reads the fleet kept in path, or creates one with cfg and
// saves it there (mode 0600: it holds private keys).
func LoadOrCreate(path string, cfg FleetConfig) (*Fleet, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var f Fleet
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("fleet %s: %w", path, err)
		}
		return &f, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	f, err := NewFleet(cfg)
	if err != nil {
		return nil, err
	}
	if err := saveSecret(path, f); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return f, nil
}

// saveSecret writes v as JSON to path, readable by its owner only: it holds
// private keys.
func saveSecret(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// EnrollmentEnvelope returns the sensor's signed enrollment.
func (s *Sensor) EnrollmentEnvelope(ctx context.Context) ([]byte, error) {
	return signed.SignEnrollment(ctx, s.Key, s.Device.Enrollment())
}

// Enroll registers every sensor of the fleet with a running tapproof
// through its admin API. Devices already enrolled with the same key are
// accepted again without change.
func (f *Fleet) Enroll(ctx context.Context, server, token string) error {
	c := &httpapi.Client{BaseURL: server, Token: token}
	for _, s := range f.Sensors {
		env, err := s.EnrollmentEnvelope(ctx)
		if err != nil {
			return err
		}
		if err := c.Enroll(ctx, env); err != nil {
			return fmt.Errorf("enroll %s: %w", s.Device.ID, err)
		}
	}
	return nil
}

// Spike is a scripted lead event at one site.
type Spike struct {
	Utility, Site string
	After         time.Duration // from the simulation's start
	For           time.Duration
	PPB           float64
	Every         time.Duration // repeat period; zero for once
}

func (s Spike) active(since time.Duration) bool {
	if since < s.After {
		return false
	}
	d := since - s.After
	if s.Every > 0 {
		d %= s.Every
	}
	return d < s.For
}

// Config is a simulation run.
type Config struct {
	Rate     float64       // readings per second across the fleet; default 1 per sensor per 2 s
	Duration time.Duration // zero runs until ctx is done
	Spikes   []Spike
	// OnPublish, if set, is called after each reading is published.
	OnPublish func(r tapproof.Reading)
}

// DefaultSpikes puts a 24 ppb lead spike on the second site of the first
// utility 15 s after start, for 20 s, every 5 minutes.
func (f *Fleet) DefaultSpikes() []Spike {
	for _, s := range f.Sensors {
		if s.Device.Kind == tapproof.ASV && s.Device.Site != "site-1" {
			return []Spike{{Utility: s.Device.Utility, Site: s.Device.Site, After: 15 * time.Second, For: 20 * time.Second, PPB: 24, Every: 5 * time.Minute}}
		}
	}
	return nil
}

// Dialer connects to the broker as one sensor: each sensor has a
// connection of its own, authenticated with its key.
type Dialer func(s *Sensor) (*nats.Conn, error)

// Run publishes readings round-robin over the fleet at cfg.Rate until ctx is
// done or cfg.Duration passes, each sensor on its own connection from dial.
// Sequence numbers are the publish time in milliseconds (bumped if needed),
// so they keep increasing across restarts without the simulator keeping
// state.
func (f *Fleet) Run(ctx context.Context, dial Dialer, cfg Config) error {
	if len(f.Sensors) == 0 {
		return errors.New("simulate: empty fleet")
	}
	conns := make([]jetstream.JetStream, len(f.Sensors))
	for i, s := range f.Sensors {
		nc, err := dial(s)
		if err != nil {
			return err
		}
		defer nc.Close()
		if conns[i], err = jetstream.New(nc); err != nil {
			return err
		}
	}
	if cfg.Rate <= 0 {
		cfg.Rate = float64(len(f.Sensors)) / 2
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		s, js := f.Sensors[i%len(f.Sensors)], conns[i%len(f.Sensors)]
		for _, r := range s.next(time.Now(), time.Since(start), cfg.Spikes) {
			if _, err := s.Publish(ctx, js, r); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if cfg.OnPublish != nil {
				cfg.OnPublish(r)
			}
		}
	}
}

// Next returns the sensor's next readings at now: one for a lead sensor,
// one per surrogate channel for a NIRS sensor.
func (s *Sensor) next(now time.Time, since time.Duration, spikes []Spike) []tapproof.Reading {
	base := tapproof.Reading{
		Utility: s.Device.Utility, Site: s.Device.Site, Device: s.Device.ID,
		Method: s.Device.Kind, SampledAt: now.UTC().Truncate(time.Millisecond), Firmware: s.Device.Firmware,
	}
	seq := func() uint64 {
		s.seq = max(s.seq+1, uint64(now.UnixMilli()))
		return s.seq
	}
	if s.Device.Kind != tapproof.NIRS {
		r := base
		r.Seq, r.Analyte, r.Unit = seq(), tapproof.Lead, tapproof.MicrogramsPerLiter
		r.Value = round(1.5+mrand.ExpFloat64()*1.5, 2) // background: a few ppb
		r.DetectionLimit = 0.5
		for _, sp := range spikes {
			if sp.Utility == r.Utility && sp.Site == r.Site && sp.active(since) {
				r.Value = round(sp.PPB*(0.95+0.1*mrand.Float64()), 2)
			}
		}
		return []tapproof.Reading{r}
	}
	channels := []struct {
		a    tapproof.Analyte
		u    tapproof.Unit
		mean float64
	}{{tapproof.Turbidity, tapproof.NTU, 0.3}, {tapproof.TOC, tapproof.MilligramsPerLiter, 2.0}, {tapproof.Iron, tapproof.MilligramsPerLiter, 0.1}}
	out := make([]tapproof.Reading, 0, len(channels))
	for _, c := range channels {
		r := base
		r.Seq, r.Analyte, r.Unit, r.Model = seq(), c.a, c.u, NIRSModel
		r.Value = round(c.mean*(0.8+0.4*mrand.Float64()), 3)
		out = append(out, r)
	}
	return out
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Lead returns the sensor's next lead reading, of ppb, sampled at. Only a
// lead sensor (ASV or fluorescence) may report lead: ingest rejects a NIRS
// sensor's lead reading as not_permitted (tapproof.Method.Reports).
func (s *Sensor) Lead(ppb float64, at time.Time) tapproof.Reading {
	s.seq = max(s.seq+1, uint64(at.UnixMilli()))
	return tapproof.Reading{
		Utility: s.Device.Utility, Site: s.Device.Site, Device: s.Device.ID, Seq: s.seq,
		Analyte: tapproof.Lead, Value: ppb, Unit: tapproof.MicrogramsPerLiter, Method: s.Device.Kind,
		SampledAt: at.UTC().Truncate(time.Millisecond), Firmware: s.Device.Firmware, DetectionLimit: 0.5,
	}
}

// Publish signs r with the sensor's key and publishes it as the sensor
// would: on its subject, with its message id.
func (s *Sensor) Publish(ctx context.Context, js jetstream.JetStream, r tapproof.Reading) ([]byte, error) {
	raw, err := signed.SignReading(ctx, s.Key, r)
	if err != nil {
		return nil, err
	}
	if _, err := js.Publish(ctx, Subject(r), raw, jetstream.WithMsgID(r.Key())); err != nil {
		return nil, fmt.Errorf("publish %s: %w", r.Key(), err)
	}
	return raw, nil
}

// Subject is the NATS subject a sensor publishes r on.
func Subject(r tapproof.Reading) string {
	return fmt.Sprintf("tapproof.readings.%s.%s.%s", r.Utility, r.Site, r.Device)
}
