package broker

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults.
const (
	// DefaultSessionTTL bounds how long one authorization lasts; the client
	// reconnects through the callout after it, which re-checks the key.
	DefaultSessionTTL = time.Hour
	// MaxPayload is the server's largest message. A device or lab may send
	// up to MaxPartyPayload; ingest rejects envelopes above its own limit
	// with a reason, so a slightly oversized reading is refused visibly
	// instead of by a disconnect.
	MaxPayload      = 1 << 20
	MaxPartyPayload = 64 << 10
	maxPartySubs    = 8
	queueGroup      = "tapproof-auth"
)

// PartyKind is the kind of an outside party.
type PartyKind string

// Party kinds.
const (
	Device   PartyKind = "device"
	Lab      PartyKind = "lab"
	Reviewer PartyKind = "reviewer"
)

// Party is the holder of a key the broker admits.
type Party struct {
	Kind PartyKind
	ID   string
	// Utility and Site are a device's enrollment; empty for labs and
	// reviewers.
	Utility, Site string
}

// Name is the party's user name on the broker, shown in the server's
// connection lists and used to find its connections: "device:sensor-1".
func (p Party) Name() string { return string(p.Kind) + ":" + p.ID }

// InboxPrefix is the only inbox the party may subscribe to; its client must
// use it (nats.CustomInboxPrefix) to receive acknowledgements.
func (p Party) InboxPrefix() string { return InboxPrefix(p.Kind, p.ID) }

// InboxPrefix is the reply inbox prefix of the party of kind and id.
func InboxPrefix(kind PartyKind, id string) string { return "_INBOX." + string(kind) + "." + id }

// account and publish are where the party lands and the one subject space
// it may publish on.
func (p Party) account() string {
	if p.Kind == Device {
		return DevicesAccount
	}
	return LabsAccount
}

func (p Party) publish() string {
	switch p.Kind {
	case Device:
		return "tapproof.readings." + p.Utility + "." + p.Site + "." + p.ID
	case Lab:
		return "tapproof.labsamples.*." + p.ID
	default:
		return "tapproof.invalidations.*." + p.ID
	}
}

// Refusal reasons, a bounded label on the authorization metric.
const (
	refusedMalformed    = "malformed"
	refusedNoKey        = "no_key"
	refusedBadSignature = "bad_signature"
	refusedUnknown      = "unknown_key"
	refusedRevoked      = "revoked"
	refusedBusy         = "busy"
)

// ErrRevoked is returned by a Directory for a key whose device was
// revoked; ErrUnknownKey for a key it does not know.
var (
	ErrRevoked    = errors.New("revoked")
	ErrUnknownKey = errors.New("not enrolled")
)

// Directory finds who holds an Ed25519 key: an active enrolled device, a
// certified lab or a state reviewer. It returns ErrRevoked or
// ErrUnknownKey otherwise.
type Directory interface {
	Party(pub ed25519.PublicKey) (Party, error)
}

// Defaults of the callout's pool.
const (
	// DefaultCalloutWorkers is how many authorization requests an
	// Authorizer decides at once.
	DefaultCalloutWorkers = 8
	// DefaultCalloutQueue is how many wait for a worker; beyond that they
	// are refused as busy.
	DefaultCalloutQueue = 256
)

// serverXKeyHeader carries, on an encrypted authorization request, the
// curve key of the server that sent it.
const serverXKeyHeader = "Nats-Server-Xkey"

// AuthorizerConfig configures an Authorizer.
type AuthorizerConfig struct {
	// Issuer is the account key named as the callout's issuer in the
	// configuration: it signs every answer and user JWT.
	Issuer nkeys.KeyPair
	// XKey is the curve key named as the callout's xkey: requests arrive
	// encrypted to it and answers leave encrypted with it, to the
	// requesting server's own curve key. Nil handles them in the clear,
	// for a server configured without one.
	XKey nkeys.KeyPair
	// Workers decide requests concurrently; default DefaultCalloutWorkers.
	Workers int
	// Queue bounds the requests waiting for a worker; one arriving when
	// it is full is refused as busy: left unopened and unanswered, so the
	// server refuses the connection at its authorization timeout (see
	// busy). Default DefaultCalloutQueue.
	Queue int
}

// Authorizer answers the broker's auth callout.
type Authorizer struct {
	cfg        AuthorizerConfig
	dir        Directory
	log        *slog.Logger
	now        func() time.Time
	sessionTTL time.Duration
	decisions  *prometheus.CounterVec
	queued     prometheus.Gauge
}

// NewAuthorizer returns an Authorizer that signs its answers with
// cfg.Issuer and finds parties in dir. reg may be nil.
func NewAuthorizer(cfg AuthorizerConfig, dir Directory, reg prometheus.Registerer, log *slog.Logger) *Authorizer {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultCalloutWorkers
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultCalloutQueue
	}
	a := &Authorizer{
		cfg: cfg, dir: dir, log: log, now: time.Now, sessionTTL: DefaultSessionTTL,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapproof_broker_connections_total",
			Help: "NATS connections the auth callout decided, by result (allowed or refused), party kind and reason of a refusal.",
		}, []string{"result", "kind", "reason"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tapproof_broker_callout_queued",
			Help: "Authorization requests waiting for one of the auth callout's workers.",
		}),
	}
	for _, k := range []PartyKind{Device, Lab, Reviewer} {
		a.decisions.WithLabelValues("allowed", string(k), "")
	}
	for _, r := range []string{refusedMalformed, refusedNoKey, refusedBadSignature, refusedUnknown, refusedRevoked, refusedBusy} {
		a.decisions.WithLabelValues("refused", "", r)
	}
	if reg != nil {
		reg.MustRegister(a.decisions, a.queued)
	}
	return a
}

// Run answers authorization requests on nc, a connection of the callout's
// user (Keys.Callout), until ctx is done. Several replicas share the
// requests. A fixed pool of workers decides them, concurrently; what does
// not fit in the bounded queue is refused as busy without being opened,
// so a request waits at most for the queue ahead of it, never for an
// unbounded backlog of strangers' requests.
func (a *Authorizer) Run(ctx context.Context, nc *nats.Conn) error {
	queue := make(chan *nats.Msg, a.cfg.Queue)
	sub, err := nc.QueueSubscribe(AuthSubject, queueGroup, func(m *nats.Msg) {
		select {
		case queue <- m:
			a.queued.Inc()
		default:
			a.busy(m)
		}
	})
	if err != nil {
		return fmt.Errorf("auth callout: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("auth callout: %w", err)
	}
	var wg sync.WaitGroup
	for range a.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m := <-queue:
					a.queued.Dec()
					a.handle(m)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	<-ctx.Done()
	err = sub.Unsubscribe()
	wg.Wait()
	return err
}

// request opens and decodes one authorization request, returning it with
// the curve key of the server that sent it (empty in the clear).
func (a *Authorizer) request(m *nats.Msg) (*jwt.AuthorizationRequestClaims, string, error) {
	data, serverKey := m.Data, ""
	if a.cfg.XKey != nil {
		serverKey = m.Header.Get(serverXKeyHeader)
		if serverKey == "" {
			return nil, "", errors.New("request not encrypted")
		}
		var err error
		if data, err = a.cfg.XKey.Open(m.Data, serverKey); err != nil {
			return nil, "", fmt.Errorf("decrypt request: %w", err)
		}
	}
	req, err := jwt.DecodeAuthorizationRequestClaims(string(data))
	if err != nil {
		return nil, "", err
	}
	if req.Server.XKey != serverKey {
		// The server signs the key it encrypts with into the request.
		return nil, "", errors.New("request's xkey differs from its header's")
	}
	return req, serverKey, nil
}

// respond sends the answer resp, encrypted to serverKey if the callout is.
func (a *Authorizer) respond(m *nats.Msg, resp, serverKey string) {
	out := []byte(resp)
	if a.cfg.XKey != nil {
		var err error
		if out, err = a.cfg.XKey.Seal(out, serverKey); err != nil {
			a.log.Warn("auth callout: encrypt answer", slog.Any("error", err))
			return
		}
	}
	if err := m.Respond(out); err != nil {
		a.log.Warn("auth callout: respond", slog.Any("error", err))
	}
}

func (a *Authorizer) handle(m *nats.Msg) {
	req, serverKey, err := a.request(m)
	if err != nil {
		a.decisions.WithLabelValues("refused", "", refusedMalformed).Inc()
		a.log.Warn("auth callout: undecodable request", slog.Any("error", err))
		return // the server times the connection out
	}
	resp, err := a.Decide(req)
	if err != nil {
		a.log.Warn("auth callout: answer", slog.Any("error", err))
		return
	}
	a.respond(m, resp, serverKey)
}

// busy refuses a request that found the queue full, as cheaply as can be:
// it is not even opened, and goes unanswered, so the server refuses the
// connection when its authorization timeout passes. An answer would cost
// a decryption, a signature and an encryption, and invite an immediate
// retry; silence holds a flooding client for the whole timeout.
func (a *Authorizer) busy(*nats.Msg) {
	a.decisions.WithLabelValues("refused", "", refusedBusy).Inc()
}

// Decide returns the signed answer to one authorization request: a user
// JWT for an admitted party, an error for anyone else.
func (a *Authorizer) Decide(req *jwt.AuthorizationRequestClaims) (string, error) {
	resp := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	resp.Audience = req.Server.ID
	p, reason, detail := a.admit(req)
	if reason != "" {
		a.decisions.WithLabelValues("refused", "", reason).Inc()
		// A refused enrolled key is news; strangers are counted, and logged
		// only at debug level, so that a flood of them cannot flood the log.
		level := slog.LevelDebug
		if reason == refusedRevoked || reason == refusedBadSignature && a.enrolled(req.ConnectOptions.Nkey) {
			level = slog.LevelInfo
		}
		a.log.Log(context.Background(), level, "broker: connection refused", slog.String("reason", reason), slog.String("detail", detail),
			slog.String("host", req.ClientInformation.Host))
		resp.Error = "tapproof: " + reason
		return resp.Encode(a.cfg.Issuer)
	}
	uc := jwt.NewUserClaims(req.UserNkey)
	uc.Audience = p.account()
	uc.Name = p.Name()
	uc.Expires = a.now().Add(a.sessionTTL).Unix()
	uc.Pub.Allow.Add(p.publish())
	uc.Sub.Allow.Add(p.InboxPrefix() + ".>")
	uc.Limits.Payload = MaxPartyPayload
	uc.Limits.Subs = maxPartySubs
	uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeStandard)
	ujwt, err := uc.Encode(a.cfg.Issuer)
	if err != nil {
		return "", fmt.Errorf("user jwt: %w", err)
	}
	resp.Jwt = ujwt
	a.decisions.WithLabelValues("allowed", string(p.Kind), "").Inc()
	a.log.Debug("broker: connection allowed", slog.String("party", p.Name()))
	return resp.Encode(a.cfg.Issuer)
}

// admit checks that the client proved possession of a key by signing the
// server's nonce, and that the key is a party's.
func (a *Authorizer) admit(req *jwt.AuthorizationRequestClaims) (Party, string, string) {
	co := req.ConnectOptions
	if co.Nkey == "" || co.SignedNonce == "" || req.ClientInformation.Nonce == "" {
		return Party{}, refusedNoKey, "no nkey: connect with the device's key"
	}
	pk, err := nkeys.FromPublicKey(co.Nkey)
	if err != nil || !nkeys.IsValidPublicUserKey(co.Nkey) {
		return Party{}, refusedNoKey, "not a user nkey"
	}
	sig, err := base64.RawURLEncoding.DecodeString(co.SignedNonce)
	if err != nil {
		if sig, err = base64.StdEncoding.DecodeString(co.SignedNonce); err != nil {
			return Party{}, refusedBadSignature, "nonce signature is not base64"
		}
	}
	if err := pk.Verify([]byte(req.ClientInformation.Nonce), sig); err != nil {
		return Party{}, refusedBadSignature, "nonce signature does not verify"
	}
	raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(co.Nkey))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return Party{}, refusedNoKey, "not an Ed25519 user nkey"
	}
	p, err := a.dir.Party(ed25519.PublicKey(raw))
	switch {
	case errors.Is(err, ErrRevoked):
		return Party{}, refusedRevoked, co.Nkey
	case err != nil:
		return Party{}, refusedUnknown, co.Nkey
	}
	return p, "", ""
}

// enrolled reports whether nkey is the key of a party, revoked or not: a
// bad signature with anybody else's key is a stranger's.
func (a *Authorizer) enrolled(nkey string) bool {
	raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(nkey))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return false
	}
	_, err = a.dir.Party(ed25519.PublicKey(raw))
	return err == nil || errors.Is(err, ErrRevoked)
}

// UserKey is the NATS user nkey (public, "U…") of an Ed25519 public key.
func UserKey(pub ed25519.PublicKey) (string, error) {
	b, err := nkeys.Encode(nkeys.PrefixByteUser, pub)
	return string(b), err
}

// PartyOptions are the connect options of the party holding key: its
// nkey, signing the server's nonce with key, and its own reply inbox.
func PartyOptions(kind PartyKind, id string, key ed25519.PrivateKey) ([]nats.Option, error) {
	pub, err := UserKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return []nats.Option{
		nats.Nkey(pub, func(nonce []byte) ([]byte, error) { return ed25519.Sign(key, nonce), nil }),
		nats.CustomInboxPrefix(InboxPrefix(kind, id)),
	}, nil
}

// DialParty connects to the broker at url as the party holding key, over
// TLS verified with caFile (the system roots if empty). Devices, labs and
// reviewers connect this way; so does a client written in another
// language, with the same three settings: the nkey, the CA, and the inbox
// prefix.
func DialParty(url, caFile string, kind PartyKind, id string, key ed25519.PrivateKey, opts ...nats.Option) (*nats.Conn, error) {
	po, err := PartyOptions(kind, id, key)
	if err != nil {
		return nil, err
	}
	po = append(po, nats.Name(string(kind)+":"+id))
	if caFile != "" {
		po = append(po, nats.RootCAs(caFile))
	}
	nc, err := nats.Connect(url, append(po, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("broker: connect as %s %s: %w", kind, id, err)
	}
	return nc, nil
}
