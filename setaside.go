package tapproof

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// SetAsideRecordType is the "type" of a set-aside record.
const SetAsideRecordType = "tapproof.set-aside.v1"

// Why a journal entry was set aside instead of anchored.
const (
	// SetAsideUnsealed: the entry lacks the seal ingest puts on every entry
	// it writes, so tapproof did not write it.
	SetAsideUnsealed = "unsealed"
	// SetAsideUndecodable: the entry is sealed but does not decode.
	SetAsideUndecodable = "undecodable"
)

// SetAsideReasons lists the reasons, for pre-initialising metrics.
var SetAsideReasons = []string{SetAsideUnsealed, SetAsideUndecodable}

// SetAside is the leaf the log holds at the index of a journal entry that
// was set aside: the index stays taken, so every later leaf keeps its
// index, and the log shows, for anyone to see, that something tapproof
// did not write was found in its journal, with the digest of its bytes.
// The bytes themselves stay in the journal for an operator to inspect;
// they never enter the public log.
type SetAside struct {
	Type   string `json:"type"` // SetAsideRecordType
	Index  uint64 `json:"index"`
	Reason string `json:"reason"`
	SHA256 string `json:"sha256"` // of the entry's bytes
}

// SetAsideLeaf returns the leaf that takes the place of the entry of data
// at index, set aside for reason. The same inputs give the same bytes, so
// anchoring it again after a crash changes nothing.
func SetAsideLeaf(index uint64, reason string, data []byte) []byte {
	sum := sha256.Sum256(data)
	b, _ := json.Marshal(SetAside{Type: SetAsideRecordType, Index: index, Reason: reason, SHA256: hex.EncodeToString(sum[:])})
	return b
}
