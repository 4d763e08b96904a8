package journal

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// Defaults.
const (
	// DefaultDuplicateWindow is how long JetStream remembers Nats-Msg-Id
	// values on the readings stream, absorbing sensors' network retries.
	DefaultDuplicateWindow = 10 * time.Minute
	// DefaultRejectedMaxAge is how long rejected messages are kept.
	DefaultRejectedMaxAge = 30 * 24 * time.Hour
)

// The journal's errors wrap tapproof.ErrNotFound when an entry, device or
// log does not exist, and tapproof.ErrConflict when an optimistic write
// loses: by AppendReading when the device's last journal entry is not the
// one the caller expected (another copy of the reading got there first:
// reload the head and decide again), and by PutCheckpoint when another
// checkpoint was published first.

// Journal is tapproof's JetStream state.
type Journal struct {
	js      jetstream.JetStream
	devices jetstream.KeyValue
	logs    jetstream.KeyValue
	samples jetstream.KeyValue // lab sample index; see labsamples.go
	sealKey []byte             // see seal.go; nil: sealing off

	mu         sync.Mutex
	streams    map[string]jetstream.Stream // utility -> log stream
	sealedFrom map[string]uint64           // utility -> first sealed stream sequence
}

// Open creates or updates the streams and buckets tapproof needs and returns
// a Journal using them.
func Open(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Journal, error) {
	j := &Journal{js: js, streams: map[string]jetstream.Stream{}, sealedFrom: map[string]uint64{}}
	for _, o := range opts {
		o(j)
	}
	cfgs := []jetstream.StreamConfig{{
		Name:        ReadingsStream,
		Description: "Signed readings published by sensors",
		Subjects:    []string{ReadingsSubject + ".>", LabSamplesSubject + ".>", InvalidationsSubject + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Duplicates:  DefaultDuplicateWindow,
		MaxMsgSize:  1 << 20,
	}, {
		Name:        RejectedStream,
		Description: "Messages tapproof refused, with their reason",
		Subjects:    []string{RejectedSubject + ".>"},
		Storage:     jetstream.FileStorage,
		MaxAge:      DefaultRejectedMaxAge,
		MaxBytes:    1 << 30,
	}, {
		Name:        CheckpointsStream,
		Description: "Every signed checkpoint of every log",
		Subjects:    []string{CheckpointsSubject + ".>"},
		Storage:     jetstream.FileStorage,
	}}
	for _, c := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, c); err != nil {
			return nil, fmt.Errorf("stream %s: %w", c.Name, err)
		}
	}
	var err error
	if j.devices, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: devicesBucket, Description: "Enrolled devices", Storage: jetstream.FileStorage, History: 10,
	}); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", devicesBucket, err)
	}
	if j.logs, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: logsBucket, Description: "Logs: Trillian tree and checkpoint identity per utility", Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", logsBucket, err)
	}
	if j.samples, err = js.CreateOrUpdateKeyValue(ctx, samplesConfig); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", SamplesBucket, err)
	}
	return j, nil
}

// Attach returns a Journal on the streams and buckets an Open made before,
// changing nothing: for tools that read what tapproof runs (a
// reconciliation, say), which must not rewrite its configuration.
func Attach(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Journal, error) {
	j := &Journal{js: js, streams: map[string]jetstream.Stream{}, sealedFrom: map[string]uint64{}}
	for _, o := range opts {
		o(j)
	}
	for _, name := range []string{ReadingsStream, RejectedStream, CheckpointsStream} {
		if _, err := js.Stream(ctx, name); err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	var err error
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{devicesBucket, &j.devices}, {logsBucket, &j.logs}, {SamplesBucket, &j.samples}} {
		if *b.kv, err = js.KeyValue(ctx, b.name); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", b.name, err)
		}
	}
	return j, nil
}

// JetStream returns the JetStream context the journal uses.
func (j *Journal) JetStream() jetstream.JetStream { return j.js }

// LogStreamName is the name of the journal stream of utility's log.
func LogStreamName(utility string) string { return logStreamPrefix + utility }

// readingSubject is the subject of every reading of one device. One subject
// per device, not per reading, keeps JetStream's per-subject state bounded
// by the number of devices.
func readingSubject(utility, device string) string {
	return fmt.Sprintf("%s.%s.r.%s", logSubject, utility, device)
}

// deviceSubjects matches every subject of entries about one device: its
// readings, enrollment and revocation (and, were a lab or alert class ever
// named like the device, that one's entries too, which costs no more than a
// needless retry: Head and the append's check use the same filter).
func deviceSubjects(utility, device string) string {
	return fmt.Sprintf("%s.%s.*.%s", logSubject, utility, device)
}

func enrollmentSubject(utility, device string) string {
	return fmt.Sprintf("%s.%s.e.%s", logSubject, utility, device)
}

// EnsureLogStream creates the journal stream of utility's log if needed.
func (j *Journal) EnsureLogStream(ctx context.Context, utility string) error {
	_, err := j.logStream(ctx, utility, true)
	return err
}

// logStream returns utility's journal stream, creating it if create is
// set; otherwise an error wrapping tapproof.ErrNotFound if the utility has
// no log: nothing can be appended to it until the platform creates it.
func (j *Journal) logStream(ctx context.Context, utility string, create bool) (jetstream.Stream, error) {
	j.mu.Lock()
	s, ok := j.streams[utility]
	j.mu.Unlock()
	if ok {
		return s, nil
	}
	var err error
	if create {
		cfg := jetstream.StreamConfig{
			Name:        LogStreamName(utility),
			Description: "Accepted log entries of utility " + utility + "; stream sequence - 1 = leaf index",
			Subjects:    []string{logSubject + "." + utility + ".>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			// Never discard: a stream sequence is a leaf index.
			Discard:    jetstream.DiscardNew,
			DenyDelete: true,
			DenyPurge:  true,
			// Device heads are read on every reading, the alert
			// lane's included: a direct get is answered by the
			// stream itself, not queued behind the JetStream API.
			AllowDirect: true,
		}
		// An existing stream keeps its metadata (the seal epoch); a new
		// one is sealed from its first entry.
		if old, err := j.js.Stream(ctx, cfg.Name); err == nil {
			cfg.Metadata = old.CachedInfo().Config.Metadata
		} else if j.sealKey != nil {
			cfg.Metadata = map[string]string{metaSealedFrom: "1"}
		}
		s, err = j.js.CreateOrUpdateStream(ctx, cfg)
	} else {
		s, err = j.js.Stream(ctx, LogStreamName(utility))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("log stream of %s: %w", utility, tapproof.ErrNotFound)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("log stream of %s: %w", utility, err)
	}
	from, err := j.sealEpoch(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("log stream of %s: %w", utility, err)
	}
	j.mu.Lock()
	j.streams[utility] = s
	j.sealedFrom[utility] = from
	j.mu.Unlock()
	return s, nil
}

// Head is the last reading of a device in the journal.
type Head struct {
	Seq    uint64   // the reading's per-device sequence number; 0 if none
	Digest [32]byte // SHA-256 of the envelope bytes
	// StreamSeq is the journal stream sequence (leaf index + 1) of the last
	// entry about the device (a reading, its enrollment or its revocation);
	// 0 if none. The next reading's append names it.
	StreamSeq uint64
	// Revoked reports that the device's revocation is in the journal: no
	// reading of it may be appended, whatever a registry copy says.
	Revoked bool
}

// Entry is one journal entry: a leaf of a utility's log (its index and the
// envelope bytes as received) and the identity its subject and headers
// carry. What the entry says is in the leaf alone, decoded by the consumers
// that need it (signed.LoggedReading, LoggedLabSample, LoggedInvalidation):
// one copy, the one the log proves.
type Entry struct {
	tapproof.Leaf
	Kind   Kind
	Device string // the device of a reading or enrollment
	Seq    uint64 // reading sequence number; 0 for other kinds

	// Lab and SampleID name the lab sample of a lab sample or invalidation
	// entry.
	Lab, SampleID string
	// Source is the stream sequence, in the readings stream, of the message
	// a lab sample or invalidation entry was accepted from; 0 if unknown.
	Source uint64
	// SetAside, if not empty, is why the entry is not tapproof's
	// (tapproof.SetAsideUnsealed, tapproof.SetAsideUndecodable): only
	// Leaf and Kind are set, and the log anchors
	// tapproof.SetAsideLeaf in its place.
	SetAside string
}

// Head returns the last reading of device in utility's journal, and
// whether the device is revoked. An entry on the device's subject that
// tapproof did not write (unsealed, or without a sequence number) is not a
// reading of the device: Seq and Digest are those of the last real one.
// StreamSeq is that of the last message on any of the device's subjects
// (deviceSubjects), which the next append must name: a revocation
// journaled after the caller decided makes that append fail.
func (j *Journal) Head(ctx context.Context, utility, device string) (Head, error) {
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return Head{}, err
	}
	var h Head
	last, err := s.GetLastMsgForSubject(ctx, deviceSubjects(utility, device))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return h, nil
	}
	if err != nil {
		return Head{}, fmt.Errorf("device head: %w", err)
	}
	h.StreamSeq = last.Sequence
	m, err := j.lastGood(ctx, s, readingSubject(utility, device), j.goodReading)
	if err != nil {
		return Head{}, fmt.Errorf("device head: %w", err)
	}
	if m != nil {
		h.Seq, _ = headerUint(m.Header, HeaderSeq)
		h.Digest = sha256.Sum256(m.Data)
	}
	m, err = j.lastGood(ctx, s, revocationSubject(utility, device), j.sealedMsg)
	if err != nil {
		return Head{}, fmt.Errorf("device revocation: %w", err)
	}
	h.Revoked = m != nil
	return h, nil
}

// lastGood returns the last message on subject for which good holds, or nil
// if there is none.
func (j *Journal) lastGood(ctx context.Context, s jetstream.Stream, subject string, good func(*jetstream.RawStreamMsg) bool) (*jetstream.RawStreamMsg, error) {
	m, err := s.GetLastMsgForSubject(ctx, subject)
	for err == nil && !good(m) {
		m, err = prevOnSubject(ctx, s, subject, m.Sequence)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, tapproof.ErrNotFound) {
		return nil, nil
	}
	return m, err
}

// goodReading reports whether m is a reading tapproof journaled: sealed,
// with a sequence number.
func (j *Journal) goodReading(m *jetstream.RawStreamMsg) bool {
	if !j.sealed(m.Subject, m.Sequence, m.Header, m.Data) {
		return false
	}
	_, err := headerUint(m.Header, HeaderSeq)
	return err == nil
}

// prevOnSubject returns the last message on subject before stream sequence
// before, by binary search over "first message on subject at or after".
func prevOnSubject(ctx context.Context, s jetstream.Stream, subject string, before uint64) (*jetstream.RawStreamMsg, error) {
	var found *jetstream.RawStreamMsg
	lo, hi := uint64(1), before-1
	for lo <= hi && hi > 0 {
		mid := lo + (hi-lo)/2
		m, err := s.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subject))
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, err
		}
		if err != nil || m.Sequence >= before {
			hi = mid - 1
			continue
		}
		found, lo = m, m.Sequence+1
	}
	if found == nil {
		return nil, tapproof.ErrNotFound
	}
	return found, nil
}

// Reading returns the journal entry of reading seq of device. A device's
// sequence numbers increase along its subject, so it binary-searches the
// stream: O(log n) lookups, no index to keep.
func (j *Journal) Reading(ctx context.Context, utility, device string, seq uint64) (Entry, error) {
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return Entry{}, err
	}
	m, err := search(ctx, s, readingSubject(utility, device), HeaderSeq, seq, j.sealedMsg)
	if errors.Is(err, tapproof.ErrNotFound) {
		return Entry{}, fmt.Errorf("reading %s: %w", tapproof.ReadingKey(device, seq), tapproof.ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("reading %s: %w", tapproof.ReadingKey(device, seq), err)
	}
	return entryOf(m.Subject, m.Sequence, m.Header, m.Data)
}

// search finds the message on subject whose header key holds want, where
// that value increases with the stream sequence along subject. Messages
// good refuses (in a journal: those tapproof did not write) and messages
// without the header are passed over.
func search(ctx context.Context, s jetstream.Stream, subject, key string, want uint64, good func(*jetstream.RawStreamMsg) bool) (*jetstream.RawStreamMsg, error) {
	last, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, tapproof.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	// first returns the first message at or after seq, up to hi, that is
	// good and has the header, and its value.
	first := func(seq, hi uint64) (*jetstream.RawStreamMsg, uint64, error) {
		for seq <= hi {
			m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, 0, nil
			}
			if err != nil {
				return nil, 0, err
			}
			if m.Sequence > hi {
				return nil, 0, nil
			}
			if good(m) {
				if v, err := headerUint(m.Header, key); err == nil {
					return m, v, nil
				}
			}
			seq = m.Sequence + 1
		}
		return nil, 0, nil
	}
	lo, hi := uint64(1), last.Sequence
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, v, err := first(mid, hi)
		switch {
		case err != nil:
			return nil, err
		case m == nil:
			hi = mid - 1
		case v == want:
			return m, nil
		case v < want:
			lo = m.Sequence + 1
		default:
			hi = mid - 1
		}
	}
	return nil, tapproof.ErrNotFound
}

func (j *Journal) sealedMsg(m *jetstream.RawStreamMsg) bool {
	return j.sealed(m.Subject, m.Sequence, m.Header, m.Data)
}

func anyMsg(*jetstream.RawStreamMsg) bool { return true }

func headerUint(h nats.Header, key string) (uint64, error) {
	v, err := strconv.ParseUint(h.Get(key), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("journal message: header %s: %w", key, err)
	}
	return v, nil
}

// Enrollment returns the latest enrollment entry of device.
func (j *Journal) Enrollment(ctx context.Context, utility, device string) (Entry, error) {
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return Entry{}, err
	}
	m, err := s.GetLastMsgForSubject(ctx, enrollmentSubject(utility, device))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, fmt.Errorf("enrollment of %s: %w", device, tapproof.ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("enrollment of %s: %w", device, err)
	}
	return entryOf(m.Subject, m.Sequence, m.Header, m.Data)
}

// AppendReading appends an accepted reading to its utility's journal and
// returns its leaf index. expect is the StreamSeq of the device's Head the
// caller decided on; if the device's last entry is no longer that one (a
// reading appended since, or the device's revocation), the append is
// refused with tapproof.ErrConflict.
func (j *Journal) AppendReading(ctx context.Context, r tapproof.Reading, leaf []byte, expect uint64) (uint64, error) {
	s, err := j.logStream(ctx, r.Utility, false)
	if err != nil {
		return 0, err
	}
	m := &nats.Msg{
		Subject: readingSubject(r.Utility, r.Device),
		Data:    leaf,
		Header: nats.Header{
			HeaderSeq:                               []string{strconv.FormatUint(r.Seq, 10)},
			jetstream.ExpectedLastSubjSeqHeader:     []string{strconv.FormatUint(expect, 10)},
			jetstream.ExpectedLastSubjSeqSubjHeader: []string{deviceSubjects(r.Utility, r.Device)},
		},
	}
	ack, err := j.js.PublishMsg(ctx, j.seal(m), jetstream.WithExpectStream(s.CachedInfo().Config.Name))
	if wrongLastSequence(err) {
		return 0, fmt.Errorf("append reading %s: the device's head moved: %w", r.Key(), tapproof.ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("append reading: %w", err)
	}
	return ack.Sequence - 1, nil
}

// AppendEnrollment appends a device enrollment to utility's journal and
// returns its leaf index.
func (j *Journal) AppendEnrollment(ctx context.Context, utility, device string, leaf []byte) (uint64, error) {
	s, err := j.logStream(ctx, utility, true)
	if err != nil {
		return 0, err
	}
	m := j.seal(&nats.Msg{Subject: enrollmentSubject(utility, device), Data: leaf})
	ack, err := j.js.PublishMsg(ctx, m, jetstream.WithExpectStream(s.CachedInfo().Config.Name))
	if err != nil {
		return 0, fmt.Errorf("append enrollment: %w", err)
	}
	return ack.Sequence - 1, nil
}

func revocationSubject(utility, device string) string {
	return fmt.Sprintf("%s.%s.%s.%s", logSubject, utility, KindRevocation, device)
}

// AppendRevocation appends a device's revocation record (JSON) to
// utility's journal and returns its leaf index. Appending the same record
// again within the duplicate window returns the first one's index.
func (j *Journal) AppendRevocation(ctx context.Context, utility, device string, record []byte) (uint64, error) {
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return 0, err
	}
	sum := sha256.Sum256(record)
	m := j.seal(&nats.Msg{Subject: revocationSubject(utility, device), Data: record})
	ack, err := j.js.PublishMsg(ctx, m,
		jetstream.WithExpectStream(s.CachedInfo().Config.Name), jetstream.WithMsgID(fmt.Sprintf("revocation-%x", sum[:16])))
	if err != nil {
		return 0, fmt.Errorf("append revocation: %w", err)
	}
	return ack.Sequence - 1, nil
}

// Size returns the number of entries in utility's journal.
func (j *Journal) Size(ctx context.Context, utility string) (uint64, error) {
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("journal size: %w", err)
	}
	return info.State.LastSeq, nil
}

// DecodeEntry decodes a journal message read directly from a log stream,
// given its subject, stream sequence, headers and data.
func DecodeEntry(subject string, streamSeq uint64, hdr nats.Header, data []byte) (Entry, error) {
	return entryOf(subject, streamSeq, hdr, data)
}

// entryOf decodes a journal message: its index, kind and leaf, and the
// identity its subject and headers carry. The values are in the leaf, which
// the consumers that need them decode (signed.LoggedReading and the like).
func entryOf(subject string, streamSeq uint64, hdr nats.Header, data []byte) (Entry, error) {
	tok := strings.Split(subject, ".")
	if len(tok) < 5 || streamSeq == 0 {
		return Entry{}, fmt.Errorf("journal subject %q: not a log entry", subject)
	}
	e := Entry{Leaf: tapproof.Leaf{Index: streamSeq - 1, Bytes: data}, Kind: Kind(tok[3])}
	switch e.Kind {
	case KindReading:
		e.Device = tok[4]
		var err error
		if e.Seq, err = headerUint(hdr, HeaderSeq); err != nil {
			return Entry{}, fmt.Errorf("journal entry %d: %w", e.Index, err)
		}
		return e, nil
	case KindLabSample, KindInvalidation:
		e.Lab = tok[4]
		return complianceEntryOf(e, hdr)
	default:
		e.Device = tok[4]
		return e, nil
	}
}

// EntryTime returns when the entry at index was appended to utility's
// journal.
func (j *Journal) EntryTime(ctx context.Context, utility string, index uint64) (time.Time, error) {
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return time.Time{}, err
	}
	m, err := s.GetMsg(ctx, index+1)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, fmt.Errorf("entry %d of %s: %w", index, utility, tapproof.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("entry %d of %s: %w", index, utility, err)
	}
	return m.Time, nil
}

// Pending returns how many readings wait in the readings stream for
// ingest's durable consumer.
func (j *Journal) Pending(ctx context.Context, durable string) (uint64, error) {
	p, err := j.IngestProgress(ctx, durable)
	return p.Pending, err
}

// IngestProgress returns how many readings wait for ingest's durable
// consumer and how far it got.
func (j *Journal) IngestProgress(ctx context.Context, durable string) (Progress, error) {
	p, err := consumerProgress(ctx, j.js, ReadingsStream, durable)
	if err != nil {
		return p, fmt.Errorf("ingest consumer: %w", err)
	}
	return p, nil
}

// Progress is a durable consumer's backlog and position.
type Progress struct {
	// Pending counts messages not yet delivered or not yet acknowledged.
	Pending uint64
	// Done is the consumer's acknowledgement floor, a stream sequence: it
	// moves only when the consumer finishes something.
	Done uint64
}

func consumerProgress(ctx context.Context, js jetstream.JetStream, stream, durable string) (Progress, error) {
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return Progress{}, fmt.Errorf("consumer %s: %w", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return Progress{}, fmt.Errorf("consumer %s: %w", durable, err)
	}
	return Progress{Pending: info.NumPending + uint64(info.NumAckPending), Done: info.AckFloor.Stream}, nil
}

// Waiting returns the utilities that have messages in the readings stream,
// sorted: the readings, lab samples and invalidations not yet decided.
func (j *Journal) Waiting(ctx context.Context) ([]string, error) {
	s, err := j.js.Stream(ctx, ReadingsStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", ReadingsStream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", ReadingsStream, err)
	}
	seen := map[string]bool{}
	for subject := range info.State.Subjects {
		// tapproof.<kind>.<utility>.…
		if t := strings.SplitN(subject, ".", 4); len(t) == 4 {
			seen[t[2]] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// wrongLastSequence reports whether JetStream refused a publish because
// its Nats-Expected-Last-* header no longer held: an optimistic write that
// lost. A stream on one server answers with code 10071, a replicated one
// with 10164.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
