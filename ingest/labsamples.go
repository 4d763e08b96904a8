package ingest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// Labs looks up the public keys of certified laboratories by lab id.
// Several keys allow rotation.
type Labs interface {
	Lab(id string) ([]ed25519.PublicKey, bool)
}

// Reviewers looks up the public keys of state reviewers by reviewer id.
// They come from the state's configuration, never from a utility's
// enrollments: a utility must not be able to invalidate its own samples.
type Reviewers interface {
	Reviewer(id string) ([]ed25519.PublicKey, bool)
}

// Accepted-metric kinds of compliance entries; readings use their device's
// kind.
const (
	kindLabSample    = string(tapproof.Lab)
	kindInvalidation = "invalidation"
)

// decideLabSample decides a lab sample: the lab's keys, the signature, the
// subject, the values and the clock, then the sample's identity (lab,
// sample id) against the journal, the append, and the alert. Like decide it
// returns nil once the outcome is durable and acknowledged.
func (w *worker) decideLabSample(ctx context.Context, m jetstream.Msg, env *signed.Envelope) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("message metadata: %w", err)
	}
	raw, err := env.LabSample()
	if err != nil {
		return w.reject(ctx, m, asRejection(err))
	}
	var keys []ed25519.PublicKey
	ok := false
	if w.in.cfg.Labs != nil {
		keys, ok = w.in.cfg.Labs.Lab(raw.Lab)
	}
	if !ok {
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonUnknownSigner, "lab %q is not known", raw.Lab))
	}
	if err := env.VerifyAny(ctx, keys); err != nil {
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonUnknownSigner, "lab %q: %v", raw.Lab, asRejection(err).Detail))
	}
	if want := strings.Join([]string{journal.LabSamplesSubject, raw.Utility, raw.Lab}, "."); m.Subject() != want {
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonSubjectMismatch, "subject %q, payload says %q", m.Subject(), want))
	}
	s, err := raw.Normalize()
	if err != nil {
		return w.reject(ctx, m, asRejection(err))
	}
	if err := s.CheckClock(w.in.now(), w.in.cfg.ClockSkew); err != nil {
		return w.reject(ctx, m, asRejection(err))
	}
	for attempt := 0; ; attempt++ {
		e, err := w.in.journal.LabSample(ctx, s.Utility, s.Lab, s.SampleID)
		switch {
		case errors.Is(err, tapproof.ErrNotFound):
			idx, err := w.in.journal.AppendLabSample(ctx, s, m.Data(), journal.FromMessage(meta.Sequence.Stream))
			if errors.Is(err, journal.ErrExists) && attempt < 3 {
				continue // appended meanwhile: classify it
			}
			if errors.Is(err, tapproof.ErrNotFound) {
				return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonInvalid, "utility %s has no log yet; resubmit once it has", s.Utility))
			}
			if err != nil {
				return err
			}
			return w.acceptLabSample(ctx, m, s, idx)
		case err != nil:
			return fmt.Errorf("lab sample lookup: %w", err)
		case !bytes.Equal(e.Bytes, m.Data()):
			return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonEquivocation, "a different sample %s is already at leaf %d", s.Key(), e.Index))
		case e.Source == meta.Sequence.Stream:
			// This very message, appended by an attempt that crashed or
			// failed to raise its alert: finish accepting it.
			return w.acceptLabSample(ctx, m, s, e.Index)
		default:
			// Another copy; the message it came from raised the alert
			// before being acknowledged.
			return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonDuplicate, "sample %s already accepted at leaf %d", s.Key(), e.Index))
		}
	}
}

// acceptLabSample raises the sample's alert, if any, and acknowledges it.
// The alert's id is deterministic, so raising it again after a crash
// changes nothing.
func (w *worker) acceptLabSample(ctx context.Context, m jetstream.Msg, s tapproof.LabSample, idx uint64) error {
	if err := w.in.alerter.CheckSample(ctx, s, idx); err != nil {
		return fmt.Errorf("alert: %w", err)
	}
	if err := m.Ack(); err != nil {
		w.in.log.Warn("ingest: ack", slog.Any("error", err))
	}
	w.in.metrics.accepted.WithLabelValues(string(s.Analyte), kindLabSample).Inc()
	return nil
}

// decideInvalidation decides a state reviewer's invalidation: the
// reviewer's keys, the signature, the subject, the fields and the clock,
// then the sample it names, which must be in the journal at the leaf index
// it gives, and copies already appended.
func (w *worker) decideInvalidation(ctx context.Context, m jetstream.Msg, env *signed.Envelope) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("message metadata: %w", err)
	}
	inv, err := env.Invalidation()
	if err != nil {
		return w.reject(ctx, m, asRejection(err))
	}
	var keys []ed25519.PublicKey
	ok := false
	if w.in.cfg.Reviewers != nil {
		keys, ok = w.in.cfg.Reviewers.Reviewer(inv.Reviewer)
	}
	if !ok {
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonUnknownSigner, "reviewer %q is not known", inv.Reviewer))
	}
	if err := env.VerifyAny(ctx, keys); err != nil {
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonUnknownSigner, "reviewer %q: %v", inv.Reviewer, asRejection(err).Detail))
	}
	if want := strings.Join([]string{journal.InvalidationsSubject, inv.Utility, inv.Reviewer}, "."); m.Subject() != want {
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonSubjectMismatch, "subject %q, payload says %q", m.Subject(), want))
	}
	if err := inv.Validate(); err != nil {
		return w.reject(ctx, m, asRejection(err))
	}
	if err := inv.CheckClock(w.in.now(), w.in.cfg.ClockSkew); err != nil {
		return w.reject(ctx, m, asRejection(err))
	}
	sample, err := w.in.journal.LabSample(ctx, inv.Utility, inv.Lab, inv.SampleID)
	switch {
	case errors.Is(err, tapproof.ErrNotFound): // no such sample, or no log
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonUnknownSample, "sample %s is not in the log of %s", inv.SampleKey(), inv.Utility))
	case err != nil:
		return fmt.Errorf("lab sample lookup: %w", err)
	case sample.Index != inv.SampleIndex:
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonUnknownSample, "sample %s is at leaf %d, the invalidation names leaf %d",
			inv.SampleKey(), sample.Index, inv.SampleIndex))
	}
	prev, err := w.in.journal.Invalidations(ctx, inv.Utility, inv.Lab, inv.SampleID, sample.Index)
	if err != nil {
		return fmt.Errorf("invalidations lookup: %w", err)
	}
	for _, e := range prev {
		if !bytes.Equal(e.Bytes, m.Data()) {
			continue // another decision about the sample: the report lists both
		}
		if e.Source == meta.Sequence.Stream {
			return w.acceptInvalidation(m, inv, sample, e.Index)
		}
		return w.reject(ctx, m, tapproof.Reject(tapproof.ReasonDuplicate, "this invalidation of %s is already at leaf %d", inv.SampleKey(), e.Index))
	}
	idx, err := w.in.journal.AppendInvalidation(ctx, inv, m.Data(), journal.FromMessage(meta.Sequence.Stream))
	if err != nil {
		return err
	}
	return w.acceptInvalidation(m, inv, sample, idx)
}

func (w *worker) acceptInvalidation(m jetstream.Msg, inv tapproof.Invalidation, sample journal.Entry, idx uint64) error {
	if err := m.Ack(); err != nil {
		w.in.log.Warn("ingest: ack", slog.Any("error", err))
	}
	analyte := ""
	if s, err := signed.LoggedLabSample(sample.Bytes); err == nil {
		analyte = string(s.Analyte)
	}
	w.in.metrics.accepted.WithLabelValues(analyte, kindInvalidation).Inc()
	w.in.log.Info("ingest: invalidation accepted", slog.String("sample", inv.SampleKey()), slog.String("utility", inv.Utility),
		slog.String("reviewer", inv.Reviewer), slog.Uint64("leaf", idx), slog.Uint64("sample_leaf", sample.Index))
	return nil
}
