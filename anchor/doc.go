// Package anchor owns tapproof's verifiable log: the Trillian client that
// appends accepted entries to one PREORDERED_LOG tree per water utility, the
// checkpoints the anchor signs over those trees, the proofs and offline
// bundles handed to regulators, and the verification of those bundles.
//
// tapproof is the sequencer. Entries arrive from the journal in index order
// and are appended with AddSequencedLeaves at the index the journal gave them,
// so an append is idempotent: re-adding the same leaf at the same index (after
// a crash, say) succeeds, while a different leaf at an index already used is
// refused with a *ConflictError. A leaf's value is the exact envelope bytes; its
// Trillian identity hash is SHA-256(8-byte big-endian index || leaf).
//
// Trillian signs nothing. The anchor signs checkpoints itself, as signed notes
// in the C2SP tlog-checkpoint format (https://c2sp.org/tlog-checkpoint,
// https://c2sp.org/signed-note), and only after two checks. Trillian is
// storage, not authority: anyone who reaches its gRPC port can append to a
// tree. So the new root must be consistent with the last checkpoint signed
// (otherwise an *InconsistencyError), and it must be the root of the leaves
// tapproof appended, recomputed with a compact range from the leaf hashes
// Append records and, for leaves appended before a restart, the journal
// (otherwise a *ForeignLeafError, naming the first leaf that differs). Both
// errors keep the evidence and stop the checkpointer. The Merkle tree, its
// leaf hashes and its inclusion and consistency proofs are those of RFC 6962
// (https://www.rfc-editor.org/rfc/rfc6962, section 2.1). A Bundle carries a
// leaf and a C2SP tlog-proof (https://c2sp.org/tlog-proof), which VerifyBundle
// checks offline, trusting nothing but the log's public key and, optionally,
// the device's.
//
// Of tapproof's own packages, anchor imports only the root package and signed.
// It must not import ingest, journal, alerts, dashboards, influx, httpapi or
// cmd: those talk to anchor through the domain types and the small interfaces
// declared here (CheckpointStore). TestImportGraph in layout_test.go
// enforces this.
package anchor
