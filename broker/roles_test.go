package broker_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/journal"
)

// roles is a broker whose service user has set up what tapproof serve
// does: a utility's journal with one entry, the device registry with one
// device.
type roles struct {
	b       *natstest.Broker
	journal string // the journal stream
	subject string // a journal subject
	device  tapproof.Device
}

func newRoles(t *testing.T, start func(testing.TB) *natstest.Broker) *roles {
	t.Helper()
	b := start(t)
	ctx := t.Context()
	_, js := b.JetStream(t)
	j, err := journal.Open(ctx, js)
	if err != nil {
		t.Fatalf("service: open the journal: %v", err)
	}
	if _, err := j.AppendEnrollment(ctx, "u1", "dev-1", []byte("enrollment")); err != nil {
		t.Fatalf("service: append to the journal: %v", err)
	}
	reg, err := j.Registry(ctx)
	if err != nil {
		t.Fatalf("service: open the registry: %v", err)
	}
	d := tapproof.Device{ID: "dev-1", Utility: "u1", Site: "s1", Kind: tapproof.ASV, PublicKey: newKey(t).Public().(ed25519.PublicKey),
		Status: tapproof.DeviceActive}
	if err := reg.Put(ctx, d); err != nil {
		t.Fatalf("service: put a device in the registry: %v", err)
	}
	return &roles{b: b, journal: journal.LogStreamName("u1"), subject: "tapproof.log.u1.r.dev-1", device: d}
}

// refusedPublish publishes subj as nc and waits for the server's
// permissions violation naming it.
func refusedPublish(t *testing.T, nc *nats.Conn, e *errs, subj string) {
	t.Helper()
	if err := nc.Publish(subj, []byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	e.wait(t, fmt.Sprintf("permissions violation for publish to %q", subj))
}

// refusedSubscribe subscribes to subj as nc and waits for the server's
// permissions violation naming it.
func refusedSubscribe(t *testing.T, nc *nats.Conn, e *errs, subj string) {
	t.Helper()
	if _, err := nc.SubscribeSync(subj); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	e.wait(t, fmt.Sprintf("permissions violation for subscription to %q", subj))
}

func TestOperatorReadsOnly(t *testing.T) { brokers(t, testOperatorReadsOnly) }

func testOperatorReadsOnly(t *testing.T, start func(testing.TB) *natstest.Broker) {
	r := newRoles(t, start)
	ctx := t.Context()
	e := &errs{}
	op := r.b.Connect(t, r.b.Keys.Operator, nats.ErrorHandler(e.handler))
	js, err := jetstream.New(op)
	if err != nil {
		t.Fatal(err)
	}

	// What it may do: read.
	s, err := js.Stream(ctx, r.journal)
	if err != nil {
		t.Fatalf("operator: stream info: %v", err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("operator: journal holds %d entries, want 1", n)
	}
	names := js.StreamNames(ctx)
	for range names.Name() {
	}
	if err := names.Err(); err != nil {
		t.Fatalf("operator: stream names: %v", err)
	}
	if _, err := s.GetMsg(ctx, 1); err != nil {
		t.Fatalf("operator: get the journal's first entry: %v", err)
	}
	if m, err := s.GetMsg(ctx, 1); err != nil || string(m.Data) != "enrollment" {
		t.Fatalf("operator: journal entry 1 = %q, %v; want %q", m.Data, err, "enrollment")
	}
	// One of tapproof's own consumers, which the operator must not re-point.
	svcJS, err := jetstream.New(r.b.Connect(t, r.b.Keys.Service))
	if err != nil {
		t.Fatal(err)
	}
	watch := jetstream.ConsumerConfig{Durable: "exceedance", FilterSubjects: []string{"tapproof.log.u1.s.*", "tapproof.log.u1.i.*"}, AckPolicy: jetstream.AckExplicitPolicy}
	if _, err := svcJS.CreateOrUpdateConsumer(ctx, r.journal, watch); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "tapproof_devices")
	if err != nil {
		t.Fatalf("operator: registry bucket: %v", err)
	}
	before, err := kv.Get(ctx, r.device.ID)
	if err != nil {
		t.Fatalf("operator: registry read: %v", err)
	}
	for _, subj := range []string{"tapproof.alerts.u1.s1", "tapproof.checkpoints.u1"} {
		sub, err := op.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Flush(); err != nil {
			t.Fatal(err)
		}
		svc := r.b.Connect(t, r.b.Keys.Service)
		if err := svc.Publish(subj, []byte("news")); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("operator: subscribe to %s: %v", subj, err)
		}
	}

	// What it may not: every write, each refused by the server.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }
	t.Run("publish to the journal", func(t *testing.T) {
		refusedPublish(t, op, e, r.subject)
		c, cancel := short()
		defer cancel()
		if _, err := js.Publish(c, r.subject, []byte("forged")); err == nil {
			t.Fatal("JetStream publish to the journal acknowledged")
		}
	})
	t.Run("KV put on the registry", func(t *testing.T) {
		c, cancel := short()
		defer cancel()
		if _, err := kv.Put(c, r.device.ID, []byte(`{"id":"dev-1","status":"disabled"}`)); err == nil {
			t.Fatal("registry put acknowledged")
		}
		e.wait(t, `permissions violation for publish to "$KV.tapproof_devices.dev-1"`)
	})
	t.Run("KV delete and purge on the registry", func(t *testing.T) {
		for _, del := range []func(context.Context) error{
			func(c context.Context) error { return kv.Delete(c, r.device.ID) },
			func(c context.Context) error { return kv.Purge(c, r.device.ID) },
		} {
			c, cancel := short()
			if err := del(c); err == nil {
				t.Fatal("registry delete acknowledged")
			}
			cancel()
		}
	})
	for _, tc := range []struct {
		name string
		call func(context.Context) error
		subj string
	}{
		{"stream delete", func(c context.Context) error { return js.DeleteStream(c, r.journal) }, "$JS.API.STREAM.DELETE." + r.journal},
		{"stream purge", func(c context.Context) error { return s.Purge(c) }, "$JS.API.STREAM.PURGE." + r.journal},
		{"stream edit", func(c context.Context) error {
			cfg := s.CachedInfo().Config
			cfg.MaxMsgs = 1
			_, err := js.UpdateStream(c, cfg)
			return err
		}, "$JS.API.STREAM.UPDATE." + r.journal},
		{"message delete", func(c context.Context) error { return s.DeleteMsg(c, 1) }, "$JS.API.STREAM.MSG.DELETE." + r.journal},
		{"bucket delete", func(c context.Context) error { return js.DeleteKeyValue(c, "tapproof_devices") }, "$JS.API.STREAM.DELETE.KV_tapproof_devices"},
		{"re-point tapproof's consumer", func(c context.Context) error {
			silenced := watch
			silenced.FilterSubjects = []string{"tapproof.log.u1.nothing.*", "tapproof.log.u1.none.*"}
			_, err := js.CreateOrUpdateConsumer(c, r.journal, silenced)
			return err
		}, "$JS.API.CONSUMER.CREATE." + r.journal + ".exceedance"},
		{"stream create", func(c context.Context) error {
			_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "SHADOW", Subjects: []string{"shadow.>"}})
			return err
		}, "$JS.API.STREAM.CREATE.SHADOW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := short()
			defer cancel()
			if err := tc.call(c); err == nil {
				t.Fatalf("%s succeeded", tc.name)
			}
			e.wait(t, fmt.Sprintf("permissions violation for publish to %q", tc.subj))
		})
	}
	if c, err := svcJS.Consumer(ctx, r.journal, "exceedance"); err != nil || !slices.Equal(c.CachedInfo().Config.FilterSubjects, watch.FilterSubjects) {
		t.Errorf("tapproof's consumer after the operator's attempt: %v, %v; want its filter %v", c, err, watch.FilterSubjects)
	}
	for _, subj := range []string{
		"tapproof.alerts.u1.s1",                    // raising an alert
		"tapproof.checkpoints.u1",                  // a checkpoint
		"tapproof.intake.readings.u1.s1.dev-1",     // the intake
		"$JS.ACK.TAPPROOF_LOG_u1.anchor.1.1.1.1.0", // acknowledging a sink's entry
		broker.AuthSubject,                         // the callout's requests
		"$SYS._INBOX.abc.def",                      // the callout's answers
	} {
		t.Run("publish "+subj, func(t *testing.T) { refusedPublish(t, op, e, subj) })
	}
	t.Run("answer the callout", func(t *testing.T) { refusedSubscribe(t, op, e, broker.AuthSubject) })
	t.Run("take the intake's messages", func(t *testing.T) { refusedSubscribe(t, op, e, "tapproof.intake.>") })

	// Nothing changed.
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || info.Config.MaxMsgs == 1 {
		t.Errorf("journal after the operator's writes: %d entries, max %d; want 1 entry, unchanged", info.State.Msgs, info.Config.MaxMsgs)
	}
	after, err := kv.Get(ctx, r.device.ID)
	if err != nil {
		t.Fatalf("registry after the operator's writes: %v", err)
	}
	if after.Revision() != before.Revision() || !bytes.Equal(after.Value(), before.Value()) {
		t.Errorf("registry entry changed: revision %d, want %d", after.Revision(), before.Revision())
	}
}

func TestCalloutUserAnswersOnly(t *testing.T) { brokers(t, testCalloutUserAnswersOnly) }

func testCalloutUserAnswersOnly(t *testing.T, start func(testing.TB) *natstest.Broker) {
	r := newRoles(t, start)
	e := &errs{}
	nc := r.b.Connect(t, r.b.Keys.Callout, nats.ErrorHandler(e.handler))
	for _, subj := range []string{r.subject, "$JS.API.INFO", "$KV.tapproof_devices.dev-1", "tapproof.alerts.u1.s1", "$SYS._INBOX.abc.def"} {
		t.Run("publish "+subj, func(t *testing.T) { refusedPublish(t, nc, e, subj) })
	}
	for _, subj := range []string{"tapproof.>", "_INBOX.>", "$SYS.>"} {
		t.Run("subscribe "+subj, func(t *testing.T) { refusedSubscribe(t, nc, e, subj) })
	}
	// and yet it admits a device (the Authorizer runs as this user).
	dev := newKey(t)
	r.b.Directory.Add(dev.Public().(ed25519.PublicKey), broker.Party{Kind: broker.Device, ID: "dev-9", Utility: "u1", Site: "s1"})
	d, err := r.b.ConnectParty(broker.Device, "dev-9", dev)
	if err != nil {
		t.Fatalf("a device through the callout user's answers: %v", err)
	}
	d.Close()
}

func TestServiceCannotAnswerCallout(t *testing.T) { brokers(t, testServiceCannotAnswerCallout) }

func testServiceCannotAnswerCallout(t *testing.T, start func(testing.TB) *natstest.Broker) {
	r := newRoles(t, start)
	e := &errs{}
	svc := r.b.Connect(t, r.b.Keys.Service, nats.ErrorHandler(e.handler))
	refusedSubscribe(t, svc, e, broker.AuthSubject)
	refusedPublish(t, svc, e, "$SYS._INBOX.abc.def")
	// It still does its work: the journal and the registry take its
	// writes (newRoles wrote both), and JetStream answers it.
	if _, err := svc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Fatalf("service: $JS.API.INFO: %v", err)
	}
	js, err := jetstream.New(svc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "tapproof.log.u1.r.dev-1", []byte("reading")); err != nil {
		t.Fatalf("service: journal publish: %v", err)
	}
	if strings.Contains(fmt.Sprint(e.list), "tapproof.log") {
		t.Fatalf("service refused the journal: %v", e.list)
	}
}
