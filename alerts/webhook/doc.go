// Package webhook delivers every alert stored in the JetStream stream
// TAPPROOF_ALERTS (alerts.Store) to operators' webhooks. Each configured URL
// has its own durable pull consumer on the stream, tapproof-webhook-<ID>,
// so a slow or failing receiver holds back nobody else and a restart
// resumes where it stopped; JetStream redelivery, with the back-off of
// alerts.Retry, is the retry mechanism.
//
// Each delivery is an HTTP POST of the alert as JSON, signed with
// HMAC-SHA256 in X-Tapproof-Signature (alerts.Sign) and naming the alert in
// X-Tapproof-Alert-Id. Receivers check the signature (alerts.Verify) and
// deduplicate on the alert id: delivery is at least once. A webhook's URL
// and secret never appear in logs or errors.
//
// webhook talks to JetStream and to the configured HTTP endpoints. It
// imports the root package tapproof and alerts only: never another alerts
// subpackage, nor ingest, anchor, influx, journal, httpapi or public.
package webhook
