package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
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

// Checkpoints stores the signed checkpoints of one utility's log. It
// satisfies anchor's checkpoint store.
//
// Publishing is guarded by optimistic concurrency: a checkpoint is stored
// only if the latest one is still the one LatestCheckpoint last returned, so
// two writers can never interleave an older checkpoint after a newer one.
type Checkpoints struct {
	js      jetstream.JetStream
	utility string

	mu      sync.Mutex
	lastSeq uint64 // stream sequence of the latest checkpoint seen
}

// Checkpoints returns the checkpoint store of utility's log.
func (j *Journal) Checkpoints(utility string) *Checkpoints {
	return &Checkpoints{js: j.js, utility: utility}
}

// subject is the one subject of every checkpoint of the log; the size is
// in a header.
func (c *Checkpoints) subject() string {
	return CheckpointsSubject + "." + c.utility
}

// LatestCheckpoint returns the newest signed checkpoint, or nil if none.
func (c *Checkpoints) LatestCheckpoint(ctx context.Context, _ string) ([]byte, error) {
	m, err := c.get(ctx, 0)
	if errors.Is(err, tapproof.ErrNotFound) {
		c.setLast(0)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.setLast(m.Sequence)
	return m.Data, nil
}

func (c *Checkpoints) setLast(seq uint64) {
	c.mu.Lock()
	c.lastSeq = seq
	c.mu.Unlock()
}

// Checkpoint returns the signed checkpoint published at size.
func (c *Checkpoints) Checkpoint(ctx context.Context, size uint64) ([]byte, error) {
	m, err := c.get(ctx, size)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// get returns the checkpoint of size, or the latest if size is 0.
func (c *Checkpoints) get(ctx context.Context, size uint64) (*jetstream.RawStreamMsg, error) {
	s, err := c.js.Stream(ctx, CheckpointsStream)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	var m *jetstream.RawStreamMsg
	if size == 0 {
		m, err = s.GetLastMsgForSubject(ctx, c.subject())
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			err = tapproof.ErrNotFound
		}
	} else {
		m, err = search(ctx, s, c.subject(), HeaderSize, size, anyMsg)
	}
	if errors.Is(err, tapproof.ErrNotFound) {
		return nil, fmt.Errorf("checkpoint %d of %s: %w", size, c.utility, tapproof.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d of %s: %w", size, c.utility, err)
	}
	return m, nil
}

// PutCheckpoint publishes a signed checkpoint of size. Witnesses and
// monitors may subscribe to tapproof.checkpoints.> to follow every log.
// It fails with tapproof.ErrConflict if another checkpoint was published since
// LatestCheckpoint was last called.
func (c *Checkpoints) PutCheckpoint(ctx context.Context, _ string, size uint64, signed []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &nats.Msg{
		Subject: c.subject(),
		Data:    signed,
		Header: nats.Header{
			HeaderSize:                          []string{strconv.FormatUint(size, 10)},
			jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(c.lastSeq, 10)},
		},
	}
	ack, err := c.js.PublishMsg(ctx, m)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return fmt.Errorf("publish checkpoint %d of %s: another checkpoint was published first: %w", size, c.utility, tapproof.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("publish checkpoint: %w", err)
	}
	c.lastSeq = ack.Sequence
	return nil
}
