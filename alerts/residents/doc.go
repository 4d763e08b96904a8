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
//     email or signed webhook from the work queue TAPPROOF_NOTICES,
//     retrying with alerts.Retry and recording each delivery as delivered or
//     failed in the bucket tapproof_notices. It also runs the double opt-in.
//   - SMTPMailer sends email through an SMTP server (go-mail).
//
// A resident's webhook is signed with the subscription's own secret
// (alerts.Sign) and never posted to a loopback or private address unless
// SubscriptionsConfig.AllowPrivateWebhooks says so.
//
// residents talks to JetStream, SMTP servers and residents' webhooks. It
// imports the root package tapproof, alerts and alerts/notice only: never
// alerts/webhook or alerts/cap, nor ingest, anchor, influx, journal,
// httpapi or public.
package residents
