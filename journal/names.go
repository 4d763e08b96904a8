package journal

// The names the journal gives in JetStream: its streams and buckets, the
// subjects entries arrive and are journaled on, the kinds of entry and the
// headers it sets. Devices, labs and operators see these names; changing
// one is changing the wire format.

// Subjects lab samples and invalidations arrive on, in the readings stream.
const (
	// LabSamplesSubject prefixes the subjects certified labs publish
	// signed sample results on: LabSamplesSubject.<utility>.<lab>.
	LabSamplesSubject = "tapproof.labsamples"
	// InvalidationsSubject prefixes the subjects state reviewers publish
	// signed invalidations on: InvalidationsSubject.<utility>.<reviewer>.
	InvalidationsSubject = "tapproof.invalidations"
)

// Stream and bucket names.
const (
	ReadingsStream    = "TAPPROOF_READINGS"
	RejectedStream    = "TAPPROOF_REJECTED"
	CheckpointsStream = "TAPPROOF_CHECKPOINTS"
	logStreamPrefix   = "TAPPROOF_LOG_"
	devicesBucket     = "tapproof_devices"
	logsBucket        = "tapproof_logs"
)

// Subject prefixes.
const (
	ReadingsSubject    = "tapproof.readings"
	RejectedSubject    = "tapproof.rejected"
	CheckpointsSubject = "tapproof.checkpoints"
	logSubject         = "tapproof.log"
)

// Header names set on journal messages.
const (
	// HeaderReason and HeaderDetail carry a rejection's reason and detail.
	HeaderReason = "Tapproof-Reason"
	HeaderDetail = "Tapproof-Detail"
	// HeaderSubject carries the subject a rejected message arrived on.
	HeaderSubject = "Tapproof-Subject"
	// HeaderSeq carries a journaled reading's sequence number, and
	// HeaderSize a checkpoint's tree size; both increase along their
	// subject, which lets Reading and Checkpoint binary-search for them.
	HeaderSeq  = "Tapproof-Seq"
	HeaderSize = "Tapproof-Size"
)

// Kind is the kind of a journal entry, the fourth token of its subject.
type Kind string

// Entry kinds.
const (
	KindReading      Kind = "r" // tapproof.log.<utility>.r.<device>
	KindEnrollment   Kind = "e" // tapproof.log.<utility>.e.<device>
	KindLabSample    Kind = "s" // tapproof.log.<utility>.s.<lab>
	KindInvalidation Kind = "i" // tapproof.log.<utility>.i.<lab of the sample>
	KindNotice       Kind = "n" // tapproof.log.<utility>.n.notice
	KindRevocation   Kind = "x" // tapproof.log.<utility>.x.<device>
)

// Header names set on lab sample and invalidation entries.
const (
	// HeaderSample carries the lab's sample id of a lab sample entry, or of
	// the sample an invalidation names.
	HeaderSample = "Tapproof-Sample"
	// HeaderSource carries the readings-stream sequence of the message an
	// entry was accepted from, so that a redelivery of that same message
	// after a crash is recognised as itself, not as a resubmission.
	HeaderSource = "Tapproof-Source"
)
