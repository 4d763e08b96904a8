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

// exceedanceWatch raises the system action level exceedance alert (the
// Tier 1 alert) of a monitoring period as soon as the log's samples make its
// 90th percentile exceed the action level. It is the sink of a cursor that
// sees only the log's lab sample and invalidation entries: after each batch
// it recomputes, with the same computation the API serves and anyone can
// repeat from the log, every period and analyte the batch touches.
//
// The alert's id names the utility, analyte and period, and it is looked up
// before it is published, so a redelivered batch, a restart or a later
// sample never raises a second one. An invalidation never withdraws it: the
// report shows the exclusion, the notice that went out stands.
type exceedanceWatch struct {
	journal *journal.Journal
	reports *complianceBackend
	alerts  *alerts.Store
	// failed counts periods that could not be computed (a collection event
	// only a reviewer can resolve, say); the sink goes on past them.
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

// check computes one period from leaves and raises its alert if it is
// exceeded and not yet raised. Only a failure to read or publish an alert is
// returned (and retried); a period that cannot be computed, which only a
// later entry can change, is logged and counted.
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
	a, exceeded := rep.SystemAlert(w.now())
	if !exceeded {
		return nil
	}
	if _, ok, err := w.alerts.Get(ctx, a.ID); err != nil {
		return fmt.Errorf("exceedance: %w", err)
	} else if ok {
		return nil
	}
	if err := w.alerts.Publish(ctx, a); err != nil {
		return fmt.Errorf("exceedance: %w", err)
	}
	w.log.Warn("ACTION LEVEL EXCEEDED: Tier 1 public notice due within 24 hours", slog.String("alert_id", a.ID),
		slog.String("utility", utility), slog.String("period", k.period), slog.String("analyte", string(k.analyte)),
		slog.Float64("p90", rep.P90), slog.Float64("action_level", rep.ActionLevel), slog.String("rule", rep.Rule))
	return nil
}
