package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Kind is what a finding found.
type Kind string

// Kinds of finding. The first three concern the log as a whole and stop the
// monitor's state where it was until the log is consistent with it again;
// the leaf kinds do not.
const (
	// KindFork: the log signed a checkpoint that does not extend the one
	// stored: the same size with another root, or a larger tree whose
	// consistency proof from the stored one does not verify. The two
	// checkpoints, signed by the log's key, are the evidence.
	KindFork Kind = "fork"
	// KindRollback: the log's latest checkpoint is smaller than the one
	// stored.
	KindRollback Kind = "rollback"
	// KindInconsistentLeaves: the consistency proof verified, but the
	// leaves the server serves do not hash, from the stored frontier, to
	// the new checkpoint's root, or are not served at their index: it
	// serves leaves other than those its checkpoint commits to.
	KindInconsistentLeaves Kind = "inconsistent_leaves"
	// KindBadLeaf: a leaf that is not a well-formed tapproof entry, or
	// whose content contradicts the log (a reading of another utility or
	// site than its device's enrollment, say).
	KindBadLeaf Kind = "bad_leaf"
	// KindBadSignature: a signature that does not verify with the key it
	// must be by: a reading's with its device's enrolled key, an
	// enrollment's with the key it enrolls, a lab sample's or
	// invalidation's with the keys of its lab or reviewer.
	KindBadSignature Kind = "bad_signature"
	// KindUnattributable: an entry no key given or enrolled accounts for:
	// a reading of a device not enrolled earlier in the log, or revoked
	// before it; a lab sample or invalidation of a lab or reviewer with
	// no key when keys were given for that role.
	KindUnattributable Kind = "unattributable_leaf"
	// KindWitnessPolicy: the checkpoint lacks cosignatures the witness
	// policy asks for.
	KindWitnessPolicy Kind = "witness_policy"
	// KindStale: the log has shown no larger checkpoint for longer than
	// Config.StaleAfter. Reported once per episode.
	KindStale Kind = "stale"
	// KindUndetermined: a monitoring period the log's lab samples leave
	// undetermined (compliance.Undetermined): some reductions of a
	// collection event with more samples than the rule expects exceed the
	// action level, others do not, until a state reviewer's invalidation
	// decides it. Reported once per stretch of the log during which the
	// period was undetermined, with the leaf that began it; the message
	// says whether it is still undetermined.
	KindUndetermined Kind = "compliance_undetermined"
	// KindForeignEntry: a set-aside record with reason unsealed
	// (tapproof.SetAsideUnsealed): the utility's journal held, at that
	// index, an entry without the seal tapproof puts on every entry it
	// writes, so someone with broker credentials wrote where only tapproof
	// should. The entry is not in the log; the finding carries the
	// record's reason and the SHA-256 of the entry's bytes, which the
	// utility must be able to produce.
	KindForeignEntry Kind = "foreign_entry"
	// KindUndecodableEntry: a set-aside record with reason undecodable
	// (tapproof.SetAsideUndecodable): a sealed journal entry that did not
	// decode, which tapproof's own writer never makes.
	KindUndecodableEntry Kind = "undecodable_entry"
	// KindNotPermitted: a reading its device's enrollment does not permit
	// (tapproof.Reading.PermittedFor): a method other than the enrolled
	// kind, an analyte that method cannot measure (a NIRS device's lead),
	// or a reading by method lab; and an enrollment of a device of kind
	// lab (tapproof.Device.Enrollable), whose every reading is such a
	// finding. Ingest refuses both now, so one in the log was accepted
	// before it did, or written past ingest.
	KindNotPermitted Kind = "not_permitted"
)

// Kinds lists the kinds, for pre-initialising metrics.
var Kinds = []Kind{KindFork, KindRollback, KindInconsistentLeaves, KindBadLeaf, KindBadSignature, KindUnattributable, KindWitnessPolicy, KindStale, KindUndetermined,
	KindForeignEntry, KindUndecodableEntry, KindNotPermitted}

// blocking reports whether a finding of kind k keeps the state from
// advancing.
func (k Kind) blocking() bool {
	return k == KindFork || k == KindRollback || k == KindInconsistentLeaves
}

// Finding is one thing found wrong with a log. As finding.json, and as the
// body POSTed to the webhook, it is this struct in JSON.
type Finding struct {
	Kind    Kind      `json:"kind"`
	Log     string    `json:"log"`    // the utility
	Origin  string    `json:"origin"` // the log's checkpoint origin
	At      time.Time `json:"at"`     // when the monitor found it
	Message string    `json:"message"`

	// The stored (last verified) checkpoint's tree, and the new one's.
	StoredSize uint64 `json:"stored_size"`
	StoredRoot []byte `json:"stored_root,omitempty"`
	NewSize    uint64 `json:"new_size"`
	NewRoot    []byte `json:"new_root,omitempty"`

	// Leaf findings: the leaf, its type and the device, lab or reviewer
	// it names, and for a reading the leaf of its device's enrollment.
	Leaf       *uint64 `json:"leaf_index,omitempty"`
	LeafType   string  `json:"leaf_type,omitempty"`
	Signer     string  `json:"signer,omitempty"`
	Enrollment *uint64 `json:"enrollment_index,omitempty"`
	// SetAsideReason and EntrySHA256 are, for a foreign_entry or
	// undecodable_entry finding, the set-aside record's reason and the
	// hex SHA-256 it carries of the journal entry set aside.
	SetAsideReason string `json:"set_aside_reason,omitempty"`
	EntrySHA256    string `json:"entry_sha256,omitempty"`
	// MoreLeaves lists further leaves with a finding of this kind in
	// the same batch, beyond those saved one by one.
	MoreLeaves []uint64 `json:"more_leaves,omitempty"`

	// Missing and Cosigned name the witnesses of a witness_policy
	// finding.
	Missing  []string `json:"missing_witnesses,omitempty"`
	Cosigned []string `json:"cosigned_witnesses,omitempty"`

	// Evidence is the directory the evidence was saved in, and Files the
	// files in it.
	Evidence string   `json:"evidence,omitempty"`
	Files    []string `json:"files,omitempty"`

	storedCP, newCP []byte
	proof           [][]byte
	hasProof        bool
	leaf            []byte
}

// Evidence file names.
const (
	fileFinding    = "finding.json"
	fileStoredCP   = "stored-checkpoint.txt"
	fileNewCP      = "new-checkpoint.txt"
	fileProof      = "consistency-proof.json"
	leafFilePrefix = "leaf-"
)

// consistencyProofFile is consistency-proof.json: the proof as the API
// serves it (httpapi.ConsistencyProof).
type consistencyProofFile struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes [][]byte `json:"hashes"`
}

// dirTimeFormat names evidence directories: UTC, sortable, no colons.
const dirTimeFormat = "20060102T150405.000000000Z"

// saveEvidence writes f's evidence in a new directory of
// STATE/findings, named <UTC time>-<utility>-<kind>, and sets f.Evidence
// and f.Files. The directory is written under a temporary name and
// renamed into place complete.
func saveEvidence(stateDir string, f *Finding) error {
	root := filepath.Join(stateDir, findingsDir)
	tmp, err := os.MkdirTemp(root, tmpPrefix)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	files := map[string][]byte{}
	if f.storedCP != nil {
		files[fileStoredCP] = f.storedCP
	}
	if f.newCP != nil {
		files[fileNewCP] = f.newCP
	}
	if f.hasProof {
		hashes := f.proof
		if hashes == nil {
			hashes = [][]byte{}
		}
		b, err := json.MarshalIndent(consistencyProofFile{From: f.StoredSize, To: f.NewSize, Hashes: hashes}, "", "  ")
		if err != nil {
			return err
		}
		files[fileProof] = append(b, '\n')
	}
	if f.leaf != nil && f.Leaf != nil {
		files[leafFilePrefix+strconv.FormatUint(*f.Leaf, 10)+".bin"] = f.leaf
	}
	f.Files = []string{fileFinding}
	for _, name := range []string{fileStoredCP, fileNewCP, fileProof} {
		if _, ok := files[name]; ok {
			f.Files = append(f.Files, name)
		}
	}
	if f.Leaf != nil && f.leaf != nil {
		f.Files = append(f.Files, leafFilePrefix+strconv.FormatUint(*f.Leaf, 10)+".bin")
	}
	base := f.At.UTC().Format(dirTimeFormat) + "-" + f.Log + "-" + string(f.Kind)
	err = func() error {
		for name, b := range files {
			if err := writeSynced(filepath.Join(tmp, name), b); err != nil {
				return err
			}
		}
		// The first of base, base-2, base-3... that is free; finding.json
		// names it.
		for n := 1; ; n++ {
			name := base
			if n > 1 {
				name += "-" + strconv.Itoa(n)
			}
			dir := filepath.Join(root, name)
			if _, err := os.Lstat(dir); err == nil {
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			f.Evidence = dir
			b, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				return err
			}
			if err := writeSynced(filepath.Join(tmp, fileFinding), append(b, '\n')); err != nil {
				return err
			}
			if err := os.Rename(tmp, dir); err != nil {
				if errors.Is(err, fs.ErrExist) {
					continue // taken since
				}
				return err
			}
			return syncDir(root)
		}
	}()
	if err != nil {
		os.RemoveAll(tmp)
		f.Evidence, f.Files = "", nil
		return fmt.Errorf("evidence of %s finding on log %s: %w", f.Kind, f.Log, err)
	}
	return nil
}

// writeSynced writes a new file and syncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
