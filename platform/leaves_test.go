package platform

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A page of leaves waits for a free slot and, past its request's
// deadline, gives up without reading anything (the API answers 503 with
// Retry-After), so strangers paging through a log at once cannot make a
// replica read more than maxLeafReads pages together.
func TestLeafReadsBounded(t *testing.T) {
	l := logLeaves{slots: make(chan struct{}, 1)}
	l.slots <- struct{}{} // the one slot is taken
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	// ul is nil: reading anything would panic.
	if _, err := l.read(ctx, 0, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with every slot taken = %v, want the request's deadline", err)
	}
}
