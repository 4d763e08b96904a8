package journal_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
)

// enrollmentLeaf is an enrollment entry's envelope (its signature is not
// the journal's business: tapproof checked it before appending).
func enrollmentLeaf(t *testing.T, d tapproof.Device) []byte {
	t.Helper()
	payload, err := json.Marshal(d.Enrollment())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"payloadType": tapproof.EnrollmentPayloadType, "payload": payload, "signatures": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testDevice(id string) tapproof.Device {
	pub, _, _ := ed25519.GenerateKey(nil)
	return tapproof.Device{ID: id, Utility: "u1", Site: "s1", Kind: tapproof.ASV, PublicKey: pub,
		Firmware: "aa00000000000000000000000000000000000000000000000000000000000000",
		Status:   tapproof.DeviceActive, EnrolledAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
}

// TestRegistryFromTheLog: with a seal key, editing or deleting a device's
// entry in the devices bucket (with broker credentials, not the seal key)
// neither disables nor removes it, an entry added there enrolls nobody, and
// a registry started after its entry was deleted finds the device in the
// log; only a revocation in the log disables it.
func TestRegistryFromTheLog(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.Connect(t, natstest.Server(t))
	j, err := journal.Open(ctx, js, journal.WithSealKey(sealKey))
	if err != nil {
		t.Fatal(err)
	}
	d := testDevice("d1")
	if _, err := j.AppendEnrollment(ctx, "u1", d.ID, enrollmentLeaf(t, d)); err != nil {
		t.Fatal(err)
	}
	reg, err := j.Registry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(ctx, d); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "tapproof_devices")
	if err != nil {
		t.Fatal(err)
	}
	disabled := d
	disabled.Status = tapproof.DeviceDisabled
	forged, _ := json.Marshal(disabled)
	evil := testDevice("evil")
	evilJSON, _ := json.Marshal(evil)
	if _, err := kv.Put(ctx, d.ID, forged); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, evil.ID, evilJSON); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if n := reg.Foreign(); n < 3 {
			return fmt.Errorf("the registry saw %d foreign changes, want 3", n)
		}
		return nil
	})
	if got, ok := reg.Device(d.ID); !ok || got.Status != tapproof.DeviceActive {
		t.Errorf("Device(d1) after its entry was disabled and deleted by hand = %+v, %v; want active", got, ok)
	}
	if _, ok := reg.Device(evil.ID); ok {
		t.Error("a device put into the bucket by hand is enrolled")
	}
	if _, ok := reg.DeviceByKey(evil.PublicKey); ok {
		t.Error("a key put into the bucket by hand is admitted")
	}
	poll.Until(t, 10*time.Second, func() error {
		if e, err := kv.Get(ctx, d.ID); err != nil || string(e.Value()) == string(forged) {
			return fmt.Errorf("d1's entry not written back: %v", err)
		}
		return nil
	})

	// Deleted while no tapproof runs: a new registry finds d1 in the log.
	if err := kv.Purge(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	reg2, err := j.Registry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := reg2.Device(d.ID); !ok || got.Status != tapproof.DeviceActive || !got.PublicKey.Equal(d.PublicKey) {
		t.Errorf("Device(d1) in a registry started after its entry was purged = %+v, %v; want it, active", got, ok)
	}

	// Revoked in the log: disabled, also for a registry started later.
	rec, _ := json.Marshal(tapproof.Revocation{Type: tapproof.RevocationRecordType, Device: d.ID, Utility: "u1", Site: "s1", Reason: "stolen", RevokedAt: time.Now()})
	if _, err := j.AppendRevocation(ctx, "u1", d.ID, rec); err != nil {
		t.Fatal(err)
	}
	reg3, err := j.Registry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := reg3.Device(d.ID); !ok || got.Status != tapproof.DeviceDisabled {
		t.Errorf("Device(d1) after its revocation in the log = %+v, %v; want disabled", got, ok)
	}
}
