package tapproof

// Leaf is one entry of a utility's log: its index, from 0, and its bytes,
// exactly as logged (a DSSE envelope, or a record tapproof wrote). In JSON,
// as the API serves leaves and `tapproof compliance --leaves` reads them,
// {"index":N,"leaf":"<base64>"}.
type Leaf struct {
	Index uint64 `json:"index"`
	Bytes []byte `json:"leaf"`
}
