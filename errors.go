package tapproof

import "errors"

// The errors every package of tapproof wraps, so that a caller, the HTTP
// API included, tells the cases apart with errors.Is whichever store
// answered.
var (
	// ErrNotFound: the entry, device, log or checkpoint does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a write conflicts with what is recorded (another
	// writer moved first, or the same id was recorded with other
	// details).
	ErrConflict = errors.New("conflicts with what is recorded")
	// ErrNotYetAnchored: the entry exists, but no checkpoint published
	// yet covers it.
	ErrNotYetAnchored = errors.New("not yet covered by a published checkpoint")
)
