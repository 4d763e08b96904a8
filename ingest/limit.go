package ingest

import (
	"sync"

	"golang.org/x/time/rate"
)

// limiter bounds how fast each publisher, known by the subject it publishes
// on, may send. A device may publish only on its own subject, so there is
// one limit per enrolled device, lab or reviewer.
type limiter struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: burst, m: map[string]*rate.Limiter{}}
}

// allow reports whether the publisher of subject is within its rate, and
// counts the message against it.
func (l *limiter) allow(subject string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.m[subject]
	if !ok {
		r = rate.NewLimiter(l.rate, l.burst)
		l.m[subject] = r
	}
	return r.Allow()
}

// decided holds, per device, the highest sequence number this process knows
// is decided: journaled by ingest, found at the head of the journal, or
// checked by the alert lane. It lets the lane tell a replay without asking
// the journal. Only the replica leading a utility runs its ingest and
// lane, and the lane forgets everything when it starts (a replica that led before may have
// been followed by another), so what it holds is never behind the journal
// by more than the readings it is deciding itself.
type decided struct {
	mu sync.Mutex
	m  map[string]uint64 // utility.device -> sequence number
}

// reset forgets every device.
func (d *decided) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m = nil
}

func (d *decided) get(utility, device string) (uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq, ok := d.m[utility+"."+device]
	return seq, ok
}

// raise records seq for the device if it is above what is known.
func (d *decided) raise(utility, device string, seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]uint64{}
	}
	k := utility + "." + device
	if cur, ok := d.m[k]; !ok || seq > cur {
		d.m[k] = seq
	}
}
