// Package loadgen drives tapproof the way a fleet of sensors would, and
// checks afterwards that nothing was lost or duplicated. The load benchmark
// (bench/) and the fault tests use it. It is never imported by production
// code.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
	"github.com/tapproof/tapproof/simulate"
)

// Msg is one pre-signed reading.
type Msg struct {
	Subject string
	ID      string // Nats-Msg-Id
	Data    []byte
	Utility string
	Device  string
	Seq     uint64
	High    bool // above the lead action level
}

// Key is the reading's device and sequence number.
func (m Msg) Key() string { return tapproof.ReadingKey(m.Device, m.Seq) }

// Presign signs n lead readings round-robin over the fleet's lead sensors,
// using every core. Sensors listed in alerting alternate between 20 ppb and
// 2 ppb, so that each of their high readings is decided on the alert path:
// the first three open an alert, and then, the sensor flapping (see
// alerts.ScreenerConfig.FlapCount), each is recorded as a suppression of
// the alert it keeps open. The others read a few ppb.
func Presign(ctx context.Context, fleet *simulate.Fleet, n int, alerting map[string]bool) ([]Msg, error) {
	var sensors []*simulate.Sensor
	for _, s := range fleet.Sensors {
		if s.Device.Kind != tapproof.NIRS {
			sensors = append(sensors, s)
		}
	}
	if len(sensors) == 0 {
		return nil, fmt.Errorf("presign: no lead sensors")
	}
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	seqBase := uint64(time.Now().UnixMilli()) * 1000 // above anything the simulator used
	msgs := make([]Msg, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				s := sensors[i%len(sensors)]
				round := uint64(i / len(sensors))
				r := tapproof.Reading{
					Utility: s.Device.Utility, Site: s.Device.Site, Device: s.Device.ID, Seq: seqBase + round,
					Analyte: tapproof.Lead, Value: 1 + float64(i%5), Unit: tapproof.MicrogramsPerLiter, Method: s.Device.Kind,
					SampledAt: base.Add(time.Duration(round) * time.Millisecond), Firmware: s.Device.Firmware,
				}
				high := alerting[s.Device.ID] && round%2 == 0
				if alerting[s.Device.ID] {
					r.Value = 2
					if high {
						r.Value = 20
					}
				}
				raw, err := signed.SignReading(ctx, s.Key, r)
				if err != nil {
					errs <- err
					return
				}
				msgs[i] = Msg{Subject: simulate.Subject(r), ID: r.Key(), Data: raw, Utility: r.Utility, Device: r.Device, Seq: r.Seq, High: high}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return msgs, nil
}

// Publisher publishes pre-signed readings at a steady rate, like sensors:
// each sensor on its own connection, authenticated with its own key; each
// reading is retried, with the same message id, until it is acknowledged,
// so a reading is never given up while tapproof or its NATS server
// restarts. A device's readings always go out in order.
type Publisher struct {
	Broker Broker
	Rate   float64 // readings per second across the fleet

	// sent[i] is when msgs[i] was first attempted, in Unix nanoseconds; it
	// is read (SentAt) while Run writes it.
	sent []atomic.Int64
	// Retries counts publish attempts that failed and were repeated.
	retries atomic.Int64
}

// Retries returns how many publish attempts failed and were repeated.
func (p *Publisher) Retries() int64 { return p.retries.Load() }

// SentAt returns when msgs[i] was first published, or the zero time if it
// has not been yet. It may be called while Run runs.
func (p *Publisher) SentAt(i int) time.Time {
	if i >= len(p.sent) {
		return time.Time{}
	}
	ns := p.sent[i].Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Run publishes msgs and returns once all are acknowledged or ctx is done.
func (p *Publisher) Run(ctx context.Context, msgs []Msg) error {
	p.sent = make([]atomic.Int64, len(msgs))
	byDevice := map[string][]int{}
	for i, m := range msgs {
		byDevice[m.Device] = append(byDevice[m.Device], i)
	}
	start := time.Now()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
	)
	for device, idx := range byDevice {
		wg.Go(func() {
			nc, err := p.Broker.Device(device, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
			if err != nil {
				mu.Lock()
				firstEr = err
				mu.Unlock()
				return
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			for _, i := range idx {
				due := start.Add(time.Duration(float64(i) / p.Rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				m := msgs[i]
				p.sent[i].Store(time.Now().UnixNano())
				for {
					pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := js.PublishMsg(pctx, &nats.Msg{Subject: m.Subject, Data: m.Data}, jetstream.WithMsgID(m.ID))
					cancel()
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						return
					}
					p.retries.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if firstEr != nil {
		return firstEr
	}
	return ctx.Err()
}

// Observer records when checkpoints and alerts appear, as a regulator's
// monitor and a resident's subscriber would see them.
type Observer struct {
	mu          sync.Mutex
	checkpoints map[string][]Seen    // utility -> sizes in arrival order
	witnessed   map[string][]Seen    // utility -> sizes of witnessed checkpoints
	alerts      map[string]time.Time // reading key -> its alert message
	suppressed  map[string]time.Time // reading key -> its suppression record
	subs        []*nats.Subscription
	nc          *nats.Conn
}

// Seen is a checkpoint size and when it was seen.
type Seen struct {
	Size uint64
	At   time.Time
}

// Observe subscribes to tapproof's checkpoints and alerts as b's operator.
func Observe(b Broker) (*Observer, error) {
	nc, err := b.Operator(nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, err
	}
	o := &Observer{nc: nc, checkpoints: map[string][]Seen{}, witnessed: map[string][]Seen{}, alerts: map[string]time.Time{}, suppressed: map[string]time.Time{}}
	s1, err := nc.Subscribe(journal.CheckpointsSubject+".>", func(m *nats.Msg) {
		// tapproof.checkpoints.<utility>[.witnessed]
		tok := strings.Split(m.Subject, ".")
		seen := o.checkpoints
		switch {
		case len(tok) == 4 && tok[3] == "witnessed":
			seen = o.witnessed
		case len(tok) != 3:
			return
		}
		size, err := strconv.ParseUint(m.Header.Get(journal.HeaderSize), 10, 64)
		if err != nil {
			return
		}
		o.mu.Lock()
		seen[tok[2]] = append(seen[tok[2]], Seen{Size: size, At: time.Now()})
		o.mu.Unlock()
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	o.subs = []*nats.Subscription{s1}
	for subject, seen := range map[string]map[string]time.Time{alertsSubject: o.alerts, suppressedSubject: o.suppressed} {
		s, err := nc.Subscribe(subject, func(m *nats.Msg) {
			var a tapproof.Alert
			if json.Unmarshal(m.Data, &a) != nil {
				return
			}
			o.mu.Lock()
			if _, ok := seen[tapproof.ReadingKey(a.Device, a.Seq)]; !ok {
				seen[tapproof.ReadingKey(a.Device, a.Seq)] = time.Now()
			}
			o.mu.Unlock()
		})
		if err != nil {
			nc.Close()
			return nil, err
		}
		o.subs = append(o.subs, s)
	}
	return o, nil
}

// The subjects of tapproof's alert messages and of the readings it recorded
// as suppressed under an alert already open (alerts.SubjectPrefix and
// alerts.SuppressionPrefix).
const (
	alertsSubject     = "tapproof.alerts.>"
	suppressedSubject = "tapproof.suppressed.>"
)

// Close unsubscribes.
func (o *Observer) Close() { o.nc.Close() }

// Covered returns when a checkpoint of utility's log first covered index,
// and whether one has.
func (o *Observer) Covered(utility string, index uint64) (time.Time, bool) {
	return o.covered(o.checkpoints, utility, index)
}

// WitnessedCovered returns when a witnessed checkpoint of utility's log
// first covered index, and whether one has.
func (o *Observer) WitnessedCovered(utility string, index uint64) (time.Time, bool) {
	return o.covered(o.witnessed, utility, index)
}

func (o *Observer) covered(seen map[string][]Seen, utility string, index uint64) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range seen[utility] {
		if s.Size > index {
			return s.At, true
		}
	}
	return time.Time{}, false
}

// Size returns the largest checkpoint size seen for utility.
func (o *Observer) Size(utility string) uint64 { return o.size(o.checkpoints, utility) }

// WitnessedSize returns the largest witnessed checkpoint size seen for
// utility.
func (o *Observer) WitnessedSize(utility string) uint64 { return o.size(o.witnessed, utility) }

func (o *Observer) size(seen map[string][]Seen, utility string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n uint64
	for _, s := range seen[utility] {
		n = max(n, s.Size)
	}
	return n
}

// SizeAt returns the largest checkpoint size of utility seen by t.
func (o *Observer) SizeAt(utility string, t time.Time) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n uint64
	for _, s := range o.checkpoints[utility] {
		if !s.At.After(t) {
			n = max(n, s.Size)
		}
	}
	return n
}

// Alert returns when the alert raised by reading key arrived.
func (o *Observer) Alert(key string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.alerts[key]
	return t, ok
}

// Decided returns when tapproof first published what the reading with key
// caused, an alert message or a suppression record, and whether it has.
func (o *Observer) Decided(key string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.alerts[key]
	if s, sok := o.suppressed[key]; sok && (!ok || s.Before(t)) {
		t, ok = s, true
	}
	return t, ok
}
