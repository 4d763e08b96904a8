// Package alerts owns tapproof's alerting decisions and the alert stream:
// deciding that a reading raises an alert, screening readings through a
// state machine, and storing each alert message once.
//
//   - Evaluator applies the threshold rules (tapproof.Rule) in force when a
//     reading was sampled. It raises screening alerts for sensor readings and
//     individual-compliance alerts for lab samples.
//   - Screener is what ingest calls for every accepted reading. Compliance
//     results are published every time they exceed (never suppressed);
//     screening readings go through a state machine per device and
//     analyte, so that only a sensor's own readings raise, escalate or
//     clear its alert, measured in sampled time: a pending duration, one
//     open alert (further exceedances recorded as suppressions in the
//     stream TAPPROOF_SUPPRESSIONS), an Update when the value doubles, a
//     recovery threshold below the level (hysteresis), an explicit
//     all-clear (CAP msgType Cancel) and flap detection (a device whose
//     alert keeps firing keeps one alert open). Its state lives in the
//     key-value bucket tapproof_screening (ScreeningKV); message ids are
//     deterministic, so redelivery and restarts publish nothing twice.
//   - Store keeps alerts in the JetStream stream TAPPROOF_ALERTS, subjects
//     tapproof.alerts.<utility>.<site> (site "_" for alerts about a whole
//     system). Each message carries Nats-Msg-Id = Alert.ID, so the same alert
//     published twice within DuplicateWindow is stored once. Every reader of
//     the stream decodes with Metrics.DecodeAlert, which sets aside and
//     counts what does not decode or validate.
//     What is open is state, not a window over the stream: the bucket
//     tapproof_open_alerts (OpenBucket) holds each open alert's newest
//     message, and OpenAlerts reads it.
//   - Metrics count alerts raised, screening events and messages set aside.
//   - Sign, Verify, HeaderSignature, HeaderAlertID, the Result* labels and
//     Retry are what every delivery of an alert shares: the HMAC-SHA256
//     signature a receiver checks, "sha256=" + hex(HMAC-SHA256(secret, body))
//     in X-Tapproof-Signature, and the one back-off by which JetStream
//     redelivers a delivery that failed.
//
// Delivering alerts lives in subpackages, each owning one concern:
//
//   - alerts/webhook: operator webhooks, every stored alert to each
//     configured URL from its own durable consumer.
//   - alerts/residents: residents' subscriptions (bucket
//     tapproof_subscriptions), the Notifier and its work queue
//     TAPPROOF_NOTICES and bucket tapproof_notices, and email by SMTP.
//   - alerts/notice: the text of every public notice, from versioned
//     templates with the mandatory health-effects language.
//   - alerts/cap: an alert as OASIS CAP 1.2.
//
// Webhook receivers verify X-Tapproof-Signature and deduplicate on
// X-Tapproof-Alert-Id: delivery is at least once.
//
// alerts talks to JetStream only. It imports the root package tapproof and
// nothing else of the module: not its subpackages, and not ingest, anchor,
// influx, dashboards, journal or httpapi; it talks to them in the domain
// types of package tapproof.
package alerts
