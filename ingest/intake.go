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

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/journal"
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

	limits *limiter

	mu     sync.Mutex
	warned map[string]time.Time // publisher subject -> last warning
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
	return &Intake{cfg: cfg, js: js, metrics: m, log: log, limits: newLimiter(cfg.Rate, cfg.Burst), warned: map[string]time.Time{}}
}

// Run takes messages from nc, a connection of tapproof's account, until ctx
// is done. Several replicas share the intake.
func (in *Intake) Run(ctx context.Context, nc *nats.Conn) error {
	// Two stages: on arrival, a message is rate-limited; then it queues
	// for the stream, whose acknowledgements slow down under overload.
	// Urgent readings do not wait for either: the alert lane (RunLane)
	// takes them from the broker itself.
	queue := make(chan intakeMsg, maxIntakePending)
	sub, err := nc.QueueSubscribe(IntakePrefix+".>", intakeQueue, func(m *nats.Msg) {
		if subject, ok := in.arrive(m); ok {
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

// arrive takes one message as it arrives and refuses a publisher above its
// rate. ok is false if the message goes no further.
func (in *Intake) arrive(m *nats.Msg) (subject string, ok bool) {
	rest, ok := strings.CutPrefix(m.Subject, IntakePrefix+".")
	if !ok {
		return "", false
	}
	subject = "tapproof." + rest
	// The utility is the subject's second token after the prefix: each
	// utility's messages are ingested by a consumer of its own, named
	// after it, so it must be a valid id to be ingested at all.
	if _, after, _ := strings.Cut(rest, "."); !tapproof.ValidID(strings.SplitN(after, ".", 2)[0]) {
		in.metrics.rejected.WithLabelValues(string(tapproof.ReasonInvalid)).Inc()
		in.respondError(m, 400, tapproof.Reject(tapproof.ReasonInvalid, "subject %q names no valid utility", subject))
		return "", false
	}
	if !in.allow(subject) {
		in.metrics.rejected.WithLabelValues(string(tapproof.ReasonRateLimited)).Inc()
		in.respondError(m, 429, tapproof.Reject(tapproof.ReasonRateLimited, "more than %g messages/s on %s", in.cfg.Rate, subject))
		return "", false
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

// allow reports whether the publisher of subject is within its rate, and
// warns, at most once a minute per publisher, when it is not.
func (in *Intake) allow(subject string) bool {
	if in.limits.allow(subject) {
		return true
	}
	in.mu.Lock()
	defer in.mu.Unlock()
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
