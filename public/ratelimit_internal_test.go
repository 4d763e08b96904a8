package public

import (
	"net/netip"
	"testing"
	"time"
)

// TestLimiterMemoryBounded: a limiter forgets a client once its bucket is
// full again, never before, and tracks at most its maximum of clients,
// refusing a new one while all are still in use.
func TestLimiterMemoryBounded(t *testing.T) {
	l := newLimiter("read", RateLimit{Every: time.Second, Burst: 2}, 3)
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	client := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32)
	}
	for i := range 3 {
		for range 2 { // its whole burst
			if ok, _ := l.allow(client(i), t0); !ok {
				t.Fatalf("client %d refused within its burst", i)
			}
		}
	}
	// At the cap a new client is admitted in the place of another: the
	// cap bounds memory, it shuts nobody out.
	if ok, _ := l.allow(client(3), t0); !ok {
		t.Errorf("a 4th client with 3 tracked was refused")
	}
	if n := l.tracked(); n != 3 {
		t.Errorf("tracked = %d, want 3", n)
	}
	l = newLimiter("read", RateLimit{Every: time.Second, Burst: 2}, 3)
	for i := range 3 {
		for range 2 {
			l.allow(client(i), t0)
		}
	}
	// Client 0 keeps using its tokens: it stays tracked; the others are
	// full again after a refill and forgotten at the next sweep (at the
	// cap, at most one a second: the last was at 1.9 s).
	if ok, _ := l.allow(client(0), t0.Add(1900*time.Millisecond)); !ok {
		t.Fatal("client 0 refused with a token back")
	}
	if ok, _ := l.allow(client(3), t0.Add(2950*time.Millisecond)); !ok {
		t.Errorf("a new client after the idle ones' buckets refilled was refused")
	}
	if n := l.tracked(); n != 2 {
		t.Errorf("tracked = %d, want 2 (client 0 in use, client 3 new)", n)
	}
	// Client 0 has one token, not the two of a new client.
	if ok, _ := l.allow(client(0), t0.Add(2950*time.Millisecond)); !ok {
		t.Errorf("client 0 refused with a token")
	}
	if ok, _ := l.allow(client(0), t0.Add(2950*time.Millisecond)); ok {
		t.Errorf("client 0 admitted twice: it was forgotten with its bucket not full")
	}
}
