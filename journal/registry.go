package journal

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// Registry is the device registry: the devices bucket, with an in-memory
// copy kept current by a watch so ingest never waits on a lookup.
//
// With a seal key the log, not the bucket, is the registry's truth: at
// start the registry is derived from every log's sealed enrollments and
// revocations, in log order, and a bucket value counts only if it carries
// a valid seal (an HMAC of the device's record under the seal key, written
// by Put). So nobody holding only broker credentials can silence a device
// by editing or deleting its entry, nor add one: a value without a valid
// seal is ignored, a deletion changes nothing, and both are counted by
// Foreign and undone from the registry's own copy.
type Registry struct {
	kv jetstream.KeyValue
	j  *Journal

	mu      sync.RWMutex
	devices map[string]tapproof.Device
	byKey   map[string]string // public key bytes -> device id
	ready   chan struct{}
	foreign atomic.Uint64
}

// sealedDevice is a devices bucket value written with a seal key.
type sealedDevice struct {
	Device json.RawMessage `json:"device"`
	Seal   string          `json:"seal"`
}

// Registry starts watching the devices bucket and returns once the current
// devices are loaded. The watch stops when ctx is done.
func (j *Journal) Registry(ctx context.Context) (*Registry, error) {
	r := &Registry{kv: j.devices, j: j, devices: map[string]tapproof.Device{}, byKey: map[string]string{}, ready: make(chan struct{})}
	if j.sealKey != nil {
		if err := r.deriveFromLogs(ctx); err != nil {
			return nil, err
		}
	}
	w, err := j.devices.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch devices: %w", err)
	}
	go r.watch(ctx, w)
	select {
	case <-r.ready:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		return nil, errors.New("watch devices: no initial state after 30s")
	}
}

// Foreign returns how many devices bucket values or deletions the registry
// ignored because tapproof did not write them.
func (r *Registry) Foreign() uint64 { return r.foreign.Load() }

func (r *Registry) watch(ctx context.Context, w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	once := sync.OnceFunc(func() { close(r.ready) })
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // initial values delivered
				once()
				continue
			}
			r.apply(ctx, e)
		}
	}
}

// apply takes one change of the devices bucket into the registry.
func (r *Registry) apply(ctx context.Context, e jetstream.KeyValueEntry) {
	sealing := r.j.sealKey != nil
	if e.Operation() != jetstream.KeyValuePut {
		if sealing {
			// tapproof never deletes a device: a revocation is a status.
			r.foreign.Add(1)
			r.restore(ctx, e.Key())
			return
		}
		r.mu.Lock()
		if old, ok := r.devices[e.Key()]; ok {
			delete(r.byKey, string(old.PublicKey))
		}
		delete(r.devices, e.Key())
		r.mu.Unlock()
		return
	}
	d, ok := r.decode(e.Key(), e.Value())
	if !ok {
		if sealing {
			r.foreign.Add(1)
			r.restore(ctx, e.Key())
		}
		return
	}
	r.mu.Lock()
	r.setLocked(d)
	r.mu.Unlock()
}

// restore writes the registry's own record of device id back to the
// bucket, if it has one.
func (r *Registry) restore(ctx context.Context, id string) {
	r.mu.RLock()
	d, ok := r.devices[id]
	r.mu.RUnlock()
	if ok {
		_ = r.store(ctx, d) // best effort: the in-memory copy decides
	}
}

// decode returns the device a bucket value holds, and false if it is not
// one tapproof wrote: without a seal key any device record; with one, only
// a record whose seal verifies.
func (r *Registry) decode(id string, value []byte) (tapproof.Device, bool) {
	var d tapproof.Device
	if r.j.sealKey == nil {
		return d, json.Unmarshal(value, &d) == nil && d.ID == id
	}
	var sd sealedDevice
	if json.Unmarshal(value, &sd) != nil || sd.Seal == "" {
		return d, false
	}
	if !hmac.Equal([]byte(sd.Seal), []byte(r.j.deviceMAC(id, sd.Device))) {
		return d, false
	}
	return d, json.Unmarshal(sd.Device, &d) == nil && d.ID == id
}

// deviceMAC is the base64 HMAC of device id's record.
func (j *Journal) deviceMAC(id string, record []byte) string {
	mac := hmac.New(sha256.New, j.sealKey)
	field(mac, []byte(devicesBucket))
	field(mac, []byte(id))
	field(mac, record)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// deriveFromLogs loads every device from the sealed enrollments and
// revocations of every log, in log order, and writes back to the bucket
// each whose value there is not the same sealed record.
func (r *Registry) deriveFromLogs(ctx context.Context) error {
	names := r.j.js.StreamNames(ctx, jetstream.WithStreamListSubject(logSubject+".>"))
	var streams []string
	for n := range names.Name() {
		if strings.HasPrefix(n, logStreamPrefix) {
			streams = append(streams, n)
		}
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("registry from the logs: %w", err)
	}
	for _, name := range streams {
		if err := r.deriveFromLog(ctx, strings.TrimPrefix(name, logStreamPrefix)); err != nil {
			return err
		}
	}
	for _, d := range r.Devices() {
		if e, err := r.kv.Get(ctx, d.ID); err == nil {
			if got, ok := r.decode(d.ID, e.Value()); ok && got.Status == d.Status && ed25519.PublicKey.Equal(got.PublicKey, d.PublicKey) {
				continue
			}
		}
		if err := r.store(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// deriveFromLog applies the sealed enrollments and revocations of
// utility's log to the registry, in log order.
func (r *Registry) deriveFromLog(ctx context.Context, utility string) error {
	s, err := r.j.logStream(ctx, utility, false)
	if err != nil {
		return fmt.Errorf("registry from the log of %s: %w", utility, err)
	}
	prefix := logSubject + "." + utility + "."
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + string(KindEnrollment) + ".*", prefix + string(KindRevocation) + ".*"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("registry from the log of %s: %w", utility, err)
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("registry from the log of %s: %w", utility, err)
	}
	defer it.Stop()
	for {
		next, cancel := context.WithTimeout(ctx, complianceStall)
		m, err := it.Next(jetstream.NextContext(next))
		cancel()
		if err != nil {
			return fmt.Errorf("registry from the log of %s: %w", utility, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("registry from the log of %s: %w", utility, err)
		}
		if r.j.sealed(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data()) {
			r.applyLogged(utility, m.Subject(), m.Data())
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// applyLogged applies one sealed enrollment or revocation entry.
func (r *Registry) applyLogged(utility, subject string, data []byte) {
	tok := strings.Split(subject, ".")
	if len(tok) != 5 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch Kind(tok[3]) {
	case KindEnrollment:
		en, ok := enrollmentOf(data)
		if !ok || en.Device != tok[4] || en.Utility != utility {
			return
		}
		r.setLocked(tapproof.Device{ID: en.Device, Utility: en.Utility, Site: en.Site, Kind: en.Kind, PublicKey: en.PublicKey,
			Firmware: en.Firmware, Status: tapproof.DeviceActive, EnrolledAt: en.EnrolledAt})
	case KindRevocation:
		if d, ok := r.devices[tok[4]]; ok && d.Utility == utility {
			d.Status = tapproof.DeviceDisabled
			r.setLocked(d)
		}
	}
}

// enrollmentOf returns the enrollment an enrollment entry's DSSE envelope
// carries. The entry is sealed: tapproof verified the envelope's signature
// before it appended it.
func enrollmentOf(leaf []byte) (tapproof.Enrollment, bool) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"` // base64
	}
	var en tapproof.Enrollment
	if json.Unmarshal(leaf, &env) != nil || env.PayloadType != tapproof.EnrollmentPayloadType {
		return en, false
	}
	return en, json.Unmarshal(env.Payload, &en) == nil && en.Device != ""
}

// Device returns the enrolled device with id.
func (r *Registry) Device(id string) (tapproof.Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devices[id]
	return d, ok
}

// DeviceByKey returns the enrolled device whose key is pub.
func (r *Registry) DeviceByKey(pub []byte) (tapproof.Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.byKey[string(pub)]
	if !ok {
		return tapproof.Device{}, false
	}
	d, ok := r.devices[id]
	return d, ok
}

func (r *Registry) setLocked(d tapproof.Device) {
	if old, ok := r.devices[d.ID]; ok {
		delete(r.byKey, string(old.PublicKey))
	}
	r.devices[d.ID] = d
	r.byKey[string(d.PublicKey)] = d.ID
}

// Devices returns every enrolled device, sorted by id.
func (r *Registry) Devices() []tapproof.Device {
	r.mu.RLock()
	out := make([]tapproof.Device, 0, len(r.devices))
	for _, d := range r.devices {
		out = append(out, d)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out
}

// Put stores d, read back by Device once the watch sees it. The caller must
// have appended d's enrollment (or revocation) to the journal first.
func (r *Registry) Put(ctx context.Context, d tapproof.Device) error {
	if err := r.store(ctx, d); err != nil {
		return err
	}
	r.mu.Lock()
	r.setLocked(d)
	r.mu.Unlock()
	return nil
}

// store writes d to the bucket, sealed if the journal seals.
func (r *Registry) store(ctx context.Context, d tapproof.Device) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode device: %w", err)
	}
	if r.j.sealKey != nil {
		if b, err = json.Marshal(sealedDevice{Device: b, Seal: r.j.deviceMAC(d.ID, b)}); err != nil {
			return fmt.Errorf("encode device: %w", err)
		}
	}
	if _, err := r.kv.Put(ctx, d.ID, b); err != nil {
		return fmt.Errorf("store device %s: %w", d.ID, err)
	}
	return nil
}

// LogInfo is the identity of a utility's log.
type LogInfo struct {
	Utility string `json:"utility"`
	TreeID  int64  `json:"tree_id"`
	// Origin is the checkpoint origin line, and the note key's name.
	Origin string `json:"origin"`
	// VerifierKey is the note verifier key regulators check checkpoints with.
	VerifierKey string    `json:"verifier_key"`
	CreatedAt   time.Time `json:"created_at"`
}

// Log returns the identity of utility's log.
func (j *Journal) Log(ctx context.Context, utility string) (LogInfo, error) {
	var li LogInfo
	e, err := j.logs.Get(ctx, utility)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return li, fmt.Errorf("log of %s: %w", utility, tapproof.ErrNotFound)
	}
	if err != nil {
		return li, fmt.Errorf("log of %s: %w", utility, err)
	}
	return li, json.Unmarshal(e.Value(), &li)
}

// Logs returns every log, sorted by utility.
func (j *Journal) Logs(ctx context.Context) ([]LogInfo, error) {
	keys, err := j.logs.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list logs: %w", err)
	}
	var out []LogInfo
	for k := range keys.Keys() {
		li, err := j.Log(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, li)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Utility < out[k].Utility })
	return out, nil
}

// CreateLog records a new log. It fails if utility already has one.
func (j *Journal) CreateLog(ctx context.Context, li LogInfo) error {
	b, err := json.Marshal(li)
	if err != nil {
		return fmt.Errorf("encode log: %w", err)
	}
	if _, err := j.logs.Create(ctx, li.Utility, b); err != nil {
		return fmt.Errorf("create log of %s: %w", li.Utility, err)
	}
	return j.EnsureLogStream(ctx, li.Utility)
}
