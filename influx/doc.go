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
//	timestamp    sampled_at, nanosecond precision
//
// For example, in InfluxQL:
//
//	SELECT max("value") FROM "reading" WHERE "utility" = 'springfield' AND "analyte" = 'lead' AND $timeFilter GROUP BY time($__interval), "site"
//
// Writes are idempotent: a point is identified by its series (measurement
// and tag set) and timestamp, both derived from the reading alone, so writing
// the same accepted reading again overwrites the point with identical fields.
// The flip side: two different readings from one device with the same
// analyte, method, unit and sampled_at are one point in InfluxDB (the later
// write wins); the log keeps both.
//
// influx must not import ingest, anchor, alerts, dashboards, journal or
// httpapi; it talks to them only in the domain types of package tapproof.
package influx
