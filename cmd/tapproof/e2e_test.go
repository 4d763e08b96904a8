package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	tproof "github.com/transparency-dev/formats/proof"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/natstest"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/platform"
	"github.com/tapproof/tapproof/signed"
	"github.com/tapproof/tapproof/simulate"
)

const adminToken = "e2e-admin-token"

// instance is a running `tapproof serve` on the real stack.
type instance struct {
	api, nats string
	brokerDir string // its broker keys and CA
	stop      func()
}

// ca is the CA certificate the instance's broker is verified with.
func (in *instance) ca() string { return filepath.Join(in.brokerDir, broker.CAFile) }

func startServe(t *testing.T, st *localstack.Stack, dataDir string) *instance {
	return startServeNATS(t, st, dataDir, "")
}

// startServeNATS starts serve on the stack, with an external NATS server if
// natsURL is set.
func startServeNATS(t *testing.T, st *localstack.Stack, dataDir, natsURL string) *instance {
	t.Helper()
	cfg := testServeConfig(t, st, dataDir)
	cfg.NATSURL = natsURL
	return startServeConfig(t, cfg)
}

// testServeConfig is serve's configuration for a test on st: loopback on
// free ports, fast checkpoints, warnings to the test log.
func testServeConfig(t *testing.T, st *localstack.Stack, dataDir string) platform.Config {
	return platform.Config{
		DataDir: dataDir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		TrillianAddr: st.TrillianAddr, InfluxURL: st.InfluxURL, InfluxDB: st.InfluxDatabase,
		AdminToken: adminToken, CheckpointInterval: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// startServeConfig runs serve with cfg until the test ends (or stop).
func startServeConfig(t *testing.T, cfg platform.Config) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	cfg.Ready = func(h, n string) { ready <- [2]string{h, n} }
	go func() { done <- platform.Run(ctx, cfg) }()
	var in instance
	brokerDir := cfg.BrokerDir
	if brokerDir == "" {
		brokerDir = filepath.Join(cfg.DataDir, "broker")
	}
	select {
	case a := <-ready:
		in = instance{api: "http://" + a[0], nats: a[1], brokerDir: brokerDir}
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not become ready")
	}
	stopped := false
	in.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(in.stop)
	return &in
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func mustUserKey(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	pub, err := broker.UserKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// devices connects simulated sensors and labs to an instance's broker as
// they connect in the field: each with its own key, over TLS, into its own
// account. js returns a party's JetStream publisher, connecting it once.
type devices struct {
	t       *testing.T
	url, ca string
	conns   map[string]jetstream.JetStream
}

func devicesOf(t *testing.T, in *instance) *devices {
	return &devices{t: t, url: in.nats, ca: in.ca(), conns: map[string]jetstream.JetStream{}}
}

func (d *devices) js(s *simulate.Sensor) jetstream.JetStream {
	return d.party(broker.Device, s.Device.ID, s.Key)
}

func (d *devices) party(kind broker.PartyKind, id string, key ed25519.PrivateKey) jetstream.JetStream {
	d.t.Helper()
	k := string(kind) + ":" + id
	if js, ok := d.conns[k]; ok {
		return js
	}
	nc, err := broker.DialParty(d.url, d.ca, kind, id, key)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		d.t.Fatal(err)
	}
	d.conns[k] = js
	return js
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// influxCount counts points of measurement reading for device in InfluxDB.
func influxCount(t *testing.T, st *localstack.Stack, where string) int {
	t.Helper()
	q := url.Values{"db": {st.InfluxDatabase}, "q": {"SELECT count(value) FROM reading WHERE " + where}}
	code, b := get(t, st.InfluxURL+"/query?"+q.Encode())
	if code != 200 {
		t.Fatalf("influx query: %d %s", code, b)
	}
	var res struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) == 0 || len(res.Results[0].Series) == 0 {
		return 0
	}
	return int(res.Results[0].Series[0].Values[0][1].(float64))
}

func logInfo(t *testing.T, api, utility string) httpapi.LogSummary {
	t.Helper()
	code, b := get(t, api+"/v1/logs")
	if code != 200 {
		t.Fatalf("GET /v1/logs = %d %s", code, b)
	}
	var ls []httpapi.LogSummary
	if err := json.Unmarshal(b, &ls); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Utility == utility {
			return l
		}
	}
	t.Fatalf("no log for %s in %s", utility, b)
	return httpapi.LogSummary{}
}

func metricValue(t *testing.T, api, series string) float64 {
	t.Helper()
	_, b := get(t, api+"/metrics")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, series+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, series+" "), &v)
			return v
		}
	}
	return 0
}

// TestEndToEnd runs the spine on real NATS JetStream, InfluxDB, and
// Trillian on PostgreSQL: readings land exactly once in both stores, a
// lead reading above the action level raises one alert, bundles verify
// offline and tampered ones do not, and bad input is rejected by reason.
func TestEndToEnd(t *testing.T) {
	st := localstack.ForTest(t)
	dataDir := t.TempDir()
	in := startServe(t, st, dataDir)
	ctx := t.Context()

	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 2, LeadPerSite: 1, NIRSPerUtil: 1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, "wrong-token"); err == nil {
		t.Fatal("enrollment with a wrong admin token succeeded")
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	enrolled := uint64(len(fleet.Sensors))
	dev := devicesOf(t, in)
	s1, s2 := fleet.Sensors[0], fleet.Sensors[1]

	// Nobody reaches the broker without an enrolled key.
	if nc, err := nats.Connect(in.nats, nats.RootCAs(in.ca()), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to the broker")
	}

	// (a) N readings become exactly N points and N leaves.
	const n = 200
	t0 := time.Now().Add(-time.Hour)
	for i := range n {
		s := []*simulate.Sensor{s1, s2}[i%2]
		if _, err := s.Publish(ctx, dev.js(s), s.Lead(2+float64(i%7), t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	// A sensor's network retry: the same reading again, under another
	// message id. The intake's own id absorbs it, and says so.
	dup := s1.Lead(3, t0.Add(time.Hour-time.Minute))
	dupRaw, err := s1.Publish(ctx, dev.js(s1), dup)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := dev.js(s1).Publish(ctx, simulate.Subject(dup), dupRaw, jetstream.WithMsgID("retry-"+dup.Key())); err != nil {
		t.Fatal(err)
	} else if !ack.Duplicate {
		t.Errorf("a retried reading was acknowledged as new: %+v", ack)
	}
	wantLeaves := enrolled + n + 1
	poll.Until(t, 60*time.Second, func() error {
		if got := influxCount(t, st, `utility='flint'`); got != n+1 {
			return fmt.Errorf("influx points = %d, want %d", got, n+1)
		}
		if got := logInfo(t, in.api, "flint").Size; got != wantLeaves {
			return fmt.Errorf("log size = %d, want %d", got, wantLeaves)
		}
		return nil
	})

	// (b) 16 ppb raises exactly one alert; 15 ppb raises none.
	at := time.Now().Add(-time.Second)
	high := s2.Lead(16, at)
	if _, err := s2.Publish(ctx, dev.js(s2), high); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Publish(ctx, dev.js(s1), s1.Lead(15, at)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		_, b := get(t, in.api+"/v1/alerts")
		var as []tapproof.Alert
		if err := json.Unmarshal(b, &as); err != nil {
			return err
		}
		if len(as) != 1 || as[0].Device != high.Device || as[0].Seq != high.Seq || as[0].Value != 16 {
			return fmt.Errorf("alerts = %s, want exactly one for %s", b, high.Key())
		}
		if !strings.HasPrefix(as[0].Rule, "us-lead-") {
			return fmt.Errorf("alert rule = %q, want the federal lead rule", as[0].Rule)
		}
		return nil
	})
	// The spike goes on: no storm, the open alert absorbs it.
	const spike = 3
	for range spike {
		if _, err := s2.Publish(ctx, dev.js(s2), s2.Lead(18, time.Now())); err != nil {
			t.Fatal(err)
		}
	}

	// (c) a bundle from the API verifies with `tapproof verify`; one flipped
	// bit in the leaf, the proof or the checkpoint fails with its reason.
	li := logInfo(t, in.api, "flint")
	var code int
	var bundle []byte
	poll.Until(t, 20*time.Second, func() error {
		code, bundle = get(t, fmt.Sprintf("%s/v1/readings/%s/%d/bundle", in.api, high.Device, high.Seq))
		if code != 200 {
			return fmt.Errorf("bundle: %d %s", code, bundle)
		}
		return nil
	})
	if out, err := runVerify(t, li.VerifierKey, bundle); err != nil {
		t.Fatalf("verify of a genuine bundle: %v\n%s", err, out)
	} else if !strings.Contains(out, "OK reading "+high.Device) {
		t.Errorf("verify output = %q", out)
	}
	for _, tc := range []struct {
		name, check string
		tamper      func(*anchor.Bundle)
	}{
		{"leaf", anchor.CheckInclusion, func(b *anchor.Bundle) { b.Leaf[len(b.Leaf)/2] ^= 1 }},
		{"proof", anchor.CheckInclusion, func(b *anchor.Bundle) {
			var p tproof.TLogProof
			if err := p.Unmarshal([]byte(b.TLogProof)); err != nil {
				t.Fatal(err)
			}
			p.Hashes[0][3] ^= 1
			b.TLogProof = string(p.Marshal())
		}},
		{"checkpoint", anchor.CheckCheckpoint, func(b *anchor.Bundle) {
			var p tproof.TLogProof
			if err := p.Unmarshal([]byte(b.TLogProof)); err != nil {
				t.Fatal(err)
			}
			p.Checkpoint[len(li.Origin)+2] ^= 1 // a digit of the tree size
			b.TLogProof = string(p.Marshal())
		}},
	} {
		var b anchor.Bundle
		if err := json.Unmarshal(bundle, &b); err != nil {
			t.Fatal(err)
		}
		tc.tamper(&b)
		raw, _ := json.Marshal(&b)
		out, err := runVerify(t, li.VerifierKey, raw)
		if err == nil || !strings.Contains(out, "FAIL "+tc.check) {
			t.Errorf("verify with a flipped bit in the %s = %v, %q; want FAIL %s", tc.name, err, out, tc.check)
		}
	}

	// (d) bad input is rejected with its reason on /metrics, and valid
	// readings around it still land.
	stranger, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 1, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	x := *stranger.Sensors[0]
	x.Device.ID = s1.Device.ID // claims to be s1, signs with another key
	forged := x.Lead(1, time.Now())
	forgedRaw, _ := signed.SignReading(ctx, x.Key, forged)
	oldRaw := func() []byte { r := s1.Lead(1, t0); r.Seq = 5; b, _ := signed.SignReading(ctx, s1.Key, r); return b }()
	future := s1.Lead(2, time.Now().Add(time.Hour))
	futureRaw, _ := signed.SignReading(ctx, s1.Key, future)
	neg := s1.Lead(-3, time.Now())
	negRaw, _ := signed.SignReading(ctx, s1.Key, neg)
	huge := s1.Lead(1e9, time.Now())
	hugeRaw, _ := signed.SignReading(ctx, s1.Key, huge)
	badSubject := s1.Lead(2, time.Now())
	badSubjectRaw, _ := signed.SignReading(ctx, s1.Key, badSubject)
	// The broker lets a device publish on its own subject only, so each
	// bad message comes from an enrolled device that misbehaves: s1 sends
	// garbage, another key's signature, a stranger's reading, absurd
	// values; s2 relays a reading of s1's.
	bad := []struct {
		reason tapproof.Reason
		from   *simulate.Sensor
		raw    []byte
	}{
		{tapproof.ReasonMalformed, s1, []byte(`{"payloadType":`)},
		{tapproof.ReasonBadSignature, s1, forgedRaw},
		{tapproof.ReasonUnknownDevice, s1, func() []byte {
			nobody := *stranger.Sensors[0]
			nobody.Device.ID = "nobody"
			b, _ := signed.SignReading(ctx, nobody.Key, nobody.Lead(1, time.Now()))
			return b
		}()},
		{tapproof.ReasonSubjectMismatch, s2, badSubjectRaw},
		{tapproof.ReasonAbsurd, s1, negRaw},
		{tapproof.ReasonAbsurd, s1, hugeRaw},
		{tapproof.ReasonFuture, s1, futureRaw},
		{tapproof.ReasonReplayed, s1, oldRaw},
		{tapproof.ReasonOversized, s1, bytes.Repeat([]byte("{"), signed.MaxEnvelopeSize+10)},
	}
	before := map[tapproof.Reason]float64{}
	for _, c := range bad {
		before[c.reason] = metricValue(t, in.api, fmt.Sprintf(`tapproof_ingest_rejected_total{reason="%s"}`, c.reason))
	}
	want := map[tapproof.Reason]float64{}
	var good int
	for i, c := range bad {
		subject := fmt.Sprintf("tapproof.readings.%s.%s.%s", c.from.Device.Utility, c.from.Device.Site, c.from.Device.ID)
		if _, err := dev.js(c.from).Publish(ctx, subject, c.raw, jetstream.WithMsgID(fmt.Sprint("bad-", i))); err != nil {
			t.Fatal(err)
		}
		want[c.reason]++
		if _, err := s2.Publish(ctx, dev.js(s2), s2.Lead(4, time.Now())); err != nil {
			t.Fatal(err)
		}
		good++
	}
	poll.Until(t, 30*time.Second, func() error {
		for r, n := range want {
			series := fmt.Sprintf(`tapproof_ingest_rejected_total{reason="%s"}`, r)
			if got := metricValue(t, in.api, series) - before[r]; got != n {
				return fmt.Errorf("%s rose by %v, want %v", series, got, n)
			}
		}
		if got := influxCount(t, st, `utility='flint'`); got != n+1+2+spike+good {
			return fmt.Errorf("influx points = %d, want %d", got, n+1+2+spike+good)
		}
		return nil
	})
	wantLeaves += 2 + spike + uint64(good)
	// The spike ended in one alert and one all-clear once site-2 read 4 ppb
	// again; each alert message leaves one notice record in the log.
	poll.Until(t, 30*time.Second, func() error {
		_, b := get(t, in.api+"/v1/alerts")
		var as []tapproof.Alert
		if err := json.Unmarshal(b, &as); err != nil {
			return err
		}
		var types []string
		for _, a := range as {
			types = append(types, string(a.Type()))
		}
		if diff := cmp.Diff([]string{"Cancel", "Alert"}, types); diff != "" {
			return fmt.Errorf("alert messages, newest first (-want +got):\n%s", diff)
		}
		notices := uint64(len(as))
		if got := logInfo(t, in.api, "flint").Size; got != wantLeaves+notices {
			return fmt.Errorf("log size = %d, want %d readings and enrollments and %d notice records: rejected readings must not enter the log", got, wantLeaves, notices)
		}
		return nil
	})
	wantLeaves += uint64(alertMessages(t, in.api))

	// A user adds a sensor with the CLI: a key and a signed enrollment,
	// enrolled into the running platform, and its readings land.
	dir := t.TempDir()
	keyFile, enrollments := filepath.Join(dir, "pb-9.key"), filepath.Join(dir, "enrollments.jsonl")
	if out, err := runCmd(t, "device", "new", "--id", "pb-9", "--utility", "flint", "--site", "site-2",
		"--firmware", s1.Device.Firmware, "--key", keyFile, "--out", enrollments, "--ca", in.ca()); err != nil {
		t.Fatalf("device new: %v\n%s", err, out)
	}
	// Everything the device needs is next to its key: the broker's CA, and
	// the key as the NATS nkey seed the broker admits it with.
	if ca, err := os.ReadFile(filepath.Join(dir, "ca.pem")); err != nil || !bytes.Contains(ca, []byte("CERTIFICATE")) {
		t.Fatalf("device new wrote no CA next to the key: %v", err)
	}
	nk, err := broker.LoadKey(keyFile + ".nk")
	if err != nil {
		t.Fatalf("device new wrote no nkey seed: %v", err)
	}
	t.Setenv("TAPPROOF_ADMIN_TOKEN", adminToken)
	if out, err := runCmd(t, "device", "enroll", "--server", in.api, enrollments); err != nil || !strings.Contains(out, "enrolled 1") {
		t.Fatalf("device enroll: %v\n%s", err, out)
	}
	key, err := loadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := nk.PublicKey(); got != mustUserKey(t, key) {
		t.Fatalf("the nkey seed's public key %s is not the device key's %s", got, mustUserKey(t, key))
	}
	pb9 := &simulate.Sensor{Key: key, Device: tapproof.Device{ID: "pb-9", Utility: "flint", Site: "site-2", Kind: tapproof.ASV, Firmware: s1.Device.Firmware}}
	if _, err := pb9.Publish(ctx, dev.js(pb9), pb9.Lead(1.5, time.Now())); err != nil {
		t.Fatal(err)
	}
	wantLeaves += 2 // the enrollment and the reading
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, "flint").Size; got != wantLeaves {
			return fmt.Errorf("log size = %d, want %d after the CLI-enrolled sensor's reading", got, wantLeaves)
		}
		return nil
	})

	// The operator revokes pb-9 with the CLI: the revocation is a leaf of
	// the log, the broker closes pb-9's connection within seconds and
	// refuses it from then on, and the other sensors go on.
	if out, err := runCmd(t, "device", "revoke", "--server", in.api, "--id", "pb-9", "--reason", "key exposed in a field repair"); err != nil {
		t.Fatalf("device revoke: %v\n%s", err, out)
	}
	pb9conn := dev.js(pb9).Conn()
	poll.Until(t, 5*time.Second, func() error {
		if pb9conn.IsConnected() {
			return errors.New("the revoked device is still connected")
		}
		return nil
	})
	if nc, err := broker.DialParty(in.nats, in.ca(), broker.Device, "pb-9", key, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("the revoked device connected again")
	}
	_, devs := get(t, in.api+"/v1/devices")
	if !strings.Contains(string(devs), `"status": "disabled"`) {
		t.Errorf("/v1/devices after revocation = %s, want pb-9 disabled", devs)
	}
	if _, err := s2.Publish(ctx, dev.js(s2), s2.Lead(2, time.Now())); err != nil {
		t.Fatalf("another device after the revocation: %v", err)
	}
	wantLeaves += 2 // the revocation record and s2's reading
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, "flint").Size; got != wantLeaves {
			return fmt.Errorf("log size = %d, want %d with the revocation record", got, wantLeaves)
		}
		return nil
	})

	// The live /metrics, after all this traffic, follows Prometheus's
	// conventions: promlint and promtool find nothing.
	checkMetricsLint(t, in.api)

	// Restart on the same data: nothing lost, and the log grows from where
	// it was, consistent with the checkpoint published before.
	old := logInfo(t, in.api, "flint")
	in.stop()
	in = startServe(t, st, dataDir)
	if _, err := s1.Publish(ctx, devicesOf(t, in).js(s1), s1.Lead(2, time.Now())); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, "flint").Size; got != old.Size+1 {
			return fmt.Errorf("log size after restart = %d, want %d", got, old.Size+1)
		}
		return nil
	})
	code, b := get(t, fmt.Sprintf("%s/v1/logs/flint/proof/consistency?from=%d&to=%d", in.api, old.Size, old.Size+1))
	if code != 200 {
		t.Fatalf("consistency proof: %d %s", code, b)
	}
}

// TestReplicasHandOver runs two replicas on one NATS server: both serve
// the API, exactly one leads, and when the leader stops the other takes over
// ingest and anchoring with nothing lost or duplicated.
func TestReplicasHandOver(t *testing.T) {
	st := localstack.ForTest(t)
	dataDir := t.TempDir()
	ns := natstest.StartBroker(t, filepath.Join(dataDir, "broker"))
	a := startServeNATS(t, st, dataDir, ns.URL())
	b := startServeNATS(t, st, dataDir, ns.URL())
	ctx := t.Context()
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 2, NIRSPerUtil: -1, UtilityNames: []string{"twin"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, b.api, adminToken); err != nil {
		t.Fatal(err)
	}
	dev := devicesOf(t, a)
	publish := func(n int) {
		for i := range n {
			s := fleet.Sensors[i%len(fleet.Sensors)]
			if _, err := s.Publish(ctx, dev.js(s), s.Lead(3, time.Now())); err != nil {
				t.Fatal(err)
			}
		}
	}
	enrolled := uint64(len(fleet.Sensors))
	publish(100)
	leaders := func() (*instance, *instance, error) {
		la := metricValue(t, a.api, "tapproof_leader")
		lb := metricValue(t, b.api, "tapproof_leader")
		switch {
		case la == 1 && lb == 0:
			return a, b, nil
		case la == 0 && lb == 1:
			return b, a, nil
		}
		return nil, nil, fmt.Errorf("tapproof_leader: a=%v b=%v, want exactly one leader", la, lb)
	}
	poll.Until(t, 30*time.Second, func() error {
		for _, in := range []*instance{a, b} {
			if got := logInfo(t, in.api, "twin").Size; got != enrolled+100 {
				return fmt.Errorf("%s: log size = %d, want %d", in.api, got, enrolled+100)
			}
		}
		_, _, err := leaders()
		return err
	})
	leader, follower, _ := leaders()
	leader.stop()
	publish(100)
	poll.Until(t, 45*time.Second, func() error {
		if got := logInfo(t, follower.api, "twin").Size; got != enrolled+200 {
			return fmt.Errorf("log size after handover = %d, want %d", got, enrolled+200)
		}
		if got := influxCount(t, st, `utility='twin'`); got != 200 {
			return fmt.Errorf("influx points = %d, want 200", got)
		}
		if metricValue(t, follower.api, "tapproof_leader") != 1 {
			return errors.New("the remaining replica does not lead")
		}
		return nil
	})
}

// checkMetricsLint lints a live /metrics with client_golang's promlint and,
// where installed (always in CI), promtool check metrics.
func checkMetricsLint(t *testing.T, api string) {
	t.Helper()
	code, body := get(t, api+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed (scripts/deps.sh installs it)")
		}
		t.Log("promtool not installed; skipping promtool check metrics")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// alertMessages counts the alert messages (alerts, updates, all-clears) on
// /v1/alerts.
func alertMessages(t *testing.T, api string) int {
	t.Helper()
	_, b := get(t, api+"/v1/alerts?limit=1000")
	var as []tapproof.Alert
	if err := json.Unmarshal(b, &as); err != nil {
		t.Fatal(err)
	}
	return len(as)
}

// runCmd runs the tapproof command line in process and returns its output.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

// runVerify runs `tapproof verify` on a bundle and returns its output.
func runVerify(t *testing.T, logKey string, bundle []byte) (string, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "bundle-*.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bundle)
	f.Close()
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"verify", "--log-key", logKey, f.Name()})
	err = cmd.ExecuteContext(t.Context())
	var ec exitCode
	if errors.As(err, &ec) {
		return out.String(), err
	}
	return out.String(), err
}
