package residents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/notice"
)

// Notice streams, buckets and consumers.
const (
	// NoticeStreamName is the JetStream work queue of deliveries to
	// residents, one message per notice (or confirmation) and subscription,
	// on subjects NoticeSubjectPrefix.<channel>. A message names its
	// subscription, never an address.
	NoticeStreamName    = "TAPPROOF_NOTICES"
	NoticeSubjectPrefix = "tapproof.notices"
	// ConfirmStreamName is the work queue of confirmation requests, on
	// subjects ConfirmSubjectPrefix.<channel>, with consumer and workers
	// of its own, so that notices never wait behind confirmations that
	// strangers may ask for by the hundred.
	ConfirmStreamName    = "TAPPROOF_CONFIRMATIONS"
	ConfirmSubjectPrefix = "tapproof.confirmations"
	// NoticeBucket keeps, per alert, the notice record appended to the log
	// (key issued.<alert id>) and, per delivery, its outcome (key
	// delivery.<delivery id>).
	NoticeBucket = "tapproof_notices"

	dispatchConsumer = "tapproof-notice-dispatch"
	deliveryConsumer = "tapproof-notice-delivery"
	confirmConsumer  = "tapproof-confirm-delivery"
)

// Notifier defaults, used where a NotifierConfig field is zero.
const (
	DefaultNoticeWorkers = 4
	// DefaultConfirmWorkers deliver confirmation requests, apart from
	// the notice workers.
	DefaultConfirmWorkers = 2
	// DefaultConfirmAttempts is how many times a confirmation request is
	// tried: an address that never answers holds a confirmation worker
	// for at most this many webhook timeouts.
	DefaultConfirmAttempts = 3
	// DefaultWebhookTimeout bounds each POST to a resident's webhook.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultPurgeEvery is how often expired pending subscriptions are
	// deleted (Subscriptions.PurgeExpired).
	DefaultPurgeEvery = 10 * time.Minute
)

// Log attribute keys.
const (
	logKeyAlert   = "alert_id"
	logKeyAttempt = "attempt"
	logKeyRetryIn = "retry_in"
	logKeyError   = "error"
)

// Sites lists the sites residents can find and subscribe to. The Notifier
// declares it; platform implements it from the sites file and the device
// registry.
type Sites interface {
	Sites(ctx context.Context) ([]notice.Site, error)
}

// NoticeLog appends notice records to a utility's verifiable log. The
// journal implements it. record is the JSON of a tapproof.NoticeRecord; AlertID
// identifies it, so an implementation may drop a second record for the same
// alert (a redelivery after a crash).
type NoticeLog interface {
	AppendNotice(ctx context.Context, utility string, record []byte) (index uint64, err error)
}

// Headers of a resident webhook delivery, besides alerts.HeaderSignature and
// alerts.HeaderAlertID.
const (
	HeaderDeliveryID = "X-Tapproof-Delivery"
	HeaderKind       = "X-Tapproof-Kind" // "notice" or "confirm"
)

// Delivery outcomes, the values of DeliveryStatus.Status.
const (
	DeliveryRetrying  = "retrying"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled" // unsubscribed before delivery
)

// NotifierConfig configures a Notifier. Zero values take the defaults.
type NotifierConfig struct {
	// Links are the public pages notices link to (Base is required).
	Links notice.Links
	// Mailer sends email; without one, email subscriptions are refused.
	Mailer Mailer
	// NoticeLog records each notice; nil records nothing (tests, demos).
	NoticeLog NoticeLog
	// Workers deliver notices in parallel; DefaultNoticeWorkers if zero.
	Workers int
	// ConfirmWorkers deliver confirmation requests in parallel, from
	// their own queue; DefaultConfirmWorkers if zero.
	ConfirmWorkers int
	// WebhookTimeout bounds each POST to a resident's webhook;
	// DefaultWebhookTimeout if zero.
	WebhookTimeout time.Duration
	// Retry is how often and how soon a delivery is tried again, and how
	// soon a notice that could not be issued is.
	alerts.Retry
	// ConfirmRetry is how a confirmation request is retried;
	// DefaultConfirmAttempts attempts and alerts' default back-off where
	// zero.
	ConfirmRetry alerts.Retry
	// PurgeEvery is how often expired pending subscriptions are deleted;
	// DefaultPurgeEvery if zero.
	PurgeEvery time.Duration
	// Now stamps notice records; time.Now if nil.
	Now func() time.Time
}

// Validate checks c.
func (c NotifierConfig) Validate() error {
	u, err := url.Parse(c.Links.Base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("notifier: the public base URL must be an absolute http or https URL")
	}
	if c.Workers < 0 || c.ConfirmWorkers < 0 || c.WebhookTimeout < 0 || c.PurgeEvery < 0 {
		return errors.New("notifier: workers, timeout and purge interval must not be negative")
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("notifier: %v", err)
	}
	if err := c.ConfirmRetry.Validate(); err != nil {
		return fmt.Errorf("notifier: confirmations: %v", err)
	}
	return nil
}

// DeliveryStatus is the outcome of one delivery to one subscription.
type DeliveryStatus struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"` // notice or confirm
	AlertID      string    `json:"alert_id,omitempty"`
	Subscription string    `json:"subscription"`
	Channel      Channel   `json:"channel"`
	Status       string    `json:"status"`
	Attempts     uint64    `json:"attempts"`
	Error        string    `json:"error,omitempty"` // never an address
	At           time.Time `json:"at"`
}

// job is one message of the notice work queue.
type job struct {
	ID           string          `json:"id"`
	Kind         string          `json:"kind"` // notice or confirm
	Subscription string          `json:"subscription"`
	Alert        *tapproof.Alert `json:"alert,omitempty"`
	Template     string          `json:"template"`
	Subject      string          `json:"subject"`
	Body         string          `json:"body"`
	TextSHA256   string          `json:"text_sha256,omitempty"`
	ConfirmURL   string          `json:"confirm_url,omitempty"`
	Language     string          `json:"language,omitempty"` // of Subject and Body
}

// Notifier sends notices to subscribed residents: for every alert message
// stored (alerts.Store.Publish) it renders the notice from its template,
// appends a tapproof.NoticeRecord to the utility's log, and queues one
// delivery per confirmed subscription; workers deliver by email or signed
// webhook, retrying with back-off through JetStream redelivery, and record
// each delivery as delivered or failed. It also runs the double opt-in of
// subscriptions.
type Notifier struct {
	js     jetstream.JetStream
	subs   *Subscriptions
	sites  Sites
	cfg    NotifierConfig
	status jetstream.KeyValue
	client *http.Client
	m      *Metrics
	log    *slog.Logger
}

// NewNotifier creates or updates the notice stream and bucket and returns a
// Notifier. The alert stream must exist (alerts.NewStore). metrics and log
// may be nil.
func NewNotifier(ctx context.Context, js jetstream.JetStream, subs *Subscriptions, sites Sites, cfg NotifierConfig, metrics *Metrics, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if subs == nil || sites == nil {
		return nil, errors.New("notifier: subscriptions and sites are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.WebhookTimeout == 0 {
		cfg.WebhookTimeout = DefaultWebhookTimeout
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultNoticeWorkers
	}
	if cfg.ConfirmWorkers == 0 {
		cfg.ConfirmWorkers = DefaultConfirmWorkers
	}
	if cfg.ConfirmRetry.MaxDeliver == 0 {
		cfg.ConfirmRetry.MaxDeliver = DefaultConfirmAttempts
	}
	if cfg.PurgeEvery == 0 {
		cfg.PurgeEvery = DefaultPurgeEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        NoticeStreamName,
		Description: "tapproof deliveries to residents (work queue; names subscriptions, never addresses)",
		Subjects:    []string{NoticeSubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Duplicates:  alerts.DuplicateWindow,
		MaxMsgSize:  256 << 10,
	}); err != nil {
		return nil, fmt.Errorf("notice stream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ConfirmStreamName,
		Description: "tapproof confirmation requests to residents (work queue; names subscriptions, never addresses)",
		Subjects:    []string{ConfirmSubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Duplicates:  alerts.DuplicateWindow,
		MaxMsgSize:  256 << 10,
	}); err != nil {
		return nil, fmt.Errorf("confirmation stream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      NoticeBucket,
		Description: "tapproof notice records and delivery outcomes",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("notice bucket: %w", err)
	}
	dialer := &net.Dialer{Timeout: cfg.WebhookTimeout}
	if !subs.allowPrivate {
		dialer.Control = refusePrivate
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // a proxy would dial for us, past refusePrivate
	tr.DialContext = dialer.DialContext
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Notifier{js: js, subs: subs, sites: sites, cfg: cfg, status: kv, client: client, m: metrics, log: log}, nil
}

// refusePrivate is a net.Dialer Control that refuses to connect a resident's
// webhook to any special-purpose address (publicAddr), whatever its name
// resolved to.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !publicAddr(ap.Addr()) {
		return errors.New("webhook address is not public")
	}
	return nil
}

// Subscribe stores a pending subscription and queues its confirmation
// request. If the address is already confirmed for the target nothing is
// sent. Its *Refusal errors are the resident's to fix.
func (n *Notifier) Subscribe(ctx context.Context, req SubscribeRequest) (Subscription, error) {
	if req.Channel == ChannelEmail && n.cfg.Mailer == nil {
		err := refuse(RefuseNoEmail, "email alerts are not available here")
		n.m.refused(err)
		return Subscription{}, err
	}
	if err := n.checkTarget(ctx, req.Target); err != nil {
		n.m.refused(err)
		return Subscription{}, err
	}
	sub, token, err := n.subs.Subscribe(ctx, req)
	if err != nil {
		n.m.refused(err)
		return Subscription{}, err
	}
	n.log.Info("subscription requested", slog.Any("subscription", sub), slog.Bool("confirmation", token != ""))
	if token == "" {
		return sub, nil
	}
	site, siteID := n.siteFor(ctx, sub.Target), sub.Site
	if sub.Sample != "" {
		siteID = sub.Sample // the place a confirmation names: the sample
	}
	text, err := notice.RenderConfirmationIn(sub.Lang(), sub.Utility, siteID, sub.Area, site, n.cfg.Links.Confirm(token))
	if err != nil {
		return Subscription{}, err
	}
	j := job{
		ID: "confirm-" + sub.ID + "." + hashHex(token)[:16], Kind: "confirm", Subscription: sub.ID,
		Template: text.Template.Name(), Subject: text.Subject, Body: text.Body, ConfirmURL: n.cfg.Links.Confirm(token),
		Language: text.Language(),
	}
	if err := n.enqueue(ctx, ConfirmSubjectPrefix, ConfirmStreamName, sub.Channel, j); err != nil {
		return Subscription{}, err
	}
	return sub, nil
}

// Confirm confirms the subscription whose confirmation token is token.
func (n *Notifier) Confirm(ctx context.Context, token string) (Subscription, error) {
	sub, err := n.subs.Confirm(ctx, token)
	if err == nil {
		n.log.Info("subscription confirmed", slog.Any("subscription", sub))
	}
	return sub, err
}

// Unsubscribe ends the subscription whose unsubscribe token is token.
func (n *Notifier) Unsubscribe(ctx context.Context, token string) (Subscription, error) {
	sub, err := n.subs.Unsubscribe(ctx, token)
	if err == nil {
		n.log.Info("unsubscribed", slog.Any("subscription", sub))
	}
	return sub, err
}

// checkTarget makes sure the target exists among the sites. A sample
// target is checked by its household code instead (Subscriptions).
func (n *Notifier) checkTarget(ctx context.Context, t Target) error {
	if err := t.Validate(); err != nil || t.Sample != "" {
		return err
	}
	sites, err := n.sites.Sites(ctx)
	if err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	for _, s := range sites {
		if s.Utility == t.Utility && ((t.Site != "" && s.ID == t.Site) || (t.Area != "" && s.Area == t.Area)) {
			return nil
		}
	}
	return refuse(RefuseTarget, "no such site or service area")
}

func (n *Notifier) siteFor(ctx context.Context, t Target) *notice.Site {
	sites, err := n.sites.Sites(ctx)
	if err != nil || t.Sample != "" {
		return nil
	}
	for i, s := range sites {
		if s.Utility == t.Utility && ((t.Site != "" && s.ID == t.Site) || (t.Site == "" && s.Area == t.Area)) {
			return &sites[i]
		}
	}
	return nil
}

// enqueue queues j on stream, subject prefix.<channel>.
func (n *Notifier) enqueue(ctx context.Context, prefix, stream string, ch Channel, j job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if _, err := n.js.Publish(ctx, prefix+"."+string(ch), b,
		jetstream.WithMsgID(j.ID), jetstream.WithExpectStream(stream)); err != nil {
		return fmt.Errorf("queue delivery %s: %w", j.ID, err)
	}
	return nil
}

// Issued returns the notice record of alert id and its index in the log,
// and whether the notice was issued.
func (n *Notifier) Issued(ctx context.Context, alertID string) (tapproof.NoticeRecord, uint64, bool, error) {
	e, err := n.status.Get(ctx, "issued."+alertID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tapproof.NoticeRecord{}, 0, false, nil
	}
	if err != nil {
		return tapproof.NoticeRecord{}, 0, false, fmt.Errorf("notice %s: %w", alertID, err)
	}
	var v issued
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return tapproof.NoticeRecord{}, 0, false, fmt.Errorf("notice %s: %w", alertID, err)
	}
	return v.Record, v.Index, true, nil
}

// Deliveries returns the outcome of every delivery of alert id's notice.
func (n *Notifier) Deliveries(ctx context.Context, alertID string) ([]DeliveryStatus, error) {
	return n.deliveries(ctx, "delivery.notice-"+alertID+".*")
}

// Confirmations returns the outcome of every confirmation request sent
// for subscription id.
func (n *Notifier) Confirmations(ctx context.Context, subscription string) ([]DeliveryStatus, error) {
	return n.deliveries(ctx, "delivery.confirm-"+subscription+".*")
}

func (n *Notifier) deliveries(ctx context.Context, filter string) ([]DeliveryStatus, error) {
	l, err := n.status.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer l.Stop()
	var out []DeliveryStatus
	for k := range l.Keys() {
		e, err := n.status.Get(ctx, k)
		if err != nil {
			continue
		}
		var d DeliveryStatus
		if json.Unmarshal(e.Value(), &d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

type issued struct {
	Record tapproof.NoticeRecord `json:"record"`
	Index  uint64                `json:"index"`
}

// Run dispatches notices and delivers them, delivers confirmation
// requests from their own queue with their own workers, and purges
// expired pending subscriptions every PurgeEvery, until ctx is done; then
// it returns nil. It returns an error if a consumer cannot be created.
func (n *Notifier) Run(ctx context.Context) error {
	type pool struct {
		c       jetstream.Consumer
		workers int
	}
	var pools []pool
	for _, q := range []struct {
		stream, prefix, durable, desc string
		attempts, workers             int
	}{
		{NoticeStreamName, NoticeSubjectPrefix, deliveryConsumer, "tapproof resident deliveries", n.cfg.Attempts(), n.cfg.Workers},
		{ConfirmStreamName, ConfirmSubjectPrefix, confirmConsumer, "tapproof confirmation requests to residents", n.cfg.ConfirmRetry.Attempts(), n.cfg.ConfirmWorkers},
	} {
		// One consumer and its workers per channel, so that webhooks
		// that never answer (a stranger's, confirmed) hold back no email,
		// and a slow mail server no webhook. A consumer of all channels,
		// by an earlier version, would overlap them on the work queue.
		err := n.js.DeleteConsumer(ctx, q.stream, q.durable)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("%s: %w", q.desc, err)
		}
		for _, ch := range []Channel{ChannelEmail, ChannelWebhook} {
			c, err := n.js.CreateOrUpdateConsumer(ctx, q.stream, jetstream.ConsumerConfig{
				Durable:       q.durable + "-" + string(ch),
				Description:   q.desc + " by " + string(ch),
				FilterSubject: q.prefix + "." + string(ch),
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       2*max(n.cfg.WebhookTimeout, DefaultSMTPTimeout) + 10*time.Second,
				MaxDeliver:    q.attempts,
				MaxAckPending: 4 * q.workers,
			})
			if err != nil {
				return fmt.Errorf("%s by %s: %w", q.desc, ch, err)
			}
			pools = append(pools, pool{c, q.workers})
		}
	}
	// The dispatch consumer last: once it exists, every consumer does.
	dispatch, err := n.js.CreateOrUpdateConsumer(ctx, alerts.StreamName, jetstream.ConsumerConfig{
		Durable:       dispatchConsumer,
		Description:   "tapproof resident notices: one per alert message",
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    -1, // an alert's notice is never given up
		FilterSubject: alerts.SubjectPrefix + ".>",
	})
	if err != nil {
		return fmt.Errorf("notice dispatch consumer: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { n.consume(ctx, dispatch, n.dispatch) })
	for _, p := range pools {
		for range p.workers {
			wg.Go(func() { n.consume(ctx, p.c, n.deliver) })
		}
	}
	wg.Go(func() { n.purge(ctx) })
	wg.Wait()
	return nil
}

// purge deletes expired pending subscriptions now and every PurgeEvery
// until ctx is done.
func (n *Notifier) purge(ctx context.Context) {
	t := time.NewTicker(n.cfg.PurgeEvery)
	defer t.Stop()
	for {
		k, err := n.subs.PurgeExpired(ctx)
		n.m.expired(k)
		switch {
		case err != nil && ctx.Err() == nil:
			n.log.Warn("expired subscriptions not purged", logKeyError, err)
		case k > 0:
			n.log.Info("expired subscriptions purged", "count", k)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// consume hands messages of c to handle one at a time until ctx is done,
// resuming after interruptions.
func (n *Notifier) consume(ctx context.Context, c jetstream.Consumer, handle func(context.Context, jetstream.Msg)) {
	for ctx.Err() == nil {
		it, err := c.Messages(jetstream.PullMaxMessages(1), jetstream.PullExpiry(5*time.Second))
		if err == nil {
			for {
				msg, err := it.Next(jetstream.NextContext(ctx))
				if err != nil {
					break
				}
				handle(ctx, msg)
			}
			it.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("notice consumer interrupted, resuming", logKeyError, err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// dispatch issues the notice of one alert message.
func (n *Notifier) dispatch(ctx context.Context, msg jetstream.Msg) {
	a, err := n.m.decodeAlert(msg.Data())
	if err != nil {
		n.log.Warn("notifier: alert message set aside", slog.String("subject", msg.Subject()), slog.Any("error", err))
		n.settle(msg.Term())
		return
	}
	if a.State() == tapproof.AlertSuppressed {
		n.settle(msg.Term())
		return
	}
	attempt := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	if err := n.issue(ctx, a); err != nil {
		if ctx.Err() != nil {
			n.settle(msg.Nak())
			return
		}
		delay := n.cfg.Backoff(attempt)
		n.log.Warn("notice not issued, will retry", logKeyAlert, a.ID, logKeyAttempt, attempt, logKeyRetryIn, delay, logKeyError, err)
		n.settle(msg.NakWithDelay(delay))
		return
	}
	n.settle(msg.Ack())
}

func (n *Notifier) issue(ctx context.Context, a tapproof.Alert) error {
	sites, err := n.sites.Sites(ctx)
	if err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	site, _ := notice.FindSite(sites, a.Utility, a.Site)
	area := ""
	if site != nil {
		area = site.Area
	}
	// Every language version, English first: each recipient gets the one
	// of their subscription's language.
	texts := map[string]notice.Notice{}
	var langs []string
	for _, lang := range notice.Languages() {
		t, err := notice.RenderIn(lang, a, site, n.cfg.Links)
		if err != nil {
			return err
		}
		if t.Language() == lang {
			texts[lang] = t
			langs = append(langs, lang)
		}
	}
	text := texts[notice.DefaultLanguage]
	subs, err := n.subs.Matching(ctx, a, area)
	if err != nil {
		return err
	}
	rec, _, done, err := n.Issued(ctx, a.ID)
	if err != nil {
		return err
	}
	// A home's own result is carried by no public channel.
	var public []string
	if !a.Class.Private() {
		public = []string{"cap", "atom"}
	}
	if !done {
		rec = tapproof.NoticeRecord{
			Type: tapproof.NoticeRecordType, AlertID: a.ID, Class: a.Class, MsgType: a.Type(), Utility: a.Utility, Site: a.Site,
			Template: text.Template.ID, TemplateVersion: text.Template.Version, TextSHA256: text.SHA256(),
			Recipients: len(subs), Channels: map[string]int{}, AlertRaisedAt: a.RaisedAt, SentAt: n.cfg.Now().UTC(),
			References: a.References, Public: public,
		}
		recipients := map[string]int{}
		for _, s := range subs {
			rec.Channels[string(s.Channel)]++
			recipients[textFor(texts, s).Language()]++
		}
		for _, lang := range langs {
			t := texts[lang]
			rec.Texts = append(rec.Texts, tapproof.NoticeText{Language: lang, Template: t.Template.ID, TemplateVersion: t.Template.Version,
				TextSHA256: t.SHA256(), Recipients: recipients[lang]})
		}
		var index uint64
		if n.cfg.NoticeLog != nil {
			body, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if index, err = n.cfg.NoticeLog.AppendNotice(ctx, a.Utility, body); err != nil {
				return fmt.Errorf("notice log: %w", err)
			}
		}
		b, _ := json.Marshal(issued{Record: rec, Index: index})
		if _, err := n.status.Put(ctx, "issued."+a.ID, b); err != nil {
			return fmt.Errorf("notice %s: %w", a.ID, err)
		}
		n.log.Info("notice issued", logKeyAlert, a.ID, "template", text.Template.Name(),
			"text_sha256", rec.TextSHA256, "recipients", rec.Recipients, "log_index", index)
	}
	for _, s := range subs {
		text := textFor(texts, s)
		j := job{
			ID: "notice-" + a.ID + "." + s.ID, Kind: "notice", Subscription: s.ID, Alert: &a,
			Template: text.Template.Name(), Subject: text.Subject, Body: text.Body, TextSHA256: text.SHA256(),
			Language: text.Language(),
		}
		if err := n.enqueue(ctx, NoticeSubjectPrefix, NoticeStreamName, s.Channel, j); err != nil {
			return err
		}
	}
	return nil
}

// textFor returns the version of a notice that s is sent: that of its
// language, or English.
func textFor(texts map[string]notice.Notice, s Subscription) notice.Notice {
	if t, ok := texts[s.Lang()]; ok {
		return t
	}
	return texts[notice.DefaultLanguage]
}

// deliver sends one queued delivery.
func (n *Notifier) deliver(ctx context.Context, msg jetstream.Msg) {
	var j job
	if err := json.Unmarshal(msg.Data(), &j); err != nil || j.ID == "" {
		n.log.Error("undecodable delivery dropped", "subject", msg.Subject())
		n.settle(msg.Term())
		return
	}
	attempt := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	retry := n.cfg.Retry
	if j.Kind == "confirm" {
		retry = n.cfg.ConfirmRetry
	}
	st := DeliveryStatus{ID: j.ID, Kind: j.Kind, Subscription: j.Subscription, Attempts: attempt}
	if j.Alert != nil {
		st.AlertID = j.Alert.ID
	}
	sub, err := n.subs.Get(ctx, j.Subscription)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		st.Status = DeliveryCancelled
		n.record(ctx, st)
		n.settle(msg.Ack())
		return
	case err != nil:
		n.settle(msg.NakWithDelay(retry.Backoff(attempt)))
		return
	case j.Kind == "notice" && !sub.Confirmed:
		st.Status = DeliveryCancelled
		n.record(ctx, st)
		n.settle(msg.Ack()) // unconfirmed subscriptions receive nothing
		return
	case j.Kind == "confirm" && n.subs.Expired(sub):
		st.Status = DeliveryCancelled
		n.record(ctx, st)
		n.settle(msg.Ack()) // its link no longer works
		return
	}
	st.Channel = sub.Channel
	log := n.log.With("delivery", j.ID, logKeyAttempt, attempt, "subscription", sub)
	switch sub.Channel {
	case ChannelEmail:
		err = n.sendEmail(ctx, sub, j)
	case ChannelWebhook:
		err = n.sendWebhook(ctx, sub, j)
	default:
		err = fmt.Errorf("unknown channel %q", sub.Channel)
	}
	switch {
	case err == nil:
		st.Status = DeliveryDelivered
		n.m.notice(sub.Channel, alerts.ResultDelivered)
		log.Info("delivered")
		n.record(ctx, st)
		n.settle(msg.Ack())
	case ctx.Err() != nil:
		n.settle(msg.Nak())
	case attempt >= uint64(retry.Attempts()):
		st.Status, st.Error = DeliveryFailed, redactAddress(err, sub)
		n.m.notice(sub.Channel, alerts.ResultFailed)
		log.Error("delivery failed for the last time", logKeyError, st.Error)
		n.record(ctx, st)
		n.settle(msg.Term())
	default:
		delay := retry.Backoff(attempt)
		st.Status, st.Error = DeliveryRetrying, redactAddress(err, sub)
		n.m.notice(sub.Channel, alerts.ResultRetried)
		log.Warn("delivery failed, will retry", logKeyError, st.Error, logKeyRetryIn, delay)
		n.record(ctx, st)
		n.settle(msg.NakWithDelay(delay))
	}
}

func (n *Notifier) record(ctx context.Context, st DeliveryStatus) {
	st.At = n.cfg.Now().UTC()
	b, _ := json.Marshal(st)
	if _, err := n.status.Put(ctx, "delivery."+st.ID, b); err != nil {
		n.log.Warn("delivery status not recorded", "delivery", st.ID, logKeyError, err)
	}
}

func (n *Notifier) settle(err error) {
	if err != nil {
		n.log.Warn("acknowledging notice message", logKeyError, err)
	}
}

// footer is the per-recipient end of a notice, outside its hashed text.
func (n *Notifier) footer(sub Subscription) string {
	return notice.Footer(sub.Lang(), sub.Target.String(), n.cfg.Links.Unsubscribe(sub.UnsubscribeToken))
}

func (n *Notifier) sendEmail(ctx context.Context, sub Subscription, j job) error {
	if n.cfg.Mailer == nil {
		return errors.New("no mailer configured")
	}
	e := Email{To: sub.Address, Subject: j.Subject, Text: j.Body, MessageID: j.ID + "@tapproof", Language: j.Language}
	if j.Kind == "notice" {
		e.Text += n.footer(sub)
		e.Unsubscribe = n.cfg.Links.Unsubscribe(sub.UnsubscribeToken)
	}
	return n.cfg.Mailer.Send(ctx, e)
}

// webhookPayload is the JSON body of a resident webhook delivery.
type webhookPayload struct {
	Type         string          `json:"type"` // notice or confirm
	Delivery     string          `json:"delivery"`
	Subscription string          `json:"subscription"`
	Alert        *tapproof.Alert `json:"alert,omitempty"`
	Template     string          `json:"template,omitempty"`
	Subject      string          `json:"subject"`
	Text         string          `json:"text"`
	TextSHA256   string          `json:"text_sha256,omitempty"`
	Language     string          `json:"language,omitempty"` // of Subject and Text
	// ProofURL is the proof of what the alert is about, which the text
	// links too (notice.Links.Proof).
	ProofURL    string `json:"proof_url,omitempty"`
	ConfirmURL  string `json:"confirm_url,omitempty"`
	Unsubscribe string `json:"unsubscribe_url,omitempty"`
	// Secret is the subscription's signing secret, sent once, in the
	// confirmation request: only the owner of the URL learns it.
	Secret string `json:"secret,omitempty"`
}

func (n *Notifier) sendWebhook(ctx context.Context, sub Subscription, j job) error {
	p := webhookPayload{Type: j.Kind, Delivery: j.ID, Subscription: sub.ID, Alert: j.Alert, Template: j.Template,
		Subject: j.Subject, Text: j.Body, TextSHA256: j.TextSHA256, ConfirmURL: j.ConfirmURL, Language: j.Language}
	if j.Kind == "notice" {
		p.Unsubscribe = n.cfg.Links.Unsubscribe(sub.UnsubscribeToken)
		if j.Alert != nil {
			p.ProofURL = n.cfg.Links.Proof(*j.Alert).URL
		}
	} else {
		p.Secret = sub.Secret
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Address, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tapproof-webhook/1")
	req.Header.Set(alerts.HeaderSignature, alerts.Sign(sub.Secret, body))
	req.Header.Set(HeaderDeliveryID, j.ID)
	req.Header.Set(HeaderKind, j.Kind)
	if j.Alert != nil {
		req.Header.Set(alerts.HeaderAlertID, j.Alert.ID)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// redactAddress returns err's text without sub's address or its host.
func redactAddress(err error, sub Subscription) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	secrets := []string{sub.Address, sub.Secret}
	if u, perr := url.Parse(sub.Address); perr == nil && sub.Channel == ChannelWebhook {
		secrets = append(secrets, u.Host, u.Hostname())
	}
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "<redacted>")
		}
	}
	return s
}
