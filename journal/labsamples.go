package journal

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// SamplesBucket is the key-value bucket that indexes lab samples:
// <utility>.<lab>.<sample id> → leaf index. See AppendLabSample.
const SamplesBucket = "tapproof_samples"

// ErrExists is returned by AppendLabSample when the journal already holds a
// sample of that lab with that sample id.
var ErrExists = errors.New("journal: sample already in the journal")

var samplesConfig = jetstream.KeyValueConfig{
	Bucket:      SamplesBucket,
	Description: "Lab sample index: <utility>.<lab>.<sample id> -> leaf index; <utility>.<lab> -> stream sequence indexed through",
	Storage:     jetstream.FileStorage,
	History:     1,
}

// AppendOption configures AppendLabSample and AppendInvalidation.
type AppendOption func(*appendOptions)

type appendOptions struct{ source uint64 }

// FromMessage records seq, the readings-stream sequence of the message the
// entry is accepted from, in the entry's Source.
func FromMessage(seq uint64) AppendOption {
	return func(o *appendOptions) { o.source = seq }
}

func labSampleSubject(utility, lab string) string {
	return fmt.Sprintf("%s.%s.%s.%s", logSubject, utility, KindLabSample, lab)
}

func invalidationSubject(utility, lab string) string {
	return fmt.Sprintf("%s.%s.%s.%s", logSubject, utility, KindInvalidation, lab)
}

// plainKeyToken is what a sample id may be to be used verbatim as a key token.
var plainKeyToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// sampleKeyToken is sample id as one key-value token: verbatim if it is
// letters, digits, '-' and '_' (all tapproof.LabSample.Normalize admits),
// else "=" and its unpadded base64url, which no verbatim id starts with.
func sampleKeyToken(id string) string {
	if plainKeyToken.MatchString(id) {
		return id
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func sampleKey(utility, lab, sampleID string) string {
	return utility + "." + lab + "." + sampleKeyToken(sampleID)
}

// watermarkKey holds the stream sequence through which every lab sample
// entry of lab is indexed: a lower bound, never ahead of the truth.
func watermarkKey(utility, lab string) string { return utility + "." + lab }

func checkLabIDs(utility, lab, sampleID string) error {
	if !tapproof.ValidID(utility) || !tapproof.ValidID(lab) || sampleID == "" {
		return fmt.Errorf("lab sample %q of %q in %q: invalid utility, lab or sample id", sampleID, lab, utility)
	}
	return nil
}

// LabSample returns the journal entry of sample sampleID of lab in
// utility's log, or an error wrapping tapproof.ErrNotFound (also if the
// utility has no log).
//
// It looks the sample up in SamplesBucket. On a miss it first indexes the
// lab's entries the index may lack (see AppendLabSample) and looks again,
// so a sample appended by a run that crashed before indexing it is found.
func (j *Journal) LabSample(ctx context.Context, utility, lab, sampleID string) (Entry, error) {
	if err := checkLabIDs(utility, lab, sampleID); err != nil {
		return Entry{}, err
	}
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return Entry{}, err
	}
	e, ok, err := j.indexedSample(ctx, s, utility, lab, sampleID)
	if err != nil || ok {
		return e, err
	}
	if _, err := j.indexLab(ctx, s, utility, lab); err != nil {
		return Entry{}, err
	}
	e, ok, err = j.indexedSample(ctx, s, utility, lab, sampleID)
	if err != nil {
		return e, err
	}
	if !ok {
		return Entry{}, fmt.Errorf("lab sample %s: %w", tapproof.LabSampleKey(lab, sampleID), tapproof.ErrNotFound)
	}
	return e, nil
}

// indexedSample returns the entry the index holds for the sample.
func (j *Journal) indexedSample(ctx context.Context, s jetstream.Stream, utility, lab, sampleID string) (Entry, bool, error) {
	key := tapproof.LabSampleKey(lab, sampleID)
	kve, err := j.samples.Get(ctx, sampleKey(utility, lab, sampleID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("lab sample %s: index: %w", key, err)
	}
	idx, err := strconv.ParseUint(string(kve.Value()), 10, 64)
	if err != nil {
		return Entry{}, false, fmt.Errorf("lab sample %s: index value %q: %w", key, kve.Value(), err)
	}
	m, err := s.GetMsg(ctx, idx+1)
	if err != nil {
		return Entry{}, false, fmt.Errorf("lab sample %s: leaf %d: %w", key, idx, err)
	}
	if m.Subject != labSampleSubject(utility, lab) || m.Header.Get(HeaderSample) != sampleID {
		return Entry{}, false, fmt.Errorf("lab sample %s: the index names leaf %d, which is not that sample", key, idx)
	}
	if !j.sealed(m.Subject, m.Sequence, m.Header, m.Data) {
		// Not tapproof's entry (written with broker credentials): it is
		// set aside in the log and holds no sample id. index replaces it
		// when the real sample is appended.
		return Entry{}, false, nil
	}
	e, err := entryOf(m.Subject, m.Sequence, m.Header, m.Data)
	return e, err == nil, err
}

// indexLab indexes every lab sample entry of lab after the watermark and
// advances the watermark. It returns the stream sequence of the lab's last
// sample entry (0 if none), through which the index is then complete.
func (j *Journal) indexLab(ctx context.Context, s jetstream.Stream, utility, lab string) (uint64, error) {
	subject := labSampleSubject(utility, lab)
	lastMsg, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lab %s: last sample: %w", lab, err)
	}
	last := lastMsg.Sequence
	var mark uint64
	kve, err := j.samples.Get(ctx, watermarkKey(utility, lab))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return 0, fmt.Errorf("lab %s: index watermark: %w", lab, err)
	default:
		mark, _ = strconv.ParseUint(string(kve.Value()), 10, 64) // garbage: index from the start
	}
	if mark >= last {
		return last, nil
	}
	for seq := mark + 1; seq <= last; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("lab %s: sample at %d: %w", lab, seq, err)
		}
		if m.Sequence > last {
			break
		}
		// An unsealed entry is set aside in the log: it claims no id.
		if j.sealed(m.Subject, m.Sequence, m.Header, m.Data) {
			if err := j.index(ctx, utility, lab, m.Header.Get(HeaderSample), m.Sequence-1); err != nil {
				return 0, err
			}
		}
		seq = m.Sequence + 1
	}
	if _, err := j.samples.Put(ctx, watermarkKey(utility, lab), []byte(strconv.FormatUint(last, 10))); err != nil {
		return 0, fmt.Errorf("lab %s: index watermark: %w", lab, err)
	}
	return last, nil
}

// index records that sample sampleID of lab is at leaf idx, a sealed entry,
// with an optimistic create: the first index of a sample is never
// overwritten by another sealed entry. An index naming an entry that is
// not a sealed sample of that id (written into the bucket, or naming an
// unsealed entry, with broker credentials) is replaced.
func (j *Journal) index(ctx context.Context, utility, lab, sampleID string, idx uint64) error {
	if sampleID == "" {
		return fmt.Errorf("lab %s: leaf %d has no %s header", lab, idx, HeaderSample)
	}
	key := sampleKey(utility, lab, sampleID)
	val := []byte(strconv.FormatUint(idx, 10))
	_, err := j.samples.Create(ctx, key, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Already indexed, by this leaf (a repeated repair) or by an
		// earlier one: AppendLabSample's optimistic append makes a second
		// copy impossible, and should one exist the first stays indexed
		// while a recomputation from the log reports both. Unless what
		// is indexed is not that sample's sealed entry.
		kve, gerr := j.samples.Get(ctx, key)
		if gerr != nil {
			return fmt.Errorf("lab sample %s: index: %w", tapproof.LabSampleKey(lab, sampleID), gerr)
		}
		if j.indexesSealed(ctx, utility, lab, sampleID, kve.Value()) {
			return nil
		}
		_, err = j.samples.Update(ctx, key, val, kve.Revision())
	}
	if err != nil {
		return fmt.Errorf("lab sample %s: index: %w", tapproof.LabSampleKey(lab, sampleID), err)
	}
	return nil
}

// indexesSealed reports whether val, an index value, names the sealed
// entry of sample sampleID of lab.
func (j *Journal) indexesSealed(ctx context.Context, utility, lab, sampleID string, val []byte) bool {
	idx, err := strconv.ParseUint(string(val), 10, 64)
	if err != nil {
		return false
	}
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return false
	}
	m, err := s.GetMsg(ctx, idx+1)
	return err == nil && m.Subject == labSampleSubject(utility, lab) && m.Header.Get(HeaderSample) == sampleID &&
		j.sealed(m.Subject, m.Sequence, m.Header, m.Data)
}

// AppendLabSample appends a lab sample to its utility's journal, on the
// lab's subject tapproof.log.<utility>.s.<lab>, and returns its leaf index.
// s should be normalised; leaf is the envelope as received. If the journal
// already holds a sample of s's lab with s's sample id, it returns that
// entry's index and an error wrapping ErrExists.
//
// A lab's sample ids are not ordered, so unlike a reading a sample cannot
// be found by a binary search over its subject; SamplesBucket indexes them.
// The append is optimistic: the index is completed up to the lab's last
// sample entry, the sample looked up, and the entry published with
// Nats-Expected-Last-Subject-Sequence set to that last entry. Another
// sample of the lab appended meanwhile makes JetStream refuse it, and it is
// decided again; JetStream itself, not the index, arbitrates, so two copies
// of a sample never both enter the log, even from two replicas.
//
// The index is written after the append (KeyValue.Create, so a sample's
// first index is never replaced). A crash between the two leaves the entry
// unindexed; the watermark key <utility>.<lab> marks how far the lab's
// subject is known to be indexed, and LabSample and AppendLabSample index
// the entries after it before trusting a miss. So the crash window costs a
// short scan on the next lookup, never a duplicate. A failure to write the
// index after a successful append is therefore not an error.
func (j *Journal) AppendLabSample(ctx context.Context, s tapproof.LabSample, leaf []byte, opts ...AppendOption) (uint64, error) {
	if err := checkLabIDs(s.Utility, s.Lab, s.SampleID); err != nil {
		return 0, err
	}
	var o appendOptions
	for _, opt := range opts {
		opt(&o)
	}
	st, err := j.logStream(ctx, s.Utility, false)
	if err != nil {
		return 0, err
	}
	// Each lost race means another append of the lab made progress; back off
	// a little, at random, so that many writers do not keep colliding.
	for attempt := range 100 {
		if attempt > 0 {
			sleep(ctx, time.Duration(rand.Int64N(int64(attempt)*int64(time.Millisecond))))
		}
		last, err := j.indexLab(ctx, st, s.Utility, s.Lab)
		if err != nil {
			return 0, err
		}
		e, ok, err := j.indexedSample(ctx, st, s.Utility, s.Lab, s.SampleID)
		if err != nil {
			return 0, err
		}
		if ok {
			return e.Index, fmt.Errorf("lab sample %s at leaf %d: %w", s.Key(), e.Index, ErrExists)
		}
		m := &nats.Msg{
			Subject: labSampleSubject(s.Utility, s.Lab),
			Data:    leaf,
			Header: nats.Header{
				HeaderSample:                        []string{s.SampleID},
				jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(last, 10)},
			},
		}
		if o.source != 0 {
			m.Header.Set(HeaderSource, strconv.FormatUint(o.source, 10))
		}
		ack, err := j.js.PublishMsg(ctx, j.seal(m), jetstream.WithExpectStream(st.CachedInfo().Config.Name))
		if wrongLastSequence(err) {
			continue // another sample of the lab got there first
		}
		if err != nil {
			return 0, fmt.Errorf("append lab sample: %w", err)
		}
		idx := ack.Sequence - 1
		if j.index(ctx, s.Utility, s.Lab, s.SampleID, idx) == nil {
			// Everything up to last was indexed, and this is the lab's next
			// entry. Should either write fail, the next lookup repairs it.
			_, _ = j.samples.Put(ctx, watermarkKey(s.Utility, s.Lab), []byte(strconv.FormatUint(ack.Sequence, 10)))
		}
		return idx, nil
	}
	return 0, fmt.Errorf("append lab sample %s: %w", s.Key(), tapproof.ErrConflict)
}

// AppendInvalidation appends a state reviewer's invalidation to its
// utility's journal, on the subject of the invalidated sample's lab,
// tapproof.log.<utility>.i.<lab>, and returns its leaf index. inv should be
// validated and its sample checked (see Invalidations for duplicates).
func (j *Journal) AppendInvalidation(ctx context.Context, inv tapproof.Invalidation, leaf []byte, opts ...AppendOption) (uint64, error) {
	if err := checkLabIDs(inv.Utility, inv.Lab, inv.SampleID); err != nil {
		return 0, err
	}
	var o appendOptions
	for _, opt := range opts {
		opt(&o)
	}
	st, err := j.logStream(ctx, inv.Utility, false)
	if err != nil {
		return 0, err
	}
	m := &nats.Msg{
		Subject: invalidationSubject(inv.Utility, inv.Lab),
		Data:    leaf,
		Header: nats.Header{
			HeaderSample: []string{inv.SampleID},
		},
	}
	if o.source != 0 {
		m.Header.Set(HeaderSource, strconv.FormatUint(o.source, 10))
	}
	ack, err := j.js.PublishMsg(ctx, j.seal(m), jetstream.WithExpectStream(st.CachedInfo().Config.Name))
	if err != nil {
		return 0, fmt.Errorf("append invalidation: %w", err)
	}
	return ack.Sequence - 1, nil
}

// Invalidations returns the invalidation entries of sample sampleID of lab
// in utility's log at leaf indexes after after (the sample's own index), in
// log order. It walks the lab's invalidation subject, which holds a handful
// of entries per monitoring period.
func (j *Journal) Invalidations(ctx context.Context, utility, lab, sampleID string, after uint64) ([]Entry, error) {
	if err := checkLabIDs(utility, lab, sampleID); err != nil {
		return nil, err
	}
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return nil, err
	}
	subject := invalidationSubject(utility, lab)
	var out []Entry
	for seq := after + 2; ; { // leaf after+1 is stream sequence after+2
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("invalidations of %s: %w", tapproof.LabSampleKey(lab, sampleID), err)
		}
		if m.Header.Get(HeaderSample) == sampleID && j.sealed(m.Subject, m.Sequence, m.Header, m.Data) {
			e, err := entryOf(m.Subject, m.Sequence, m.Header, m.Data)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		seq = m.Sequence + 1
	}
}

// complianceStall bounds the wait for the next compliance entry that the
// consumer says is pending.
const complianceStall = 30 * time.Second

// ComplianceEntries returns every sealed lab sample and invalidation entry
// of utility's log and the record of every sealed notice of a compliance
// alert, in log order: the input of compliance.FromLeaves. An unsealed
// entry is set aside in the log (its leaf is tapproof.SetAsideLeaf), so it
// is not an input here either: a report from the journal and one from the
// log agree. It reads only their
// subjects, with an ordered consumer, so readings and screening notices cost
// nothing.
func (j *Journal) ComplianceEntries(ctx context.Context, utility string) ([]Entry, error) {
	if !tapproof.ValidID(utility) {
		return nil, fmt.Errorf("compliance entries: utility %q: %w", utility, tapproof.ErrNotFound)
	}
	s, err := j.logStream(ctx, utility, false)
	if err != nil {
		return nil, err
	}
	prefix := logSubject + "." + utility + "."
	filters := []string{prefix + string(KindLabSample) + ".*", prefix + string(KindInvalidation) + ".*"}
	for _, c := range noticeClasses {
		filters = append(filters, noticeSubject(utility, c))
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("compliance entries of %s: %w", utility, err)
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("compliance entries of %s: %w", utility, err)
	}
	defer it.Stop()
	var out []Entry
	for {
		next, cancel := context.WithTimeout(ctx, complianceStall)
		m, err := it.Next(jetstream.NextContext(next))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("compliance entries of %s: %w", utility, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("compliance entries of %s: %w", utility, err)
		}
		if j.sealed(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data()) {
			e, err := entryOf(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data())
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		if meta.NumPending == 0 {
			return out, nil
		}
	}
}

// complianceEntryOf completes a lab sample or invalidation entry from its
// headers: the sample id and the message it was accepted from.
func complianceEntryOf(e Entry, hdr nats.Header) (Entry, error) {
	e.SampleID = hdr.Get(HeaderSample)
	if e.SampleID == "" {
		return Entry{}, fmt.Errorf("journal entry %d: no %s header", e.Index, HeaderSample)
	}
	if v := hdr.Get(HeaderSource); v != "" {
		var err error
		if e.Source, err = strconv.ParseUint(v, 10, 64); err != nil {
			return Entry{}, fmt.Errorf("journal entry %d: header %s: %w", e.Index, HeaderSource, err)
		}
	}
	return e, nil
}
