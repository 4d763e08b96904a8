// Package journal owns tapproof's record in NATS JetStream: the embedded
// server, the streams readings travel through, the per-utility journals,
// and the key-value buckets that hold the device registry, the logs'
// identities and the lab sample index. (The alert streams and the
// residents' buckets belong to package alerts and its subpackages; the
// broker's accounts to package broker.)
//
// The central idea is the per-utility log journal, stream TAPPROOF_LOG_<utility>.
// Ingest appends each accepted entry to it; the JetStream stream sequence of
// that message, minus one, is the entry's index in the utility's Trillian log.
// Because a reading is appended with the header
// Nats-Expected-Last-Subject-Sequence naming the last entry on the device's
// subjects (tapproof.log.<utility>.*.<device>), two copies of the same
// reading can never both be appended, even when a crash causes a
// redelivery, and no reading decided before its device's revocation can be
// appended after it: JetStream itself arbitrates. The anchor and the InfluxDB sink
// each drain the journal with their own durable consumer and are idempotent,
// so a crash anywhere loses nothing and duplicates nothing.
//
// Subjects:
//
//	tapproof.readings.<utility>.<site>.<device>   signed readings from sensors (stream TAPPROOF_READINGS)
//	tapproof.labsamples.<utility>.<lab>            signed lab sample results (same stream)
//	tapproof.invalidations.<utility>.<reviewer>    signed invalidations by state reviewers (same stream)
//	tapproof.rejected.<reason>                     rejected messages with their reason (stream TAPPROOF_REJECTED)
//	tapproof.log.<utility>.r.<device>              accepted readings, header Tapproof-Seq (stream TAPPROOF_LOG_<utility>)
//	tapproof.log.<utility>.e.<device>              device enrollments (same stream)
//	tapproof.log.<utility>.n.<alert class>         records of notices sent to the public (same stream)
//	tapproof.log.<utility>.x.<device>              device revocations (same stream)
//	tapproof.log.<utility>.s.<lab>                 accepted lab samples, header Tapproof-Sample (same stream)
//	tapproof.log.<utility>.i.<lab>                 invalidations of that lab's samples (same stream)
//	tapproof.checkpoints.<utility>                 signed checkpoints, header Tapproof-Size (stream TAPPROOF_CHECKPOINTS)
//	tapproof.checkpoints.<utility>.witnessed       those of them cosigned as the witness policy asks, with the cosignatures
//
// An entry holds the leaf as received and nothing decoded from it: its
// identity (kind, device and sequence number, or lab and sample id) is in
// its subject and headers, and what it says is in the leaf alone, which the
// consumers that need it decode (signed.LoggedReading and the like). The
// log proves exactly that one copy.
//
// Subjects are per device, lab or log, never per message, so JetStream's
// per-subject state stays bounded; a reading or checkpoint is found by a
// binary search over its subject on the increasing header value. Lab sample
// ids are not ordered, so a lab sample is found through the key-value index
// tapproof_samples (<utility>.<lab>.<sample id> → leaf index), which is
// written after the append and repaired from the lab's subject after a
// crash; the append itself is optimistic on the lab's subject, like a
// reading's on its device's (see AppendLabSample).
//
// One file per thing the journal stores: names.go (every stream, bucket,
// subject, entry kind and header name), journal.go (the journals and
// readings), labsamples.go (lab samples, invalidations and their index),
// notice.go, checkpoints.go, registry.go (devices and logs), seal.go,
// cursor.go and consumer.go (reading a journal back as it grows),
// leaves.go (reading a run of it as the log's leaves), lease.go (which
// replica leads) and server.go (the embedded server).
//
// journal imports only the root package.
package journal
