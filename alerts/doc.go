// Package alerts owns tapproof's alerting: deciding that a reading raises an
// alert, storing each alert once, and fanning alerts out to notifiers.
//
//   - Evaluator applies the threshold rules (tapproof.Rule) in force when a
//     reading was sampled. It raises screening alerts for sensor readings and
//     individual-compliance alerts for lab samples.
//   - Screener is what ingest calls for every accepted reading. Compliance
//     results are published every time they exceed (never suppressed);
//     screening readings go through a state machine per utility, site and
//     analyte, measured in sampled time: a pending duration, one open alert
//     (further exceedances recorded as suppressions in the stream
//     TAPPROOF_SUPPRESSIONS), an Update when the value doubles, a recovery
//     threshold below the level (hysteresis) and an explicit all-clear (CAP
//     msgType Cancel). Its state lives in the key-value bucket
//     tapproof_screening; message ids are deterministic, so redelivery and
//     restarts publish nothing twice.
//   - Store keeps alerts in the JetStream stream TAPPROOF_ALERTS, subjects
//     tapproof.alerts.<utility>.<site> (site "_" for alerts about a whole
//     system). Each message carries Nats-Msg-Id = Alert.ID, so the same alert
//     published twice within DuplicateWindow is stored once.
//   - Webhooks delivers every stored alert to each configured URL from its own
//     durable JetStream consumer, signed with HMAC-SHA256; JetStream
//     redelivery is the retry mechanism.
//   - Subscriptions keeps residents' subscriptions (double opt-in, tokens,
//     addresses) in the bucket tapproof_subscriptions. Notifier renders each
//     alert's notice from a versioned template with the mandatory
//     health-effects language, appends a NoticeRecord (time, class, template
//     version, SHA-256 of the text, number of recipients; never an address)
//     to the utility's log through NoticeLog, and delivers to each confirmed
//     subscription by email (SMTPMailer, go-mail) or signed webhook from the
//     work queue TAPPROOF_NOTICES, retrying with back-off and recording each
//     delivery as delivered or failed in the bucket tapproof_notices.
//   - CAP renders an alert as OASIS CAP 1.2
//     (https://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2-os.html).
//
// Webhook receivers verify X-Tapproof-Signature, which is
// "sha256=" + hex(HMAC-SHA256(secret, body)), and deduplicate on
// X-Tapproof-Alert-Id: delivery is at least once.
//
// alerts must not import ingest, anchor, influx, dashboards, journal or
// httpapi; it talks to them only in the domain types of package tapproof.
package alerts
