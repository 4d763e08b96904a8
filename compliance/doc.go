// Package compliance computes a water system's lead and copper compliance
// for a monitoring period from the lab samples and invalidations in its
// verifiable log: the 90th percentile of 40 CFR 141.80(c)(3)
// (https://www.ecfr.gov/current/title-40/part-141/section-141.80), whether it
// exceeds the action level of the rule in force, the samples that were
// excluded and why, and the individual samples above the action level. A
// collection event with more samples than the rule expects is decided over
// every reduction of it (P90Range): the period is exceeded, not exceeded or
// undetermined (Determination), never left uncomputed; and what an
// exceedance obliges depends on the analyte (Obligations: the Tier 1 notice
// for lead only).
//
// The computation is a pure function of the log's entries and a set of
// public keys (FromLeaves), so a regulator holding the leaves (fetched from
// the log and checked against a checkpoint it trusts) and the laboratories'
// and state reviewers' keys gets the same figures as the utility. Excluding a
// sample is never a deletion: only an invalidation entry, signed by a state
// reviewer's key and appended to the log after the sample, removes it from
// the computation, and the report lists it with its reason. An invalidation
// that does not verify is listed too, and the sample still counts.
//
// compliance imports the root package and signed only. It must not import
// ingest, journal, anchor, alerts, influx, httpapi or dashboards; those
// hand it leaves and keys. TestImportGraph in layout_test.go enforces this.
package compliance
