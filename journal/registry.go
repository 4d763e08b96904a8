package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
)

// Registry is the device registry: the devices bucket, with an in-memory
// copy kept current by a watch so ingest never waits on a lookup.
type Registry struct {
	kv jetstream.KeyValue

	mu      sync.RWMutex
	devices map[string]tapproof.Device
	byKey   map[string]string // public key bytes -> device id
	ready   chan struct{}
}

// Registry starts watching the devices bucket and returns once the current
// devices are loaded. The watch stops when ctx is done.
func (j *Journal) Registry(ctx context.Context) (*Registry, error) {
	r := &Registry{kv: j.devices, devices: map[string]tapproof.Device{}, byKey: map[string]string{}, ready: make(chan struct{})}
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
			r.mu.Lock()
			if e.Operation() != jetstream.KeyValuePut {
				if old, ok := r.devices[e.Key()]; ok {
					delete(r.byKey, string(old.PublicKey))
				}
				delete(r.devices, e.Key())
			} else {
				var d tapproof.Device
				if json.Unmarshal(e.Value(), &d) == nil {
					r.setLocked(d)
				}
			}
			r.mu.Unlock()
		}
	}
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
// have appended d's enrollment to the journal first.
func (r *Registry) Put(ctx context.Context, d tapproof.Device) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode device: %w", err)
	}
	if _, err := r.kv.Put(ctx, d.ID, b); err != nil {
		return fmt.Errorf("store device %s: %w", d.ID, err)
	}
	r.mu.Lock()
	r.setLocked(d)
	r.mu.Unlock()
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
