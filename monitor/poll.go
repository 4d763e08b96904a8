package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/witness"
)

// maxSavedPerKind is how many leaf findings of one kind a batch saves one
// by one; the others are listed in one more finding of that kind.
const maxSavedPerKind = 100

// follower follows one log. Its polls run one at a time.
type follower struct {
	m       *Monitor
	utility string
	key     note.Verifier
	checker *leafChecker
	log     *slog.Logger

	// st is the stored state, as on disk; never nil, never modified:
	// each advance replaces it.
	st *State
	// saved maps the findings whose evidence was saved, by what they are
	// about, to the evidence directory, so that a fork reported on every
	// poll is saved and POSTed once.
	saved map[string]string
}

// poll checks the log's latest checkpoint and any new leaves against the
// stored state, and advances the state if they pass.
func (f *follower) poll(ctx context.Context) LogResult {
	res := LogResult{Utility: f.utility}
	now := f.m.now()
	latest, grew := f.check(ctx, &res, now)
	if ctx.Err() != nil {
		// Stopped: nothing was wrong with the log.
		res.Size = f.st.Size
		return res
	}
	if res.Err != nil {
		f.m.metrics.pollError(f.utility)
		f.log.Warn("monitor: log not checked", slog.Any("error", res.Err))
	}
	if !grew {
		f.checkStale(&res, now, latest)
	}
	res.Size = f.st.Size
	return res
}

// check is poll but for staleness. It returns the latest checkpoint, if
// it was fetched, and whether the state advanced to a larger tree.
func (f *follower) check(ctx context.Context, res *LogResult, now time.Time) (latest []byte, grew bool) {
	if f.st.Version == stateVersion1 {
		if err := f.upgrade(ctx, res, now); err != nil || res.Blocked {
			res.Err = err
			return nil, false
		}
	}
	signedCP, err := f.m.cfg.API.Checkpoint(ctx, f.utility)
	if err != nil {
		res.Err = fmt.Errorf("log %s: latest checkpoint: %w", f.utility, err)
		return nil, false
	}
	cp, err := anchor.OpenCheckpoint(signedCP, f.key)
	if err != nil {
		res.Err = fmt.Errorf("log %s: latest %w", f.utility, err)
		return nil, false
	}
	st := f.st
	base := Finding{
		Log: f.utility, Origin: f.key.Name(), At: now,
		StoredSize: st.Size, StoredRoot: st.Root, NewSize: cp.Size, NewRoot: cp.Hash, newCP: signedCP,
	}
	if st.Checkpoint != "" {
		base.storedCP = []byte(st.Checkpoint)
	}
	if policy := f.m.cfg.Policy; policy != nil {
		if err := policy.Check(signedCP); err != nil {
			fd := base
			fd.Kind, fd.storedCP = KindWitnessPolicy, nil
			fd.Message = fmt.Sprintf("the checkpoint of %d leaves: %v", cp.Size, err)
			if unmet, ok := errors.AsType[*witness.UnmetError](err); ok {
				fd.Missing, fd.Cosigned = unmet.Missing, unmet.Cosigned
			}
			// Once per tree: it is not the log's state that is wrong,
			// and a later checkpoint may carry the cosignatures.
			if key := fmt.Sprintf("witness %d %x", cp.Size, cp.Hash); f.saved[key] == "" {
				f.reportOnce(res, &fd, key)
			}
		}
	}

	switch {
	case cp.Size < st.Size:
		fd := base
		fd.Kind = KindRollback
		fd.Message = fmt.Sprintf("the log's latest checkpoint is of %d leaves, fewer than the %d of the checkpoint stored", cp.Size, st.Size)
		f.reportBlocking(res, &fd)
		return signedCP, false
	case cp.Size == st.Size && !bytes.Equal(cp.Hash, st.Root):
		fd := base
		fd.Kind = KindFork
		fd.Message = fmt.Sprintf("the log signed two trees of %d leaves with different roots", cp.Size)
		f.reportBlocking(res, &fd)
		return signedCP, false
	case cp.Size == st.Size:
		if st.Checkpoint == "" {
			// The first checkpoint of an empty log.
			if err := f.advance(st, signedCP, &batch{frontier: nil, devices: st.Devices}, now); err != nil {
				res.Err = err
				return signedCP, false
			}
		}
		f.m.metrics.success(f.utility, now)
		return signedCP, false
	}

	if st.Size > 0 {
		p, err := f.m.cfg.API.ConsistencyProof(ctx, f.utility, st.Size, cp.Size)
		if err != nil {
			res.Err = fmt.Errorf("log %s: consistency proof from %d to %d: %w", f.utility, st.Size, cp.Size, err)
			return signedCP, false
		}
		base.proof, base.hasProof = p, true
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, st.Size, cp.Size, p, st.Root, cp.Hash); err != nil {
			fd := base
			fd.Kind = KindFork
			fd.Message = fmt.Sprintf("the log's consistency proof from %d to %d leaves does not verify: %v", st.Size, cp.Size, proofError(err))
			f.reportBlocking(res, &fd)
			return signedCP, false
		}
	}
	start := time.Now()
	b, err := f.readBatch(ctx, st, cp.Size)
	if err != nil {
		if isLeavesError(err) {
			fd := base
			fd.Kind = KindInconsistentLeaves
			fd.Message = fmt.Sprintf("leaves %d to %d: %v", st.Size, cp.Size-1, err)
			f.reportBlocking(res, &fd)
			return signedCP, false
		}
		res.Err = fmt.Errorf("log %s: leaves %d to %d: %w", f.utility, st.Size, cp.Size-1, err)
		return signedCP, false
	}
	root, err := rangeRoot(b.frontier)
	if err != nil {
		res.Err = fmt.Errorf("log %s: %w", f.utility, err)
		return signedCP, false
	}
	if !bytes.Equal(root, cp.Hash) {
		fd := base
		fd.Kind = KindInconsistentLeaves
		fd.Message = fmt.Sprintf("leaves %d to %d, appended to the stored tree, hash to root %x, not the checkpoint's %x: the server serves leaves other than those its checkpoint commits to",
			st.Size, cp.Size-1, root, cp.Hash)
		f.reportBlocking(res, &fd)
		return signedCP, false
	}
	f.reportLeaves(res, base, b)
	f.reportCompliance(ctx, res, base, st, b)
	if err := f.advance(st, signedCP, b, now); err != nil {
		res.Err = err
		return signedCP, false
	}
	res.Checked = cp.Size - st.Size
	f.m.metrics.advanced(f.utility, cp.Size, res.Checked, b.counts)
	f.m.metrics.success(f.utility, now)
	f.log.Info("monitor: log verified", slog.Uint64("size", cp.Size), slog.Uint64("new_leaves", res.Checked),
		slog.Duration("took", time.Since(start)), slog.Int("findings", len(res.Findings)))
	return signedCP, true
}

// upgradedKinds are the kinds of leaf finding a monitor with a state of
// version 1 did not report.
var upgradedKinds = []Kind{KindForeignEntry, KindUndecodableEntry, KindNotPermitted}

// upgrade replaces a state of version 1, which knows no device's kind, with
// one of StateVersion at the same checkpoint: it reads the log's leaves up
// to the stored checkpoint again, requires them to hash to its root, and
// keeps the devices, now with their kinds, and the lab sample and
// invalidation leaves they hold. The findings on those leaves of the kinds
// version 1 did not report (upgradedKinds) are reported now; the others
// were when the leaves were first read. Leaves that do not hash to the
// stored root are an inconsistent_leaves finding, and the state stays as
// it was.
func (f *follower) upgrade(ctx context.Context, res *LogResult, now time.Time) error {
	st := f.st
	next := *st
	next.Version = StateVersion
	if st.Size > 0 {
		base := Finding{Log: f.utility, Origin: f.key.Name(), At: now, NewSize: st.Size, NewRoot: st.Root, newCP: []byte(st.Checkpoint)}
		inconsistent := func(msg string) error {
			fd := base
			fd.Kind, fd.Message = KindInconsistentLeaves, msg
			f.reportBlocking(res, &fd)
			return nil
		}
		b, err := f.readBatch(ctx, &State{Frontier: [][]byte{}, Devices: map[string]Device{}}, st.Size)
		if err != nil {
			if isLeavesError(err) {
				return inconsistent(fmt.Sprintf("leaves 0 to %d, read again to upgrade the stored state: %v", st.Size-1, err))
			}
			return fmt.Errorf("log %s: upgrading the stored state: leaves 0 to %d: %w", f.utility, st.Size-1, err)
		}
		root, err := rangeRoot(b.frontier)
		if err != nil {
			return fmt.Errorf("log %s: %w", f.utility, err)
		}
		if !bytes.Equal(root, st.Root) {
			return inconsistent(fmt.Sprintf("leaves 0 to %d, read again to upgrade the stored state, hash to root %x, not the stored checkpoint's %x: the server serves leaves other than those its checkpoint commits to",
				st.Size-1, root, st.Root))
		}
		b.problems = slices.DeleteFunc(b.problems, func(p leafProblem) bool { return !slices.Contains(upgradedKinds, p.kind) })
		maps.DeleteFunc(b.dropped, func(k Kind, _ uint64) bool { return !slices.Contains(upgradedKinds, k) })
		f.reportLeaves(res, base, b)
		next.Devices, next.Compliance = b.devices, b.compliance
	}
	if err := writeState(f.m.cfg.StateDir, &next); err != nil {
		return fmt.Errorf("log %s: %w", f.utility, err)
	}
	f.st = &next
	f.log.Info("monitor: stored state upgraded", slog.Int("from_version", st.Version), slog.Int("version", next.Version),
		slog.Uint64("leaves_read_again", st.Size), slog.Int("findings", len(res.Findings)))
	return nil
}

// advance stores the state after b, at the checkpoint signedCP, and makes
// it the follower's.
func (f *follower) advance(st *State, signedCP []byte, b *batch, now time.Time) error {
	cp, err := anchor.OpenCheckpoint(signedCP, f.key)
	if err != nil {
		return err
	}
	next := *st
	next.Checkpoint, next.Size, next.Root = string(signedCP), cp.Size, cp.Hash
	if b.frontier != nil {
		next.Frontier = b.frontier.Hashes()
		next.Devices = b.devices
		next.Counts.add(b.counts)
		next.Compliance = slices.Concat(st.Compliance, b.compliance)
	}
	next.VerifiedAt = now
	if cp.Size > st.Size || st.Checkpoint == "" {
		next.GrewAt, next.StaleReported = now, false
	}
	if err := writeState(f.m.cfg.StateDir, &next); err != nil {
		return fmt.Errorf("log %s: %w", f.utility, err)
	}
	f.st = &next
	return nil
}

// checkStale reports a stale log once per episode: the state has not
// grown for StaleAfter.
func (f *follower) checkStale(res *LogResult, now time.Time, latest []byte) {
	st := f.st
	since := now.Sub(st.GrewAt)
	if since < f.m.cfg.StaleAfter {
		return
	}
	res.Stale = true
	if st.StaleReported {
		return
	}
	fd := Finding{
		Kind: KindStale, Log: f.utility, Origin: f.key.Name(), At: now,
		StoredSize: st.Size, StoredRoot: st.Root, NewSize: st.Size, NewRoot: st.Root, newCP: latest,
		Message: fmt.Sprintf("no checkpoint larger than %d leaves verified for %s, since %s", st.Size, since.Round(time.Second), st.GrewAt.UTC().Format(time.RFC3339)),
	}
	if st.Checkpoint != "" {
		fd.storedCP = []byte(st.Checkpoint)
	}
	f.report(res, &fd, 1, true)
	next := *st
	next.StaleReported = true
	if err := writeState(f.m.cfg.StateDir, &next); err != nil {
		// Reported again after a restart, at worst.
		f.log.Error("monitor: stale finding not stored", slog.Any("error", err))
	}
	f.st = &next
}

// reportBlocking reports a finding that keeps the state where it is. It is
// reported on every poll while it lasts; its evidence is saved, and sent to
// the webhook, once per pair of trees.
func (f *follower) reportBlocking(res *LogResult, fd *Finding) {
	res.Blocked = true
	f.reportOnce(res, fd, fmt.Sprintf("%s %d %x %d %x", fd.Kind, fd.StoredSize, fd.StoredRoot, fd.NewSize, fd.NewRoot))
}

// reportOnce reports fd, saving its evidence unless a finding of the same
// key was saved before.
func (f *follower) reportOnce(res *LogResult, fd *Finding, key string) {
	dir, seen := f.saved[key]
	if seen {
		fd.Evidence = dir
	}
	f.report(res, fd, 1, !seen)
	if !seen && fd.Evidence != "" {
		f.saved[key] = fd.Evidence
	}
}

// reportLeaves reports the leaf findings of a batch: each of the first
// maxSavedPerKind of a kind on its own, the rest of that kind in one.
func (f *follower) reportLeaves(res *LogResult, base Finding, b *batch) {
	base.storedCP, base.proof, base.hasProof = nil, nil, false
	saved := map[Kind]int{}
	more := map[Kind][]uint64{}
	for _, p := range b.problems {
		if saved[p.kind] == maxSavedPerKind {
			more[p.kind] = append(more[p.kind], p.index)
			continue
		}
		saved[p.kind]++
		fd := base
		index := p.index
		fd.Kind, fd.Leaf, fd.LeafType, fd.Signer, fd.Enrollment, fd.leaf = p.kind, &index, p.typ.String(), p.signer, p.enrollment, p.leaf
		fd.SetAsideReason, fd.EntrySHA256 = p.reason, p.sha256
		fd.Message = fmt.Sprintf("leaf %d (%s): %s", p.index, p.typ, p.msg)
		if p.leaf == nil {
			fd.Message += " (the leaf is not saved: too many findings in one batch)"
		}
		f.report(res, &fd, 1, true)
	}
	for _, k := range Kinds {
		n := uint64(len(more[k])) + b.dropped[k]
		if n == 0 {
			continue
		}
		fd := base
		fd.Kind, fd.MoreLeaves = k, more[k]
		fd.Message = fmt.Sprintf("%d more leaves of leaves %d to %d with %s findings, not saved one by one", n, base.StoredSize, base.NewSize-1, k)
		if b.dropped[k] > 0 {
			fd.Message += fmt.Sprintf(" (%d of them not listed)", b.dropped[k])
		}
		f.report(res, &fd, int(n), true)
	}
}

// report counts, logs and returns fd, and with save set saves its evidence
// and POSTs it to the webhook. n is how many findings fd stands for.
func (f *follower) report(res *LogResult, fd *Finding, n int, save bool) {
	if save {
		if err := saveEvidence(f.m.cfg.StateDir, fd); err != nil {
			f.log.Error("monitor: evidence not saved", slog.Any("error", err))
		}
		if f.m.hook != nil {
			f.m.hook.send(fd)
		}
	}
	f.m.metrics.finding(f.utility, fd.Kind, n)
	level := slog.LevelWarn
	if fd.Kind.blocking() {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("kind", string(fd.Kind)), slog.String("message", fd.Message)}
	if fd.Evidence != "" {
		attrs = append(attrs, slog.String("evidence", fd.Evidence))
	}
	f.log.LogAttrs(context.Background(), level, "monitor: finding", attrs...)
	res.Findings = append(res.Findings, *fd)
}

// proofError replaces the merkle package's multi-line root mismatch
// message.
func proofError(err error) error {
	if e, ok := errors.AsType[proof.RootMismatchError](err); ok {
		return fmt.Errorf("the proof leads to root %x, not %x", e.CalculatedRoot, e.ExpectedRoot)
	}
	return err
}
