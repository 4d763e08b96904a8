// Package poll waits, in tests, for something that happens in the
// background: a reading to land, a checkpoint to cover it, an alert to
// arrive.
package poll

import (
	"testing"
	"time"
)

// Until calls f until it returns nil, and fails t with f's last error if
// that has not happened within total. It polls at once, then after 10 ms,
// doubling the wait up to 200 ms: quick when the answer is quick, gentle on
// the servers under test when it is not.
func Until(t testing.TB, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
}
