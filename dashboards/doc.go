// Package dashboards defines tapproof's Grafana dashboards in Go, with
// github.com/grafana/grafana-foundation-sdk/go, and renders them as the
// dashboard JSON that Grafana's file provisioning loads.
//
// It owns three dashboards:
//
//   - water quality overview (UIDOverview): lead by site against the lead
//     action level in force, the NIRS surrogate channels (turbidity, TOC,
//     iron) by calibration model, and the alerts raised;
//   - compliance (UIDCompliance): certified lab samples, the 90th percentile
//     per monitoring period against the action level, and the exclusions;
//   - operations (UIDOperations): ingest rate, rejections by reason, consumer
//     lag, publish-to-proof latency, log size and checkpoint age, webhook
//     failures and sink errors.
//
// Readings are queried with InfluxQL, which InfluxDB 1.8, 2.x (through its
// DBRP mappings), Cloud and 3.x all speak; metrics with PromQL. The SDK has
// no InfluxDB query type, so this package adds one: InfluxQLQuery and its
// builder, NewInfluxQL. Queries name the measurement, tags and fields of the
// point schema through the constants of package influx, so the schema has
// one home. Every dashboard has the template variables utility and site.
//
// The generated JSON lives in dashboards/json and is under version control.
// Regenerate it with
//
//	go generate ./dashboards
//
// Tests fail when the code and the committed JSON differ, run every InfluxQL
// query against a real InfluxDB with seeded readings, and parse every PromQL
// expression and check that it names only metrics tapproof exports.
//
// The data source UIDs, DatasourceInfluxDB and DatasourcePrometheus, are the
// ones deploy/grafana/provisioning/datasources declares.
//
// dashboards depends on the domain package (for the action level rules) and
// on influx (for the point schema). It must not import ingest, anchor, alerts,
// journal or httpapi: dashboards describe what those packages export, they do
// not run them.
package dashboards

//go:generate go run ./gen -out json
