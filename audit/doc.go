// Package audit compares what InfluxDB holds with what a utility's
// verifiable log says it should hold, so that a point deleted, changed or
// added behind tapproof's back is named, not just charted.
//
// InfluxDB is the view the dashboards chart; the log is the record. Nothing
// stops someone with write access to InfluxDB from deleting the two lab
// samples above the action level with one DELETE, and the compliance
// dashboard would then show a passing 90th percentile. Run reads the log
// back against a signed checkpoint (anchor.ReadBack: every leaf the
// checkpoint covers, none left out, none altered), computes for each
// reading and lab sample leaf the point tapproof writes for it
// (influx.PointValues, the schema Write uses; a lab sample is the reading
// tapproof.LabSample.Reading returns, method "lab", seq its leaf index), and
// compares them with every point of measurement reading and tag utility
// that InfluxDB holds. Each discrepancy is a Finding:
//
//   - Missing: a leaf's point is not in InfluxDB;
//   - Changed: it is there with another value, time, tag, sequence number,
//     leaf index or detection limit, or with fields tapproof does not write;
//   - WithoutLeaf: a point no leaf accounts for, such as a fake sample, or
//     a second point of a reading whose own point is there.
//
// Points are matched to leaves by device and sequence number, unique per
// reading, and failing that by the leaf index they carry. A point that
// matches no leaf but carries a leaf index at or beyond the checkpoint's
// size is newer than the checkpoint, not a finding: it is counted, and the
// next audit at a larger checkpoint checks it.
//
// What an audit shows is only as good as the checkpoint: audit at one a
// regulator's monitor has verified, or the server's latest. A leaf the
// checkpoint covers whose point InfluxDB's writer has not stored yet (the
// writer lagging behind the log) is reported missing until it is stored.
//
// The audit only reads: its InfluxDB client (Influx) issues SELECT
// statements and nothing else, and should be given credentials that can do
// nothing else. Source and Store are interfaces, so that the leaves may come
// from the tapproof API (httpapi.Client.Log) or from the log directly, and
// InfluxDB from anything that lists points.
//
// Of tapproof's own packages, audit imports only the root package, signed
// (to decode leaves), anchor (to read them back) and influx (the point
// schema).
package audit
