// Package alerts owns tapproof's alerting: deciding that a reading raises an
// alert, storing each alert once, and fanning alerts out to notifiers.
//
//   - Evaluator applies the threshold rules (tapproof.Rule) in force when a
//     reading was sampled. It raises screening alerts for sensor readings and
//     individual-compliance alerts for lab samples. System action-level
//     exceedance (a period's 90th percentile) and screening hysteresis are
//     separate evaluators still to come; they produce the same tapproof.Alert
//     and reuse Store and the notifiers unchanged.
//   - Store keeps alerts in the JetStream stream TAPPROOF_ALERTS, subjects
//     tapproof.alerts.<utility>.<site> (site "_" for alerts about a whole
//     system). Each message carries Nats-Msg-Id = Alert.ID, so the same alert
//     published twice within DuplicateWindow is stored once.
//   - Webhooks delivers every stored alert to each configured URL from its own
//     durable JetStream consumer, signed with HMAC-SHA256; JetStream
//     redelivery is the retry mechanism. Further notifiers (email, CAP feeds)
//     follow the same pattern: one durable consumer each.
//
// Webhook receivers verify X-Tapproof-Signature, which is
// "sha256=" + hex(HMAC-SHA256(secret, body)), and deduplicate on
// X-Tapproof-Alert-Id: delivery is at least once.
//
// alerts must not import ingest, anchor, influx, dashboards, journal or
// httpapi; it talks to them only in the domain types of package tapproof.
package alerts
