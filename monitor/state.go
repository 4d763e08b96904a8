package monitor

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
)

// StateVersion is the version of the state file format, in its "version"
// field. Version 2 added the devices' kinds; a state of version 1 is read,
// and upgraded by reading the log up to its checkpoint again
// (follower.upgrade). A state file of any other version is refused.
const StateVersion = 2

// stateVersion1 is the version before the devices' kinds.
const stateVersion1 = 1

// The state directory's layout.
const (
	logsDir     = "logs"     // one state file per log: <utility>.json
	findingsDir = "findings" // one directory of evidence per finding
	lockFile    = "lock"     // held (flock) while a Monitor uses the directory
	tmpPrefix   = ".tmp-"    // files and directories being written
)

// State is what the monitor keeps of one log between polls, in
// STATE/logs/<utility>.json. It is everything needed to go on from the
// stored checkpoint without reading the log again, and it checks itself:
// the checkpoint must verify with the log's key, and the frontier must hash
// to its root.
type State struct {
	Version int    `json:"version"` // StateVersion
	Utility string `json:"utility"`
	Origin  string `json:"origin"` // the log key's name
	// KeyHash is the note key hash of the log key the checkpoint was
	// verified with, so that a state is not silently read with another.
	KeyHash uint32 `json:"key_hash"`
	// Checkpoint is the last checkpoint verified, as the server signed
	// it (with any cosignatures); Size and Root repeat its tree.
	Checkpoint string `json:"checkpoint"`
	Size       uint64 `json:"size"`
	Root       []byte `json:"root"`
	// Frontier is the compact range of leaves [0, Size): the roots of
	// the perfect subtrees the tree of Size decomposes into, left to
	// right (compact.Range.Hashes). Appending leaf hashes to it gives the
	// root of any larger tree.
	Frontier [][]byte `json:"frontier"`
	// Devices are the devices the log's enrollments enrolled, by id.
	Devices map[string]Device `json:"devices"`
	// Counts are the leaves [0, Size) by type.
	Counts Counts `json:"counts"`
	// Compliance are the lab sample and invalidation leaves of [0, Size),
	// in log order, from which the monitor recomputes the monitoring
	// periods later leaves touch.
	Compliance []tapproof.Leaf `json:"compliance_leaves,omitempty"`
	// VerifiedAt is when Checkpoint was verified; GrewAt when the
	// verified size last grew (or the log was first followed), from
	// which a log is stale.
	VerifiedAt time.Time `json:"verified_at"`
	GrewAt     time.Time `json:"grew_at"`
	// StaleReported says that the current stale episode was reported.
	StaleReported bool `json:"stale_reported,omitempty"`
}

// Device is a device as the log enrolled it: the key its readings must be
// signed with, where it is, and the leaf of its enrollment and, once
// revoked, of its revocation.
type Device struct {
	Key     ed25519.PublicKey `json:"key"`
	Utility string            `json:"utility"`
	Site    string            `json:"site"`
	// Kind is the method the enrollment gives the device, which decides
	// what its readings may report (tapproof.Reading.PermittedFor). A
	// state of version 1 has none: the monitor reads the log again to
	// learn them (follower.upgrade).
	Kind     tapproof.Method `json:"kind,omitempty"`
	Firmware string          `json:"firmware_sha256"`
	Enrolled uint64          `json:"enrolled_at_index"`
	// Revoked is the index of the leaf that revoked the device, if any:
	// its readings after it are unattributable.
	Revoked *uint64 `json:"revoked_at_index,omitempty"`
}

// Counts are leaves by type.
type Counts struct {
	Readings      uint64 `json:"readings"`
	Enrollments   uint64 `json:"enrollments"`
	Revocations   uint64 `json:"revocations"`
	LabSamples    uint64 `json:"lab_samples"`
	Invalidations uint64 `json:"invalidations"`
	Notices       uint64 `json:"notices"`
	SetAside      uint64 `json:"set_aside"`
	Other         uint64 `json:"other"` // not a tapproof entry: each a bad_leaf finding
	// Unchecked counts the lab samples and invalidations whose signature
	// could not be checked: no lab, or no reviewer, key was given.
	Unchecked uint64 `json:"unchecked"`
}

func (c *Counts) add(d Counts) {
	c.Readings += d.Readings
	c.Enrollments += d.Enrollments
	c.Revocations += d.Revocations
	c.LabSamples += d.LabSamples
	c.Invalidations += d.Invalidations
	c.Notices += d.Notices
	c.SetAside += d.SetAside
	c.Other += d.Other
	c.Unchecked += d.Unchecked
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// newState is the state of a log not yet followed: the empty tree.
func newState(utility string, key note.Verifier) *State {
	return &State{
		Version: StateVersion, Utility: utility, Origin: key.Name(), KeyHash: key.KeyHash(),
		Root: rfc6962.DefaultHasher.EmptyRoot(), Frontier: [][]byte{}, Devices: map[string]Device{},
	}
}

// frontier returns the compact range of the state's tree, to append to. It
// shares nothing with the state.
func (s *State) frontier() (*compact.Range, error) {
	hashes := make([][]byte, len(s.Frontier))
	for i, h := range s.Frontier {
		hashes[i] = bytes.Clone(h)
	}
	r, err := rangeFactory.NewRange(0, s.Size, hashes)
	if err != nil {
		return nil, fmt.Errorf("frontier of size %d: %w", s.Size, err)
	}
	return r, nil
}

// rangeRoot is the root hash of the tree r spans from leaf 0.
func rangeRoot(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// check verifies a state read from disk: its log, key, checkpoint and
// frontier.
func (s *State) check(utility string, key note.Verifier) error {
	switch {
	case s.Version != StateVersion && s.Version != stateVersion1:
		return fmt.Errorf("version %d, want %d", s.Version, StateVersion)
	case s.Utility != utility:
		return fmt.Errorf("the state of log %q", s.Utility)
	case s.Origin != key.Name() || s.KeyHash != key.KeyHash():
		return fmt.Errorf("verified with the key %s+%08x, not the one given, %s+%08x", s.Origin, s.KeyHash, key.Name(), key.KeyHash())
	}
	if s.Checkpoint != "" {
		cp, err := anchor.OpenCheckpoint([]byte(s.Checkpoint), key)
		if err != nil {
			return fmt.Errorf("stored %w", err)
		}
		if cp.Size != s.Size || !bytes.Equal(cp.Hash, s.Root) {
			return fmt.Errorf("the stored checkpoint is of size %d root %x, the state says %d root %x", cp.Size, cp.Hash, s.Size, s.Root)
		}
	} else if s.Size != 0 {
		return fmt.Errorf("size %d without a checkpoint", s.Size)
	}
	r, err := s.frontier()
	if err != nil {
		return err
	}
	root, err := rangeRoot(r)
	if err != nil {
		return fmt.Errorf("frontier: %w", err)
	}
	if !bytes.Equal(root, s.Root) {
		return fmt.Errorf("the frontier hashes to %x, not the checkpoint's root %x", root, s.Root)
	}
	if s.Devices == nil {
		s.Devices = map[string]Device{}
	}
	for id, d := range s.Devices {
		if len(d.Key) != ed25519.PublicKeySize || d.Enrolled >= s.Size || (d.Revoked != nil && (*d.Revoked <= d.Enrolled || *d.Revoked >= s.Size)) {
			return fmt.Errorf("device %q: not a device enrolled below size %d", id, s.Size)
		}
		if s.Version != stateVersion1 && d.Kind == "" {
			return fmt.Errorf("device %q: no kind", id)
		}
	}
	return nil
}

// ReadState reads and checks the state of utility's log, whose key is key,
// from the state directory dir. It returns nil and no error if there is
// none yet.
func ReadState(dir, utility string, key note.Verifier) (*State, error) {
	path := statePath(dir, utility)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state of log %s: %w", utility, err)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("state of log %s: %s: %w", utility, path, err)
	}
	if err := s.check(utility, key); err != nil {
		return nil, fmt.Errorf("state of log %s: %s: %w", utility, path, err)
	}
	return &s, nil
}

// writeState replaces the state file of s.Utility in dir atomically.
func writeState(dir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state of log %s: %w", s.Utility, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, logsDir), s.Utility+".json", append(b, '\n')); err != nil {
		return fmt.Errorf("state of log %s: %w", s.Utility, err)
	}
	return nil
}

func statePath(dir, utility string) string { return filepath.Join(dir, logsDir, utility+".json") }

// writeFileAtomic replaces dir/name with data so that, whenever the
// machine stops, the file holds either its old content or data: it writes
// a temporary file in dir, syncs it, renames it over name and syncs dir.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeTemporaries removes what a monitor that was killed left half
// written in dir: never a state, which is renamed into place only once
// complete.
func removeTemporaries(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
