// Package platform is the tapproof server as an application: it composes
// the packages that each own one concern into the running platform, and
// owns what belongs to none of them.
//
//   - Config (config.go) is the one place a server's defaults live; Run
//     (run.go) starts everything it describes and stops it in order.
//   - The per-utility logs (platform.go): the journal stream, the Trillian
//     tree, the log's signing key and verifier, enrollment (a device's
//     self-signed record appended, then registered) and bundle assembly.
//   - The sinks of each log (sinks.go): the anchor into Trillian, the
//     InfluxDB writer, the exceedance watch and the checkpointer, each a
//     journal cursor that sets aside what it cannot decode; they run on
//     the replica holding the log's lease, and the logs spread over the
//     replicas (logleases.go).
//   - Reading a log back for those who check it (leaves.go): from the
//     journal what a signed checkpoint covers, from Trillian the rest.
//   - How many copies JetStream keeps, checked against the NATS cluster
//     (replicas.go).
//   - The exceedance watch (exceedance.go) recomputes the periods a lab
//     sample or invalidation touches and raises the system alert.
//   - Reports (reports.go) serve /v1/compliance from the log's entries.
//   - The broker's directory of parties and revocation (broker.go), the
//     residents' site directory (sites.go), and readiness (stall.go).
//
// cmd/tapproof turns flags and environment variables into a Config; tests
// fill one directly. platform may import every package of tapproof except
// cmd; none of them imports platform.
package platform
