package alerts_test

import (
	"testing"
	"time"

	"github.com/tapproof/tapproof/alerts"
)

func TestSign(t *testing.T) {
	// Computed independently: printf '{"id":"x"}' | openssl dgst -sha256 -hmac s3cr3t
	const want = "sha256=b4427a71020bc4d9e3d7a774077437efad88155eb9f5c6716033d4af7e300c3e"
	got := alerts.Sign("s3cr3t", []byte(`{"id":"x"}`))
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if !alerts.Verify("s3cr3t", []byte(`{"id":"x"}`), got) {
		t.Errorf("Verify(Sign(...)) = false")
	}
	if alerts.Verify("other", []byte(`{"id":"x"}`), got) || alerts.Verify("s3cr3t", []byte(`{"id":"y"}`), got) {
		t.Errorf("Verify accepts a wrong secret or body")
	}
}

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		r       alerts.Retry
		attempt uint64
		want    time.Duration
	}{
		{alerts.Retry{}, 1, alerts.DefaultMinBackoff},
		{alerts.Retry{}, 2, 2 * alerts.DefaultMinBackoff},
		{alerts.Retry{}, 8, 640 * time.Second},
		{alerts.Retry{}, 9, alerts.DefaultMaxBackoff},
		{alerts.Retry{}, 100, alerts.DefaultMaxBackoff},
		{alerts.Retry{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, 1, 50 * time.Millisecond},
		{alerts.Retry{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, 3, 200 * time.Millisecond},
		{alerts.Retry{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, 4, 200 * time.Millisecond},
		// A max below the default min caps the min; a min above the default
		// max raises the max.
		{alerts.Retry{MaxBackoff: time.Second}, 1, time.Second},
		{alerts.Retry{MinBackoff: time.Hour}, 3, time.Hour},
	}
	for _, tt := range tests {
		if got := tt.r.Backoff(tt.attempt); got != tt.want {
			t.Errorf("%+v.Backoff(%d) = %v, want %v", tt.r, tt.attempt, got, tt.want)
		}
	}
	if got := (alerts.Retry{}).Attempts(); got != alerts.DefaultMaxDeliver {
		t.Errorf("Retry{}.Attempts() = %d, want %d", got, alerts.DefaultMaxDeliver)
	}
	if got := (alerts.Retry{MaxDeliver: 3}).Attempts(); got != 3 {
		t.Errorf("Retry{MaxDeliver: 3}.Attempts() = %d, want 3", got)
	}
}

func TestRetryValidate(t *testing.T) {
	for _, tt := range []struct {
		r  alerts.Retry
		ok bool
	}{
		{alerts.Retry{}, true},
		{alerts.Retry{MaxDeliver: 3, MinBackoff: time.Second, MaxBackoff: time.Minute}, true},
		{alerts.Retry{MaxDeliver: -1}, false},
		{alerts.Retry{MinBackoff: -time.Second}, false},
		{alerts.Retry{MinBackoff: time.Minute, MaxBackoff: time.Second}, false},
	} {
		if err := tt.r.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", tt.r, err, tt.ok)
		}
	}
}
