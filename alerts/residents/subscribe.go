package residents

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
)

// SubscriptionBucket is the JetStream key-value bucket that keeps resident
// subscriptions. Its keys: sub.<id> (the subscription), tok.<sha256 of a
// confirmation token> (its subscription id), unsub.<sha256 of an
// unsubscribe token> (its subscription id), addr.<sha256 of channel,
// address and target> (the subscription of that address to that target),
// and the confirmation requests outstanding, which the pending limits
// count: pa.<sha256 of channel and address> and pd.<sha256 of channel and
// email domain or webhook host>, each a list of (time, subscription id).
// No key or list holds an address in clear.
const SubscriptionBucket = "tapproof_subscriptions"

// Subscription limits, and the defaults of SubscriptionsConfig.
const (
	// MaxAddress is the longest accepted email address or webhook URL.
	MaxAddress = 2048
	// DefaultPendingTTL is how long a subscription waits for its
	// confirmation: after it the confirmation link no longer works, the
	// request stops counting against the pending limits, and
	// PurgeExpired deletes the subscription.
	DefaultPendingTTL = 48 * time.Hour
	// DefaultMaxPendingPerAddress is how many confirmation requests one
	// email address or webhook URL may have outstanding (sent within
	// PendingTTL and not confirmed), whatever their targets. Asking again
	// for a pending subscription sends a new request and counts again.
	DefaultMaxPendingPerAddress = 3
	// DefaultMaxPendingPerDomain is how many confirmation requests one
	// webhook host may have outstanding. Email domains are not bounded:
	// made-up addresses at a mail provider would lock its residents out.
	DefaultMaxPendingPerDomain = 200
)

// Errors of Subscriptions. ErrInvalidSubscription is wrapped by a
// *Refusal, the reason fit to show the resident.
var (
	ErrInvalidSubscription = errors.New("invalid subscription")
	ErrUnknownToken        = errors.New("unknown or expired token")
)

// A Refusal is why a subscription request was refused: Code names the
// reason, stable, for a page to say it in the resident's language; Reason
// says it in English. It never contains the address, and it wraps
// ErrInvalidSubscription.
type Refusal struct {
	Code   RefusalCode
	Reason string
}

// RefusalCode names the reason of a Refusal.
type RefusalCode string

// Refusal codes.
const (
	RefuseUtility        RefusalCode = "unknown_utility"
	RefuseSiteAndArea    RefusalCode = "site_and_area"
	RefuseSite           RefusalCode = "unknown_site"
	RefuseArea           RefusalCode = "unknown_area"
	RefuseNoTarget       RefusalCode = "no_target"
	RefuseTarget         RefusalCode = "unknown_target"
	RefuseLanguage       RefusalCode = "language"
	RefuseAddressLength  RefusalCode = "address_length"
	RefuseEmail          RefusalCode = "invalid_email"
	RefuseWebhook        RefusalCode = "invalid_webhook"
	RefusePrivateWebhook RefusalCode = "private_webhook"
	RefuseChannel        RefusalCode = "channel"
	RefuseNoEmail        RefusalCode = "email_unavailable"
	// RefusePendingAddress: the address has DefaultMaxPendingPerAddress
	// (SubscriptionsConfig.MaxPendingPerAddress) confirmation requests
	// outstanding.
	RefusePendingAddress RefusalCode = "pending_address"
	// RefusePendingDomain: the webhook's host has
	// SubscriptionsConfig.MaxPendingPerDomain confirmation requests
	// outstanding.
	RefusePendingDomain RefusalCode = "pending_domain"
	// RefuseSample: a sample target that does not name a lab and its
	// sample id.
	RefuseSample RefusalCode = "invalid_sample"
	// RefuseHouseholdCode: the household code is not the sample's, or
	// none was given (HouseholdCodes).
	RefuseHouseholdCode RefusalCode = "household_code"
)

// RefusalCodes lists every RefusalCode, for pages to check they can say
// each.
var RefusalCodes = []RefusalCode{RefuseUtility, RefuseSiteAndArea, RefuseSite, RefuseArea, RefuseNoTarget, RefuseTarget, RefuseLanguage,
	RefuseAddressLength, RefuseEmail, RefuseWebhook, RefusePrivateWebhook, RefuseChannel, RefuseNoEmail,
	RefusePendingAddress, RefusePendingDomain, RefuseSample, RefuseHouseholdCode}

func refuse(code RefusalCode, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Reason: fmt.Sprintf(format, args...)}
}

func (r *Refusal) Error() string { return ErrInvalidSubscription.Error() + ": " + r.Reason }

// Unwrap returns ErrInvalidSubscription.
func (r *Refusal) Unwrap() error { return ErrInvalidSubscription }

// Channel is how a resident receives notices.
type Channel string

// Channels.
const (
	ChannelEmail   Channel = "email"
	ChannelWebhook Channel = "webhook"
)

// Target is what a resident subscribes to: one site of a utility, one
// service area of it (every site in the area), or one compliance sample
// taken at the household's tap, "<lab>/<sample id>" (a subscription that
// needs the sample's household code).
type Target struct {
	Utility string `json:"utility"`
	Site    string `json:"site,omitempty"`
	Area    string `json:"area,omitempty"`
	Sample  string `json:"sample,omitempty"`
}

// String is "utility/site", "utility/area:<area>" or
// "utility/sample:<lab>/<sample id>".
func (t Target) String() string {
	switch {
	case t.Site != "":
		return t.Utility + "/" + t.Site
	case t.Sample != "":
		return t.Utility + "/sample:" + t.Sample
	}
	return t.Utility + "/area:" + t.Area
}

// Validate checks that t names a utility and exactly one of a site, an
// area or a sample.
func (t Target) Validate() error {
	if !tapproof.ValidID(t.Utility) {
		return refuse(RefuseUtility, "unknown utility")
	}
	switch {
	case t.Site != "" && t.Area != "" || t.Sample != "" && (t.Site != "" || t.Area != ""):
		return refuse(RefuseSiteAndArea, "choose a site or a service area, not both")
	case t.Site != "" && !tapproof.ValidID(t.Site):
		return refuse(RefuseSite, "unknown site")
	case t.Area != "" && !tapproof.ValidID(t.Area):
		return refuse(RefuseArea, "unknown service area")
	case t.Sample != "" && !tapproof.ValidSampleKey(t.Sample):
		return refuse(RefuseSample, "a lab sample is named <lab>/<sample id>, as on the sample's form")
	case t.Site == "" && t.Area == "" && t.Sample == "":
		return refuse(RefuseNoTarget, "choose a site or a service area")
	}
	return nil
}

// Matches reports whether a public alert about site (in service area area)
// of utility concerns t. An alert about the whole system (site "")
// concerns every site and area target of its utility. A sample target is
// concerned by its own sample's alert only (Concerns).
func (t Target) Matches(utility, site, area string) bool {
	if t.Utility != utility || t.Sample != "" {
		return false
	}
	if site == "" {
		return true
	}
	return (t.Site != "" && t.Site == site) || (t.Area != "" && t.Area == area)
}

// Concerns reports whether alert a, about a site in service area area,
// concerns t: a private alert (an individual compliance result,
// tapproof.AlertClass.Private) only the target of its own sample, any
// other alert the site and area targets it Matches.
func (t Target) Concerns(a tapproof.Alert, area string) bool {
	if a.Class.Private() {
		return t.Sample != "" && t.Utility == a.Utility && t.Sample == a.Sample
	}
	return t.Matches(a.Utility, a.Site, area)
}

// Subscription is one resident's subscription. Address, Secret and
// UnsubscribeToken are private: a Subscription formats and logs as its ID,
// channel and target only, and as AddressHash.
type Subscription struct {
	ID string `json:"id"`
	Target
	Channel Channel `json:"channel"`
	// Address is the email address or webhook URL.
	Address string `json:"address"`
	// Secret keys the HMAC signature of webhook deliveries (alerts.Sign).
	Secret string `json:"secret,omitempty"`
	// UnsubscribeToken ends the subscription; every notice links to it.
	UnsubscribeToken string    `json:"unsubscribe_token"`
	Confirmed        bool      `json:"confirmed"`
	CreatedAt        time.Time `json:"created_at"`
	ConfirmedAt      time.Time `json:"confirmed_at,omitzero"`
	// ConfirmHash is the SHA-256 of the pending confirmation token.
	ConfirmHash string `json:"confirm_hash,omitempty"`
	// Language is the language notices are sent in, one of
	// notice.Languages; empty (subscriptions made before languages) is
	// notice.DefaultLanguage.
	Language string `json:"language,omitempty"`
}

// Lang is the language s's notices are sent in.
func (s Subscription) Lang() string {
	if s.Language == "" || !notice.HasLanguage(s.Language) {
		return notice.DefaultLanguage
	}
	return s.Language
}

// AddressHash is 16 hex digits of the SHA-256 of the address, what logs
// show instead of it.
func (s Subscription) AddressHash() string { return hashHex(string(s.Channel) + ":" + s.Address)[:16] }

// String describes s without its address.
func (s Subscription) String() string {
	return fmt.Sprintf("subscription %s (%s to %s)", s.ID, s.Channel, s.Target)
}

// GoString is String.
func (s Subscription) GoString() string { return s.String() }

// LogValue logs s without its address or secrets.
func (s Subscription) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.ID), slog.String("channel", string(s.Channel)),
		slog.String("target", s.Target.String()), slog.String("address_sha256", s.AddressHash()))
}

// SubscribeRequest is what a resident submits.
type SubscribeRequest struct {
	Target
	Channel Channel
	Address string
	// Language of the notices, one of notice.Languages; empty is
	// notice.DefaultLanguage.
	Language string
	// Code is the household code of a sample target (HouseholdCodes);
	// ignored for other targets. It is never stored or logged.
	Code string
}

// Subscriptions keeps subscriptions in a JetStream key-value bucket. It is
// safe for concurrent use.
type Subscriptions struct {
	kv  jetstream.KeyValue
	cfg SubscriptionsConfig
	// allowPrivate lets webhook URLs name loopback and private hosts.
	allowPrivate bool
	// mu makes counting the pending requests and adding one a single
	// step for this process.
	mu sync.Mutex
}

// SubscriptionsConfig configures Subscriptions. Zero values take the
// defaults.
type SubscriptionsConfig struct {
	// Now is the clock that stamps subscriptions and expires confirmation
	// tokens; time.Now if nil.
	Now func() time.Time
	// AllowPrivateWebhooks accepts webhook URLs whose host is a loopback,
	// private or link-local address. Without it they are refused, so that a
	// resident cannot make tapproof post into the network it runs in. For
	// tests and closed deployments.
	AllowPrivateWebhooks bool
	// PendingTTL is how long a pending subscription waits for its
	// confirmation; DefaultPendingTTL if zero.
	PendingTTL time.Duration
	// MaxPendingPerAddress and MaxPendingPerDomain bound the confirmation
	// requests outstanding per address (an email address's inbox: case
	// and "+tag" folded) and per webhook host; DefaultMaxPendingPerAddress
	// and DefaultMaxPendingPerDomain if zero.
	MaxPendingPerAddress int
	MaxPendingPerDomain  int
	// Households checks the household code of a subscription to one
	// sample; without it such subscriptions are refused.
	Households *HouseholdCodes
}

// Validate checks c.
func (c SubscriptionsConfig) Validate() error {
	if c.PendingTTL < 0 || c.MaxPendingPerAddress < 0 || c.MaxPendingPerDomain < 0 {
		return errors.New("subscriptions: pending TTL and limits must not be negative")
	}
	return nil
}

// NewSubscriptions creates or opens the SubscriptionBucket and returns
// Subscriptions on it.
func NewSubscriptions(ctx context.Context, js jetstream.JetStream, cfg SubscriptionsConfig) (*Subscriptions, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SubscriptionBucket,
		Description: "tapproof resident subscriptions (private: holds addresses)",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("subscription bucket: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PendingTTL == 0 {
		cfg.PendingTTL = DefaultPendingTTL
	}
	if cfg.MaxPendingPerAddress == 0 {
		cfg.MaxPendingPerAddress = DefaultMaxPendingPerAddress
	}
	if cfg.MaxPendingPerDomain == 0 {
		cfg.MaxPendingPerDomain = DefaultMaxPendingPerDomain
	}
	return &Subscriptions{kv: kv, cfg: cfg, allowPrivate: cfg.AllowPrivateWebhooks}, nil
}

// Normalize validates req and returns it with its address in canonical
// form. Its errors are *Refusal.
func (s *Subscriptions) Normalize(req SubscribeRequest) (SubscribeRequest, error) {
	if err := req.Target.Validate(); err != nil {
		return req, err
	}
	if req.Sample != "" {
		lab, id, _ := strings.Cut(req.Sample, "/")
		if s.cfg.Households == nil || !s.cfg.Households.Check(req.Utility, lab, id, req.Code) {
			return req, refuse(RefuseHouseholdCode, "that is not the code of this lab sample")
		}
	}
	req.Code = ""
	if req.Language == "" {
		req.Language = notice.DefaultLanguage
	}
	if !notice.HasLanguage(req.Language) {
		return req, refuse(RefuseLanguage, "notices are not written in %q", req.Language)
	}
	addr := strings.TrimSpace(req.Address)
	if addr == "" || len(addr) > MaxAddress {
		return req, refuse(RefuseAddressLength, "an address of at most %d characters is required", MaxAddress)
	}
	switch req.Channel {
	case ChannelEmail:
		a, err := mail.ParseAddress(addr)
		if err != nil || a.Name != "" || a.Address != addr || len(addr) > 254 || strings.ContainsAny(addr, "\r\n") {
			return req, refuse(RefuseEmail, "not a valid email address")
		}
		local, domain, _ := strings.Cut(a.Address, "@")
		if local == "" || !strings.Contains(domain, ".") && domain != "localhost" {
			return req, refuse(RefuseEmail, "not a valid email address")
		}
		req.Address = local + "@" + strings.ToLower(domain)
	case ChannelWebhook:
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return req, refuse(RefuseWebhook, "a webhook must be an absolute http or https URL without credentials")
		}
		if !s.allowPrivate && privateHost(u.Hostname()) {
			return req, refuse(RefusePrivateWebhook, "a webhook must not point into a private network")
		}
		req.Address = u.String()
	default:
		return req, refuse(RefuseChannel, "channel must be email or webhook")
	}
	return req, nil
}

// Subscribe stores a pending subscription for req and returns it with a
// new confirmation token to send to its address. If the address is already
// subscribed to the target and confirmed, it returns that subscription and
// an empty token: nothing needs sending. A request that would exceed a
// pending limit is refused (RefusePendingAddress, RefusePendingDomain);
// one that fails after it was counted stays counted until it expires.
func (s *Subscriptions) Subscribe(ctx context.Context, req SubscribeRequest) (Subscription, string, error) {
	req, err := s.Normalize(req)
	if err != nil {
		return Subscription{}, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	addrKey := "addr." + hashHex(string(req.Channel)+"\x00"+req.Address+"\x00"+req.Target.String())
	token := randomToken()
	now := s.cfg.Now().UTC()
	var sub Subscription
	if e, err := s.kv.Get(ctx, addrKey); err == nil {
		if sub, err = s.get(ctx, string(e.Value())); err == nil && sub.Confirmed {
			return sub, "", nil
		}
		if err != nil {
			sub = Subscription{}
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return Subscription{}, "", fmt.Errorf("subscribe: %w", err)
	}
	id := sub.ID
	if id == "" {
		id = randomToken()[:20]
	}
	if err := s.reservePending(ctx, req.Channel, req.Address, id, now); err != nil {
		return Subscription{}, "", err
	}
	if sub.ID != "" {
		// Pending: replace its token (the old one stops working); the
		// old request still counts against the limits until it expires.
		_ = s.kv.Delete(ctx, "tok."+sub.ConfirmHash)
		sub.ConfirmHash, sub.CreatedAt, sub.Language = hashHex(token), now, req.Language
		if err := s.put(ctx, sub); err != nil {
			return Subscription{}, "", err
		}
		if err := s.putAll(ctx, map[string]string{"tok." + sub.ConfirmHash: sub.ID}); err != nil {
			return Subscription{}, "", err
		}
		return sub, token, nil
	}
	sub = Subscription{
		ID: id, Target: req.Target, Channel: req.Channel, Address: req.Address,
		UnsubscribeToken: randomToken(), CreatedAt: now, ConfirmHash: hashHex(token), Language: req.Language,
	}
	if req.Channel == ChannelWebhook {
		sub.Secret = randomToken()
	}
	if err := s.put(ctx, sub); err != nil {
		return Subscription{}, "", err
	}
	if err := s.putAll(ctx, map[string]string{"tok." + sub.ConfirmHash: sub.ID, addrKey: sub.ID, "unsub." + hashHex(sub.UnsubscribeToken): sub.ID}); err != nil {
		return Subscription{}, "", err
	}
	return sub, token, nil
}

func (s *Subscriptions) putAll(ctx context.Context, kvs map[string]string) error {
	for k, v := range kvs {
		if _, err := s.kv.Put(ctx, k, []byte(v)); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	return nil
}

// expired reports whether a request made at is past the pending TTL.
func (s *Subscriptions) expired(at, now time.Time) bool {
	return now.Sub(at) >= s.cfg.PendingTTL
}

// Expired reports whether sub is pending and its confirmation can no
// longer be used.
func (s *Subscriptions) Expired(sub Subscription) bool {
	return !sub.Confirmed && s.expired(sub.CreatedAt, s.cfg.Now())
}

// PurgeExpired deletes every pending subscription whose confirmation
// expired, with its tokens, and every expired confirmation request, and
// returns how many subscriptions it deleted.
func (s *Subscriptions) PurgeExpired(ctx context.Context) (int, error) {
	all, err := s.All(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sub := range all {
		if !s.Expired(sub) {
			continue
		}
		if err := s.remove(ctx, sub); err != nil {
			return n, err
		}
		n++
	}
	return n, s.purgePending(ctx)
}

// remove deletes sub and every key naming it, the subscription first:
// once it is gone nothing more is sent.
func (s *Subscriptions) remove(ctx context.Context, sub Subscription) error {
	keys := []string{"sub." + sub.ID, "tok." + sub.ConfirmHash, "unsub." + hashHex(sub.UnsubscribeToken),
		"addr." + hashHex(string(sub.Channel)+"\x00"+sub.Address+"\x00"+sub.Target.String())}
	for _, k := range keys {
		if err := s.kv.Delete(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete %s: %w", sub, err)
		}
	}
	return s.releasePending(ctx, sub)
}

// Confirm confirms the subscription whose confirmation token is token.
// Confirming twice is not an error.
func (s *Subscriptions) Confirm(ctx context.Context, token string) (Subscription, error) {
	if !validToken(token) {
		return Subscription{}, ErrUnknownToken
	}
	e, err := s.kv.Get(ctx, "tok."+hashHex(token))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Subscription{}, ErrUnknownToken
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("confirm: %w", err)
	}
	sub, err := s.get(ctx, string(e.Value()))
	if err != nil {
		return Subscription{}, err
	}
	if sub.Confirmed {
		return sub, nil
	}
	if s.Expired(sub) {
		return Subscription{}, ErrUnknownToken
	}
	sub.Confirmed, sub.ConfirmedAt = true, s.cfg.Now().UTC()
	if err := s.put(ctx, sub); err != nil {
		return Subscription{}, err
	}
	// No longer pending: its requests stop counting.
	if err := s.releasePending(ctx, sub); err != nil {
		return Subscription{}, err
	}
	return sub, nil
}

// Unsubscribe deletes the subscription whose unsubscribe token is token.
func (s *Subscriptions) Unsubscribe(ctx context.Context, token string) (Subscription, error) {
	if !validToken(token) {
		return Subscription{}, ErrUnknownToken
	}
	e, err := s.kv.Get(ctx, "unsub."+hashHex(token))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Subscription{}, ErrUnknownToken
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("unsubscribe: %w", err)
	}
	sub, err := s.get(ctx, string(e.Value()))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Subscription{}, ErrUnknownToken
	}
	if err != nil {
		return Subscription{}, err
	}
	if sub.UnsubscribeToken != token {
		return Subscription{}, ErrUnknownToken
	}
	if err := s.remove(ctx, sub); err != nil {
		return Subscription{}, fmt.Errorf("unsubscribe: %w", err)
	}
	return sub, nil
}

// Get returns the subscription with id; its error wraps
// jetstream.ErrKeyNotFound if there is none (unsubscribed).
func (s *Subscriptions) Get(ctx context.Context, id string) (Subscription, error) {
	return s.get(ctx, id)
}

// All returns every subscription, confirmed or not.
func (s *Subscriptions) All(ctx context.Context) ([]Subscription, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, "sub.*")
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer lister.Stop()
	var out []Subscription
	for k := range lister.Keys() {
		sub, err := s.get(ctx, strings.TrimPrefix(k, "sub."))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

// Matching returns the confirmed subscriptions that alert a, about a site
// in service area area, concerns (Target.Concerns): an individual
// compliance result's only those bound to its sample.
func (s *Subscriptions) Matching(ctx context.Context, a tapproof.Alert, area string) ([]Subscription, error) {
	all, err := s.All(ctx)
	if err != nil {
		return nil, err
	}
	var out []Subscription
	for _, sub := range all {
		if sub.Confirmed && sub.Concerns(a, area) {
			out = append(out, sub)
		}
	}
	return out, nil
}

func (s *Subscriptions) get(ctx context.Context, id string) (Subscription, error) {
	if !validToken(id) {
		return Subscription{}, fmt.Errorf("subscription: %w", jetstream.ErrKeyNotFound)
	}
	e, err := s.kv.Get(ctx, "sub."+id)
	if err != nil {
		return Subscription{}, fmt.Errorf("subscription %s: %w", id, err)
	}
	var sub Subscription
	if err := json.Unmarshal(e.Value(), &sub); err != nil {
		return Subscription{}, fmt.Errorf("subscription %s: %w", id, err)
	}
	return sub, nil
}

func (s *Subscriptions) put(ctx context.Context, sub Subscription) error {
	b, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, "sub."+sub.ID, b); err != nil {
		return fmt.Errorf("store %s: %w", sub, err)
	}
	return nil
}

// randomToken returns 32 random bytes in hex.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// validToken reports whether t looks like a token or id we issue: hex, at
// most 64 digits. Anything else is refused before it reaches a KV key.
func validToken(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range t {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
