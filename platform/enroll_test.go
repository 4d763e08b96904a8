package platform

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
)

// TestEnrollRefusesLabKind: a certified lab is not a device. A new
// enrollment of kind lab is refused as not_permitted and neither logged nor
// registered; one already registered (enrolled before the refusal) posted
// again is the no-op it always was, so an old devices file still loads.
func TestEnrollRefusesLabKind(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.Connect(t, natstest.Server(t))
	j, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := j.Registry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := &app{journal: j, registry: reg}
	enrollment := func(id string) (tapproof.Device, []byte) {
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		d := tapproof.Device{ID: id, Utility: "u1", Site: "s1", Kind: tapproof.Lab, PublicKey: pub,
			Firmware: strings.Repeat("ab", 32), Status: tapproof.DeviceActive, EnrolledAt: time.Now().UTC().Truncate(time.Second)}
		env, err := signed.SignEnrollment(ctx, key, d.Enrollment())
		if err != nil {
			t.Fatal(err)
		}
		return d, env
	}

	_, env := enrollment("lab-dev")
	_, err = p.Enroll(ctx, env)
	if rej, ok := errors.AsType[*tapproof.Rejection](err); !ok || rej.Reason != tapproof.ReasonNotPermitted {
		t.Fatalf("Enroll(kind lab) = %v, want a %s rejection", err, tapproof.ReasonNotPermitted)
	}
	if _, ok := reg.Device("lab-dev"); ok {
		t.Error("the refused lab-kind device is in the registry")
	}
	if _, err := j.Enrollment(ctx, "u1", "lab-dev"); err == nil {
		t.Error("the refused lab-kind enrollment is in the journal")
	}

	old, env := enrollment("old-lab-dev")
	if err := reg.Put(ctx, old); err != nil {
		t.Fatal(err)
	}
	got, err := p.Enroll(ctx, env)
	if err != nil || got.ID != old.ID || got.Kind != tapproof.Lab {
		t.Errorf("Enroll(an enrollment already registered) = %+v, %v; want the registered device, no error", got, err)
	}
}
