// Package tapproof holds the domain of the tapproof water-quality platform:
// readings, devices, lab samples, analytes and units, threshold rules and
// the RuleBook that every decision against an action level goes through,
// alerts and notice records, the log's leaves, the errors every package
// wraps, and the pure validation that decides whether a reading is
// acceptable.
//
// It imports only the standard library. Everything that talks to an external
// system lives in a subpackage: signed (DSSE envelopes), broker (who may
// connect to NATS), ingest (the intake and the readings consumer), journal
// (the JetStream streams and key-value buckets), anchor (the Trillian log,
// checkpoints and proofs), influx (InfluxDB), alerts and its subpackages
// (evaluation, screening, the alert store, webhooks, residents' notices,
// CAP), compliance (the 90th percentile), httpapi (the HTTP API and its
// client), public (the residents' pages), platform (the server, which
// composes them) and cmd/tapproof (flags and commands).
package tapproof
