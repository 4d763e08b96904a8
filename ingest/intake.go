package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// Intake defaults.
const (
	// IntakePrefix is where, in tapproof's account, the devices' and labs'
	// messages arrive: their accounts import tapproof.intake.<x>.> as
	// tapproof.<x>.>. It must match the broker's configuration.
	IntakePrefix = "tapproof.intake"
	// DefaultPartyRate and DefaultPartyBurst bound how fast one device or
	// lab may publish: a sensor reports every few seconds at most, so the
	// limit is far above any honest rate and far below a flood.
	DefaultPartyRate  = 50.0
	DefaultPartyBurst = 500
	intakeQueue       = "tapproof-intake"
	maxIntakePending  = 16384
)

// IntakeConfig configures an Intake. Zero values take the defaults.
type IntakeConfig struct {
	// Rate (messages per second) and Burst bound one publisher: one
	// device, or one lab or reviewer.
	Rate  float64
	Burst int
	// Urgent, if set, says which readings, taken at their word, can raise
	// an alert: the intake copies them to the alert lane (RunLane) as well
	// as to the readings stream, so that their alerts do not wait behind
	// the bulk under overload.
	Urgent func(tapproof.Reading) bool
}

// Intake is the edge between the accounts of devices and labs and
// JetStream. Every message they publish arrives here, and Intake appends it
// to the readings stream under a message id it derives from the subject and
// the bytes: no publisher chooses a Nats-Msg-Id, so none can squat
// another's, and a retry of the same message is absorbed by JetStream's
// duplicate window. It then answers the publisher with JetStream's
// acknowledgement, so a device sees the same PubAck as if it had published
// to JetStream itself, and only once its message is stored.
//
// A publisher above its rate is refused with rate_limited: the answer says
// so, the refusal is counted, and its excess never reaches the journal.
type Intake struct {
	cfg     IntakeConfig
	js      jetstream.JetStream
	metrics *Metrics
	log     *slog.Logger

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // publisher subject -> its limit
	warned   map[string]time.Time     // publisher subject -> last warning
}

// NewIntake returns an Intake appending to js. m may be nil.
func NewIntake(cfg IntakeConfig, js jetstream.JetStream, m *Metrics, log *slog.Logger) *Intake {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultPartyRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultPartyBurst
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Intake{cfg: cfg, js: js, metrics: m, log: log, limiters: map[string]*rate.Limiter{}, warned: map[string]time.Time{}}
}

// Run takes messages from nc, a connection of tapproof's account, until ctx
// is done. Several replicas share the intake.
func (in *Intake) Run(ctx context.Context, nc *nats.Conn) error {
	// Two stages, so that nothing urgent waits behind JetStream: on
	// arrival, a message is rate-limited and, if urgent, copied to the
	// alert lane; then it queues for the stream, whose acknowledgements
	// slow down under overload.
	queue := make(chan intakeMsg, maxIntakePending)
	sub, err := nc.QueueSubscribe(IntakePrefix+".>", intakeQueue, func(m *nats.Msg) {
		if subject, ok := in.arrive(nc, m); ok {
			select {
			case queue <- intakeMsg{m, subject}:
			case <-ctx.Done():
			}
		}
	})
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	// Back-pressure comes from the bounded queue, not from the client
	// dropping messages as a slow consumer.
	if err := sub.SetPendingLimits(1<<18, 256<<20); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer sub.Unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-queue:
			in.store(ctx, m, &wg)
		}
	}
}

type intakeMsg struct {
	*nats.Msg
	subject string // as the publisher sent it
}

// arrive takes one message as it arrives: it refuses a publisher above its
// rate, and copies an urgent reading to the alert lane. ok is false if the
// message goes no further.
func (in *Intake) arrive(nc *nats.Conn, m *nats.Msg) (subject string, ok bool) {
	rest, ok := strings.CutPrefix(m.Subject, IntakePrefix+".")
	if !ok {
		return "", false
	}
	subject = "tapproof." + rest
	if !in.allow(subject) {
		in.metrics.rejected.WithLabelValues(string(tapproof.ReasonRateLimited)).Inc()
		in.respondError(m, 429, tapproof.Reject(tapproof.ReasonRateLimited, "more than %g messages/s on %s", in.cfg.Rate, subject))
		return "", false
	}
	if in.urgent(subject, m.Data) {
		// Fire and forget: the stream is what counts.
		_ = nc.Publish(LanePrefix+"."+subject, m.Data)
	}
	return subject, true
}

// store appends one message to the readings stream and answers it from a
// goroutine of its own once JetStream has.
func (in *Intake) store(ctx context.Context, m intakeMsg, wg *sync.WaitGroup) {
	sum := sha256.Sum256(append([]byte(m.subject+"\n"), m.Data...))
	// Headers are the publisher's and are dropped: Nats-Msg-Id and the
	// Nats-Expected-* headers are decided here, not by a device.
	out := &nats.Msg{Subject: m.subject, Data: m.Data}
	fut, err := in.js.PublishMsgAsync(out, jetstream.WithMsgID(hex.EncodeToString(sum[:16])), jetstream.WithExpectStream(journal.ReadingsStream))
	if err != nil {
		in.respondError(m.Msg, 503, err)
		return
	}
	wg.Go(func() {
		select {
		case ack := <-fut.Ok():
			b, _ := json.Marshal(ack)
			in.respond(m.Msg, b)
		case err := <-fut.Err():
			in.respondError(m.Msg, 503, err)
		case <-ctx.Done():
		}
	})
}

// urgent reports whether the message is a reading that, taken at its word,
// can raise an alert. Nothing is verified here; the lane verifies.
func (in *Intake) urgent(subject string, data []byte) bool {
	if in.cfg.Urgent == nil || !strings.HasPrefix(subject, journal.ReadingsSubject+".") {
		return false
	}
	env, err := signed.Parse(data, 0)
	if err != nil || env.PayloadType() != tapproof.ReadingPayloadType {
		return false
	}
	r, err := env.Reading()
	return err == nil && in.cfg.Urgent(r)
}

// allow reports whether the publisher of subject is within its rate.
func (in *Intake) allow(subject string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	l, ok := in.limiters[subject]
	if !ok {
		l = rate.NewLimiter(rate.Limit(in.cfg.Rate), in.cfg.Burst)
		in.limiters[subject] = l
	}
	if l.Allow() {
		return true
	}
	if time.Since(in.warned[subject]) > time.Minute {
		in.warned[subject] = time.Now()
		in.log.Warn("intake: publisher over its rate", slog.String("subject", subject), slog.Float64("rate", in.cfg.Rate))
	}
	return false
}

func (in *Intake) respond(m *nats.Msg, b []byte) {
	if m.Reply == "" {
		return
	}
	if err := m.Respond(b); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		in.log.Warn("intake: respond", slog.Any("error", err))
	}
}

// respondError answers in JetStream's error shape, so a publisher's
// JetStream client reports an API error with the reason.
func (in *Intake) respondError(m *nats.Msg, code int, err error) {
	var body struct {
		Error struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Description = code, err.Error()
	b, _ := json.Marshal(body)
	in.respond(m, b)
}
