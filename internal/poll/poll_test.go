package poll_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tapproof/tapproof/internal/poll"
)

func TestUntil(t *testing.T) {
	n := 0
	poll.Until(t, 5*time.Second, func() error {
		if n++; n < 4 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 4 {
		t.Errorf("f called %d times, want 4", n)
	}
}

// fakeT records a failure instead of stopping the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestUntilFailsWithTheLastError(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != ft {
				panic(r)
			}
		}()
		poll.Until(ft, 50*time.Millisecond, func() error { return errors.New("never") })
	}()
	if ft.failed == "" {
		t.Error("Until did not fail when f never succeeded")
	}
}
