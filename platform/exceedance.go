package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// exceedanceWatch raises the system action level exceedance alert (for
// lead, the Tier 1 alert) of a monitoring period as soon as the log's
// samples make its 90th percentile exceed the action level under every
// reduction of them, and the public system undetermined alert while some
// reductions exceed and others do not, until a state reviewer resolves
// them (check). It is the sink of a cursor that sees only the log's lab
// sample and invalidation entries: after each batch it recomputes, with
// the same computation the API serves and anyone can repeat from the log,
// every period and analyte the batch touches.
//
// The exceedance alert's id names the utility, analyte and period, an
// undetermined alert's also the leaf it began at, and each is looked up
// before it is published, so a redelivered batch, a restart or a later
// sample never raises a second one. An invalidation never withdraws an
// exceedance alert: the report shows the exclusion, the notice that went
// out stands.
type exceedanceWatch struct {
	journal *journal.Journal
	reports *complianceBackend
	alerts  *alerts.Store
	// failed counts periods that could not be computed (a lab sample of
	// the period that does not verify with the keys, say); the sink goes
	// on past them. A period whose samples are ambiguous is computed: it
	// is exceeded, not exceeded or undetermined, never skipped.
	failed func()
	log    *slog.Logger
	now    func() time.Time
}

// periodKey is a monitoring period of one analyte.
type periodKey struct {
	period  string
	analyte tapproof.Analyte
}

// handle checks the periods that the lab sample and invalidation entries es
// of utility's log touch.
func (w *exceedanceWatch) handle(ctx context.Context, utility string, es []journal.Entry) error {
	var touched []periodKey
	// add notes the period of the sample that leaf holds. A leaf that does
	// not decode is no sample any report counts: counted and logged, and
	// the watch goes on.
	add := func(leaf []byte) {
		s, err := signed.LoggedLabSample(leaf)
		if err != nil {
			w.failed()
			w.log.Warn("exceedance: lab sample entry does not decode", slog.String("utility", utility), slog.Any("error", err))
			return
		}
		if k := (periodKey{s.Period, s.Analyte}); !slices.Contains(touched, k) {
			touched = append(touched, k)
		}
	}
	for _, e := range es {
		switch e.Kind {
		case journal.KindLabSample:
			add(e.Bytes)
		case journal.KindInvalidation:
			// Excluding a low sample can raise the percentile: the
			// rank moves with the number of samples.
			s, err := w.journal.LabSample(ctx, utility, e.Lab, e.SampleID)
			if errors.Is(err, tapproof.ErrNotFound) {
				continue // names no sample of this log: applies to nothing
			}
			if err != nil {
				return fmt.Errorf("exceedance: invalidated sample: %w", err)
			}
			add(s.Bytes)
		}
	}
	if len(touched) == 0 {
		return nil
	}
	leaves, err := w.reports.leaves(ctx, utility)
	if err != nil {
		return fmt.Errorf("exceedance: %w", err)
	}
	for _, k := range touched {
		if err := w.check(ctx, utility, leaves, k); err != nil {
			return err
		}
	}
	return nil
}

// check computes one period from leaves and publishes what it decides: the
// system exceedance alert (the Tier 1 alert for lead) once the period is
// exceeded under every reduction of its samples, and, for every stretch of
// the log during which the period was undetermined
// (compliance.Report.UndeterminedSpans), its system undetermined alert and,
// once a reviewer's invalidation or a later sample decided it, that
// alert's cancellation. Each message is looked up before it is published,
// so none goes out twice. A failure to read or publish an alert is
// returned (and retried); a period whose entries cannot be computed at all
// (a lab sample of the period that no longer verifies, say), which only a
// later entry or the keys can change, is logged and counted.
func (w *exceedanceWatch) check(ctx context.Context, utility string, leaves []tapproof.Leaf, k periodKey) error {
	rep, err := compliance.FromLeaves(ctx, leaves, w.reports.keys, w.reports.params(utility, k.period, k.analyte))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.failed()
		w.log.Warn("exceedance: period not computable", slog.String("utility", utility),
			slog.String("period", k.period), slog.String("analyte", string(k.analyte)), slog.Any("error", err))
		return nil
	}
	now := w.now()
	if a, exceeded := rep.SystemAlert(now); exceeded {
		published, err := w.publishOnce(ctx, a)
		if err != nil {
			return err
		}
		if published {
			msg := "ACTION LEVEL EXCEEDED: Tier 1 public notice due within 24 hours"
			if rep.Analyte != tapproof.Lead {
				msg = "ACTION LEVEL EXCEEDED: treatment, monitoring and reporting obligations (no Tier 1 notice)"
			}
			w.log.Warn(msg, slog.String("alert_id", a.ID),
				slog.String("utility", utility), slog.String("period", k.period), slog.String("analyte", string(k.analyte)),
				slog.Float64("p90", rep.P90), slog.Float64("action_level", rep.ActionLevel), slog.String("rule", rep.Rule),
				slog.Bool("ambiguous", rep.Ambiguity != nil))
		}
	}
	msgs := rep.UndeterminedAlerts(now)
	for i := 0; i < len(msgs); i++ {
		a := msgs[i]
		closed := i+1 < len(msgs) && msgs[i+1].Type() == tapproof.CancelMsg
		if closed {
			// A stretch that ended: if its cancellation is stored, so
			// is all of it.
			cancel := msgs[i+1]
			i++
			if _, ok, err := w.alerts.Get(ctx, cancel.ID); err != nil {
				return fmt.Errorf("exceedance: %w", err)
			} else if ok {
				continue
			}
			if _, err := w.publishOnce(ctx, a); err != nil {
				return err
			}
			// Refer to the alert as it was stored, when it was raised.
			if stored, ok, err := w.alerts.Get(ctx, a.ID); err != nil {
				return fmt.Errorf("exceedance: %w", err)
			} else if ok {
				cancel.References = []tapproof.AlertRef{stored.Ref()}
			}
			if _, err := w.publishOnce(ctx, cancel); err != nil {
				return err
			}
			w.log.Info("exceedance: undetermined period decided again", slog.String("alert_id", a.ID),
				slog.String("utility", utility), slog.String("period", k.period), slog.String("analyte", string(k.analyte)),
				slog.String("determination", string(rep.Determination)))
			continue
		}
		published, err := w.publishOnce(ctx, a)
		if err != nil {
			return err
		}
		if published {
			w.log.Warn("PERIOD UNDETERMINED: some reductions of its samples exceed the action level, others do not; a state reviewer must resolve them",
				slog.String("alert_id", a.ID), slog.String("utility", utility), slog.String("period", k.period),
				slog.String("analyte", string(k.analyte)), slog.Float64("lowest_p90", a.Value), slog.Float64("highest_p90", a.Upper),
				slog.Float64("action_level", rep.ActionLevel), slog.String("rule", rep.Rule))
		}
	}
	return nil
}

// publishOnce publishes a unless a message with its id is stored, and says
// whether it did.
func (w *exceedanceWatch) publishOnce(ctx context.Context, a tapproof.Alert) (bool, error) {
	if _, ok, err := w.alerts.Get(ctx, a.ID); err != nil {
		return false, fmt.Errorf("exceedance: %w", err)
	} else if ok {
		return false, nil
	}
	if err := w.alerts.Publish(ctx, a); err != nil {
		return false, fmt.Errorf("exceedance: %w", err)
	}
	return true, nil
}
