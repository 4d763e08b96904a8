package platform

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// platform ties the journal, the registry and the Trillian logs together:
// it creates a utility's log on its first enrollment, starts that log's
// sinks, and answers the regulator API. It implements httpapi.Logs and
// httpapi.Devices.
type app struct {
	cfg      Config
	journal  *journal.Journal
	registry *journal.Registry
	trillian *anchor.Client
	sys      *nats.Conn // system account: disconnects revoked devices
	log      *slog.Logger
	// leavesRead counts the leaves Leaves served, by where it read them.
	leavesRead *prometheus.CounterVec
	// leafReads bounds the pages of leaves the public API reads at once
	// (see maxLeafReads).
	leafReads chan struct{}
	// leading is whether this replica holds the leadership lease.
	leading atomic.Bool

	enrollMu sync.Mutex // one enrollment at a time
	mu       sync.Mutex
	logs     map[string]*utilityLog
}

// utilityLog is one utility's log as the platform runs it.
type utilityLog struct {
	info        journal.LogInfo
	log         *anchor.Log
	verifier    note.Verifier
	checkpoints *journal.Checkpoints
	// witnessed holds the checkpoints that met the witness policy;
	// witnessing writes it.
	witnessed *journal.Checkpoints
	// lag is how long the oldest entry no checkpoint covers has waited.
	lag atomic.Int64 // nanoseconds
	// inconsistent, once set, is why the log's checkpoints stopped: its
	// tree does not extend what was signed.
	inconsistent atomic.Pointer[anchor.InconsistencyError]
	// foreign, once set, is why the log's checkpoints stopped: its tree
	// holds a leaf tapproof did not append.
	foreign atomic.Pointer[anchor.ForeignLeafError]
}

// maxLag is the anchoring lag past which tapproof reports itself not ready.
const maxLag = 30 * time.Second

// openLogs opens every log the journal knows.
func (p *app) openLogs(ctx context.Context) error {
	infos, err := p.journal.Logs(ctx)
	if err != nil {
		return err
	}
	for _, li := range infos {
		if _, err := p.open(ctx, li); err != nil {
			return err
		}
	}
	return nil
}

func (p *app) keyPath(utility string) string {
	return filepath.Join(p.cfg.DataDir, "keys", utility+".note-key")
}

// open loads the signing key of a known log; another replica may have
// created it.
func (p *app) open(ctx context.Context, li journal.LogInfo) (*utilityLog, error) {
	skey, err := os.ReadFile(p.keyPath(li.Utility))
	if err != nil {
		return nil, fmt.Errorf("log key of %s: %w", li.Utility, err)
	}
	signer, err := note.NewSigner(string(skey))
	if err != nil {
		return nil, fmt.Errorf("log key of %s: %w", li.Utility, err)
	}
	verifier, err := note.NewVerifier(li.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("verifier key of %s: %w", li.Utility, err)
	}
	l, err := p.trillian.Log(anchor.LogConfig{TreeID: li.TreeID, Origin: li.Origin, Signer: signer, Verifier: verifier, BatchSize: p.cfg.BatchSize})
	if err != nil {
		return nil, err
	}
	if err := p.journal.EnsureLogStream(ctx, li.Utility); err != nil {
		return nil, err
	}
	ul := &utilityLog{info: li, log: l, verifier: verifier,
		checkpoints: p.journal.Checkpoints(li.Utility), witnessed: p.journal.WitnessedCheckpoints(li.Utility)}
	p.mu.Lock()
	if old, ok := p.logs[li.Utility]; ok {
		ul = old
	} else {
		p.logs[li.Utility] = ul
	}
	p.mu.Unlock()
	p.log.Info("log open", slog.String("utility", li.Utility), slog.Int64("tree_id", li.TreeID), slog.String("origin", li.Origin))
	return ul, nil
}

// ensureLog returns utility's log, creating its Trillian tree, signing key
// and journal if it has none.
func (p *app) ensureLog(ctx context.Context, utility string) (*utilityLog, error) {
	p.mu.Lock()
	ul, ok := p.logs[utility]
	p.mu.Unlock()
	if ok {
		return ul, nil
	}
	if li, err := p.journal.Log(ctx, utility); err == nil {
		return p.open(ctx, li)
	} else if !errors.Is(err, tapproof.ErrNotFound) {
		return nil, err
	}
	origin := p.cfg.Origin + "/" + utility
	vkey, err := p.logKey(utility, origin)
	if err != nil {
		return nil, err
	}
	tree, err := p.trillian.CreateTree(ctx, "tapproof "+utility)
	if err != nil {
		return nil, err
	}
	li := journal.LogInfo{Utility: utility, TreeID: tree, Origin: origin, VerifierKey: vkey, CreatedAt: time.Now().UTC()}
	if err := p.journal.CreateLog(ctx, li); errors.Is(err, jetstream.ErrKeyExists) {
		// Another replica created this utility's log first; use it. The
		// tree made here stays empty.
		if li, err = p.journal.Log(ctx, utility); err != nil {
			return nil, err
		}
		return p.open(ctx, li)
	} else if err != nil {
		return nil, err
	}
	p.log.Info("log created", slog.String("utility", utility), slog.Int64("tree_id", tree), slog.String("verifier_key", vkey))
	return p.open(ctx, li)
}

// logKey creates the signing key of utility's log, exclusively: if another
// replica sharing the data directory created it first, that key is used.
// It returns the verifier key.
func (p *app) logKey(utility, origin string) (string, error) {
	path := p.keyPath(utility)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("log key: %w", err)
	}
	skey, _, err := note.GenerateKey(nil, origin)
	if err != nil {
		return "", fmt.Errorf("log key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, err = f.WriteString(skey)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("log key: %w", err)
		}
	case errors.Is(err, os.ErrExist):
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("log key: %w", err)
		}
		skey = string(b)
	default:
		return "", fmt.Errorf("log key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", fmt.Errorf("log key %s: %w", path, err)
	}
	if signer.Name() != origin {
		return "", fmt.Errorf("log key %s is for %q, not %q", path, signer.Name(), origin)
	}
	return verifierKey(skey)
}

// verifierKey derives the note verifier key from a note signer key
// ("PRIVATE+KEY+name+hash+key"), whose public half it carries implicitly.
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5) // the base64 key may contain "+"
	if len(parts) != 5 {
		return "", errors.New("log key: malformed note signer key")
	}
	k, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(k) != 1+ed25519.SeedSize || k[0] != 1 {
		return "", errors.New("log key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(k[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// Enroll registers the device of a self-signed enrollment envelope: it
// appends the enrollment to the utility's log, then adds the device to the
// registry. Enrolling the same device with the same key again is a no-op;
// a new device of kind lab is refused (tapproof.Device.Enrollable).
func (p *app) Enroll(ctx context.Context, envelope []byte) (tapproof.Device, error) {
	env, err := signed.Parse(envelope, 64<<10)
	if err != nil {
		return tapproof.Device{}, err
	}
	en, err := env.Enrollment()
	if err != nil {
		return tapproof.Device{}, err
	}
	if err := signed.StrongKey(en.PublicKey); err != nil {
		return tapproof.Device{}, tapproof.Reject(tapproof.ReasonInvalid, "enrollment of %s: %v", en.Device, err)
	}
	if err := env.Verify(ctx, en.PublicKey); err != nil {
		return tapproof.Device{}, tapproof.Reject(tapproof.ReasonBadSignature, "enrollment is not signed by the key it enrolls")
	}
	d := tapproof.Device{ID: en.Device, Utility: en.Utility, Site: en.Site, Kind: en.Kind, PublicKey: en.PublicKey,
		Firmware: en.Firmware, Status: tapproof.DeviceActive, EnrolledAt: en.EnrolledAt}
	if err := d.Validate(); err != nil {
		return d, tapproof.Reject(tapproof.ReasonInvalid, "%v", err)
	}
	p.enrollMu.Lock()
	defer p.enrollMu.Unlock()
	if old, ok := p.registry.Device(d.ID); ok {
		if old.Utility == d.Utility && old.Site == d.Site && old.Firmware == d.Firmware && ed25519.PublicKey.Equal(old.PublicKey, d.PublicKey) {
			return old, nil
		}
		return d, fmt.Errorf("device %s is already enrolled with other details: %w", d.ID, tapproof.ErrConflict)
	}
	if err := d.Enrollable(); err != nil {
		return d, err
	}
	if _, err := p.ensureLog(ctx, d.Utility); err != nil {
		return d, err
	}
	if _, err := p.journal.AppendEnrollment(ctx, d.Utility, d.ID, envelope); err != nil {
		return d, err
	}
	return d, p.registry.Put(ctx, d)
}

// Devices lists enrolled devices.
func (p *app) Devices() []tapproof.Device { return p.registry.Devices() }

// utilityLog returns utility's log, opening it if another replica created
// it since.
func (p *app) utilityLog(ctx context.Context, utility string) (*utilityLog, error) {
	p.mu.Lock()
	ul, ok := p.logs[utility]
	p.mu.Unlock()
	if ok {
		return ul, nil
	}
	li, err := p.journal.Log(ctx, utility)
	if err != nil {
		return nil, err
	}
	return p.open(ctx, li)
}

// Logs summarises every log.
func (p *app) Logs(ctx context.Context) ([]httpapi.LogSummary, error) {
	infos, err := p.journal.Logs(ctx)
	if err != nil {
		return nil, err
	}
	out := []httpapi.LogSummary{}
	for _, li := range infos {
		ul, err := p.utilityLog(ctx, li.Utility)
		if err != nil {
			return nil, err
		}
		s := httpapi.LogSummary{Utility: ul.info.Utility, Origin: ul.info.Origin, VerifierKey: ul.info.VerifierKey}
		_, c, err := p.latestServed(ctx, ul)
		switch {
		case err == nil:
			s.Size = c.Size
		case !errors.Is(err, tapproof.ErrNotYetAnchored):
			return nil, err
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b httpapi.LogSummary) int { return strings.Compare(a.Utility, b.Utility) })
	return out, nil
}

// served returns the store of the checkpoints the API serves for ul: those
// that met the witness policy if there is one. A read of its own, so as
// not to disturb the writers' guard on their stores.
func (p *app) served(ul *utilityLog) *journal.Checkpoints {
	if p.cfg.WitnessPolicy != nil {
		return p.journal.WitnessedCheckpoints(ul.info.Utility)
	}
	return p.journal.Checkpoints(ul.info.Utility)
}

// LatestCheckpoint returns the latest signed checkpoint of utility's log;
// with a witness policy, the latest that met it, with its cosignatures.
func (p *app) LatestCheckpoint(ctx context.Context, utility string) ([]byte, error) {
	ul, err := p.utilityLog(ctx, utility)
	if err != nil {
		return nil, err
	}
	cp, _, err := p.latestServed(ctx, ul)
	return cp, err
}

// latestServed returns the latest checkpoint the API serves for ul, and
// what it says, if it is one: signed with the log's key and, under a
// witness policy, cosigned as the policy asks. Only tapproof writes that
// store, but anyone holding broker credentials could publish on it: what
// is not a served checkpoint is never served, and the next one supersedes
// it. Until then the log has no checkpoint to serve (ErrNotYetAnchored).
func (p *app) latestServed(ctx context.Context, ul *utilityLog) ([]byte, *log.Checkpoint, error) {
	cp, err := p.served(ul).LatestCheckpoint(ctx, ul.info.Origin)
	if err != nil {
		return nil, nil, err
	}
	if cp == nil {
		return nil, nil, fmt.Errorf("no checkpoint published yet: %w", tapproof.ErrNotYetAnchored)
	}
	c, err := p.checkServed(ul, cp)
	if err != nil {
		p.log.Warn("the latest checkpoint on the served subject is not one: not served", slog.String("utility", ul.info.Utility), slog.Any("error", err))
		return nil, nil, fmt.Errorf("no servable checkpoint (the latest published is not one): %w", tapproof.ErrNotYetAnchored)
	}
	return cp, c, nil
}

// checkServed opens cp as a checkpoint the API may serve for ul.
func (p *app) checkServed(ul *utilityLog, cp []byte) (*log.Checkpoint, error) {
	c, err := anchor.OpenCheckpoint(cp, ul.verifier)
	if err != nil {
		return nil, err
	}
	if p.cfg.WitnessPolicy != nil {
		if err := p.cfg.WitnessPolicy.Check(cp); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Checkpoint returns the checkpoint published at size; with a witness
// policy, only one that met it.
func (p *app) Checkpoint(ctx context.Context, utility string, size uint64) ([]byte, error) {
	ul, err := p.utilityLog(ctx, utility)
	if err != nil {
		return nil, err
	}
	cp, err := p.served(ul).Checkpoint(ctx, size)
	if err != nil {
		return nil, err
	}
	if c, err := p.checkServed(ul, cp); err != nil || c.Size != size {
		return nil, fmt.Errorf("checkpoint %d of %s: the one published is not one to serve: %w", size, utility, tapproof.ErrNotFound)
	}
	return cp, nil
}

// ConsistencyProof proves the log at from is a prefix of the log at to. Both
// must be sizes of published checkpoints, so a proof is only ever given
// between trees the log operator signed.
func (p *app) ConsistencyProof(ctx context.Context, utility string, from, to uint64) ([][]byte, error) {
	ul, err := p.utilityLog(ctx, utility)
	if err != nil {
		return nil, err
	}
	for _, size := range []uint64{from, to} {
		if _, err := p.Checkpoint(ctx, utility, size); err != nil {
			return nil, err
		}
	}
	return ul.log.ConsistencyProof(ctx, from, to)
}

// Leaves returns up to count leaves of utility's log from start on; fewer,
// or none, where Trillian has not integrated them yet (see logLeaves).
func (p *app) Leaves(ctx context.Context, utility string, start, count uint64) ([][]byte, error) {
	ul, err := p.utilityLog(ctx, utility)
	if err != nil {
		return nil, err
	}
	return p.logLeaves(ul).read(ctx, start, count)
}

func (p *app) logLeaves(ul *utilityLog) logLeaves {
	return logLeaves{ul: ul, journal: p.journal, counted: p.leavesRead, log: p.log, slots: p.leafReads}
}

// Bundle assembles the offline proof of reading seq of device at the latest
// published checkpoint, with the device's enrollment when it precedes the
// reading in the log.
func (p *app) Bundle(ctx context.Context, device string, seq uint64) (any, error) {
	d, ok := p.registry.Device(device)
	if !ok {
		return nil, fmt.Errorf("device %q: %w", device, tapproof.ErrNotFound)
	}
	ul, err := p.utilityLog(ctx, d.Utility)
	if err != nil {
		return nil, err
	}
	e, err := p.journal.Reading(ctx, d.Utility, device, seq)
	if err != nil {
		return nil, err
	}
	cp, err := p.LatestCheckpoint(ctx, d.Utility)
	if err != nil {
		return nil, err
	}
	b, err := ul.log.Bundle(ctx, e.Index, cp)
	if err != nil {
		return nil, err
	}
	if en, err := p.journal.Enrollment(ctx, d.Utility, device); err == nil && en.Index < e.Index {
		if b.Enrollment, err = ul.log.Bundle(ctx, en.Index, cp); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// LeafBundle assembles the offline proof of the entry at index of utility's
// log, whatever it holds, at the latest served checkpoint (the witnessed
// one under a witness policy): the proof an individual compliance alert
// links, its Seq being its lab sample's leaf index. A reading's bundle
// carries its device's enrollment when it precedes the reading, as Bundle's.
func (p *app) LeafBundle(ctx context.Context, utility string, index uint64) (any, error) {
	ul, err := p.utilityLog(ctx, utility)
	if err != nil {
		return nil, err
	}
	cp, err := p.LatestCheckpoint(ctx, utility)
	if err != nil {
		return nil, err
	}
	b, err := ul.log.Bundle(ctx, index, cp)
	if err != nil {
		return nil, err
	}
	if env, err := signed.Parse(b.Leaf, 0); err == nil && env.PayloadType() == tapproof.ReadingPayloadType {
		if r, err := env.Reading(); err == nil {
			if en, err := p.journal.Enrollment(ctx, utility, r.Device); err == nil && en.Index < index {
				if b.Enrollment, err = ul.log.Bundle(ctx, en.Index, cp); err != nil {
					return nil, err
				}
			}
		}
	}
	return b, nil
}

// ReadEnrollments reads a file of signed enrollments, JSON envelopes: a
// JSON array, or one envelope per line.
func ReadEnrollments(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("enrollments: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(b, &arr); err != nil {
			return nil, fmt.Errorf("enrollments %s: %w", path, err)
		}
		out := make([][]byte, len(arr))
		for i, r := range arr {
			out[i] = r
		}
		return out, nil
	}
	var out [][]byte
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var r json.RawMessage
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("enrollments %s: %w", path, err)
		}
		out = append(out, r)
	}
}
