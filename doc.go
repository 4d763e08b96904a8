// Package tapproof holds the domain of the tapproof water-quality platform:
// readings, devices, analytes and units, threshold rules and alerts, and the
// pure validation that decides whether a reading is acceptable.
//
// It imports only the standard library. Everything that talks to an external
// system lives in a subpackage: ingest (NATS JetStream consumer), journal (the
// JetStream streams and key-value buckets), anchor (the Trillian log,
// checkpoints and proofs), influx (InfluxDB), alerts (evaluation and
// notifiers), httpapi (the HTTP API) and cmd/tapproof (wiring).
package tapproof
