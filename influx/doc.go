// Package influx is tapproof's InfluxDB sink: it writes accepted readings as
// points so that Grafana dashboards can chart them.
//
// It writes through the InfluxDB v2 write API (/api/v2/write) with
// influxdb-client-go/v2's blocking writer, which InfluxDB 1.8 (database
// "db" or "db/rp", token "user:password" or empty), InfluxDB 2.x and Cloud
// (bucket and API token) and InfluxDB 3.x all accept, so the same code serves
// every version. Dashboards should query with InfluxQL, which all three
// versions speak (InfluxDB 3 dropped Flux).
//
// # Point schema
//
// One point per accepted reading:
//
//	measurement  reading
//	tags         utility, site, device, analyte, method, unit
//	             model            only for method NIRS (the calibration model version)
//	fields       value            float, in the analyte's canonical unit (lead ug/L, copper mg/L, ...)
//	             seq              integer, the device's sequence number
//	             leaf_index       integer, the reading's leaf index in its utility's log
//	             detection_limit  float, canonical unit, only when the reading states one
//	timestamp    sampled_at to the millisecond, plus seq mod 1,000,000 nanoseconds
//
// For example, in InfluxQL:
//
//	SELECT max("value") FROM "reading" WHERE "utility" = 'springfield' AND "analyte" = 'lead' AND $timeFilter GROUP BY time($__interval), "site"
//
// Writes are idempotent: a point is identified by its series (measurement
// and tag set) and timestamp, both derived from the reading alone, so writing
// the same accepted reading again overwrites the point with identical fields.
// InfluxDB would also merge two different readings of one series with the
// same timestamp, losing one; as InfluxDB's documentation advises, the
// timestamp is therefore offset by the reading's sequence number in the
// sub-millisecond digits, which sensors do not use, so every accepted
// reading is its own point.
//
// influx must not import ingest, anchor, alerts, dashboards, journal or
// httpapi; it talks to them only in the domain types of package tapproof.
package influx
