// Package residents owns what tapproof tells residents directly.
//
//   - Subscriptions keeps residents' subscriptions (double opt-in, tokens,
//     addresses) in the JetStream key-value bucket tapproof_subscriptions.
//     Addresses are private: a Subscription logs and formats without them.
//   - Notifier renders each alert message stored in TAPPROOF_ALERTS
//     (alerts.Store) as a notice (alerts/notice), appends a
//     tapproof.NoticeRecord (time, class, template version, SHA-256 of the
//     text, number of recipients; never an address) to the utility's log
//     through NoticeLog, and delivers to each confirmed subscription by
//     email or signed webhook from the work queue TAPPROOF_NOTICES, with a
//     consumer and workers per channel (a webhook that never answers holds
//     back no email), retrying with alerts.Retry and recording each delivery as delivered or
//     failed in the bucket tapproof_notices. It also runs the double opt-in:
//     confirmation requests go through a work queue of their own,
//     TAPPROOF_CONFIRMATIONS, with workers of their own per channel and
//     fewer attempts
//     (DefaultConfirmAttempts), so that no number of them, to addresses
//     that never answer, delays a notice.
//   - SMTPMailer sends email through an SMTP server (go-mail).
//   - HouseholdCodes derives the code the utility or the lab gives a
//     household for its own compliance sample (HMAC-SHA256 under a key
//     kept in a file, LoadOrCreateHouseholdKey), and checks it in constant
//     time. A subscription to one sample (Target.Sample) needs its code.
//
// An individual compliance result (tapproof.AlertClass.Private) goes only
// to the confirmed subscriptions bound to its sample, never to those of
// its site, its area or the whole system; its notice record is appended
// like any other, with its number of recipients and no public channel.
// Every other alert goes to its site, area and system subscribers, never
// to a sample's. A household code is never stored or logged.
//
// Strangers are bounded: an address may have DefaultMaxPendingPerAddress
// confirmation requests outstanding, an email domain or webhook host
// DefaultMaxPendingPerDomain (refused as RefusePendingAddress and
// RefusePendingDomain); a pending subscription expires after
// DefaultPendingTTL, its link then unknown, and the Notifier purges it.
// How often one client may ask is the HTTP edge's to bound (package
// public).
//
// A resident's webhook is signed with the subscription's own secret
// (alerts.Sign) and never posted to an address of the IANA special-purpose
// registries (loopback, private, CGNAT, NAT64, 6to4, documentation,
// reserved...: specialPurpose), checked on the URL at subscribe time and
// on the resolved address at every connection, unless
// SubscriptionsConfig.AllowPrivateWebhooks says so.
//
// residents talks to JetStream, SMTP servers and residents' webhooks. It
// imports the root package tapproof, alerts and alerts/notice only: never
// alerts/webhook or alerts/cap, nor ingest, anchor, influx, journal,
// httpapi or public.
package residents
