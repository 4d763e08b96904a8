// Package monitor is the regulator's monitor of tapproof logs: it runs on
// the regulator's own machine, follows each utility's verifiable log through
// the tapproof API, and trusts nothing the server says that it can check.
//
// For each log it keeps, in its state directory, the last checkpoint it
// verified together with what it needs to go on from there without reading
// the log again: the compact-range frontier of the tree at that size
// (https://github.com/transparency-dev/merkle, package compact) and the
// device keys the log's enrollments and revocations established. On each
// poll it fetches the latest checkpoint, verifies the log's signature with
// the key given out of band and, with a witness policy, the witnesses'
// cosignatures; it compares the checkpoint with the stored one (smaller is
// a rollback, the same size with another root a fork, larger needs a
// consistency proof from the server that verifies); it then reads every
// new leaf, appends its RFC 6962 leaf hash to the stored frontier and
// requires the result to be the new checkpoint's root, and checks each
// leaf: a reading must be signed by the key of its device as enrolled
// earlier in the same log and not revoked before it, and be of a method and
// analyte its enrolled kind permits (tapproof.Reading.PermittedFor); an
// enrollment must be self-signed by the key it enrolls, and not of kind
// lab; lab samples and invalidations must be signed by the labs' and state
// reviewers' keys given; records must be well formed, and a set-aside
// record, which stands where the journal held an entry tapproof did not
// write or could not decode, is itself a finding. Only when every check of the new leaves is done does it replace
// the stored state, atomically, so that a crash at any moment leaves the
// old state or the new one. A fork, a rollback or leaves that do not hash
// to the checkpoint leave the state where it was, and are reported again
// on every poll.
//
// Each Finding is saved as evidence a regulator can hand on, in
// STATE/findings/<UTC time>-<utility>-<kind>/: the stored and the new
// checkpoint, the consistency proof, the offending leaf and finding.json.
// It is also counted on the Metrics, logged, and POSTed to a webhook,
// signed like the platform's own webhooks (X-Tapproof-Signature).
//
// Signatures are verified in parallel by GOMAXPROCS workers while leaf
// hashes are appended in order, so that a first pass over a log of a
// million readings takes well under a minute on two cores
// (BenchmarkFirstPass).
//
// Of tapproof's own packages, monitor imports the root package, signed,
// anchor (checkpoints), witness (policies), compliance (the labs' and
// reviewers' keys) and alerts (the signature webhooks share). It reaches the server through the API interface, which
// httpapi.Client implements. TestImportGraph in layout_test.go enforces
// this.
package monitor
