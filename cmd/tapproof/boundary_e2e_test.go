package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/simulate"
)

// serviceUser connects to in's broker as tapproof serve's own service
// user, the one credential that can write anywhere in tapproof's
// streams (the operator's reads only): the party whose mistakes (or
// stolen credentials) the defences behind the permissions are for.
func serviceUser(t *testing.T, in *instance) *nats.Conn {
	t.Helper()
	kp, err := broker.LoadKey(filepath.Join(in.brokerDir, broker.ServiceKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	nc, err := nats.Connect(in.nats, nats.Nkey(pub, kp.Sign), nats.RootCAs(in.ca()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestNothingStallsOnOneBadMessage: entries tapproof did not write, put on
// the journal and on the alert stream by someone with the service user's
// credentials, are set aside: the journal entry becomes a tombstone in the
// log, never anchored itself, the alert is never served, and the readings
// behind them land. A consumer that cannot progress fails /readyz.
func TestNothingStallsOnOneBadMessage(t *testing.T) {
	st := localstack.ForTest(t)
	cfg := testServeConfig(t, st, t.TempDir())
	cfg.StallAfter = 2 * time.Second
	in := startServeConfig(t, cfg)
	ctx := t.Context()
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 2, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	enrolled := uint64(len(fleet.Sensors))
	dev := devicesOf(t, in)
	s1, s2 := fleet.Sensors[0], fleet.Sensors[1]
	if _, err := s1.Publish(ctx, dev.js(s1), s1.Lead(2, time.Now())); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, "flint").Size; got != enrolled+1 {
			return fmt.Errorf("log size = %d, want %d", got, enrolled+1)
		}
		return nil
	})

	op := serviceUser(t, in)
	forged := []byte(`{"payloadType":"application/vnd.tapproof.reading.v1+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}`)
	if err := op.Publish("tapproof.log.flint.r."+s1.Device.ID, forged); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{`{"id":`, `{"id":"x","class":"screening","utility":"flint","site":"site-1","analyte":"lead","value":999,"level":0}`} {
		if err := op.Publish("tapproof.alerts.flint.site-1", []byte(a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := op.Flush(); err != nil {
		t.Fatal(err)
	}
	tombstone := enrolled + 1
	for _, s := range []*simulate.Sensor{s1, s2} {
		if _, err := s.Publish(ctx, dev.js(s), s.Lead(3, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, "flint").Size; got != enrolled+4 {
			return fmt.Errorf("log size = %d, want %d: the readings behind the foreign entry must land", got, enrolled+4)
		}
		if got := influxCount(t, st, `utility='flint'`); got != 3 {
			return fmt.Errorf("influx points = %d, want 3", got)
		}
		return nil
	})
	const fromJournal = `tapproof_log_leaves_read_total{source="journal"}`
	before := metricValue(t, in.api, fromJournal)
	code, b := get(t, fmt.Sprintf("%s/v1/logs/flint/leaves?start=%d&count=1", in.api, tombstone))
	if code != 200 {
		t.Fatalf("GET leaves = %d %s", code, b)
	}
	if got := metricValue(t, in.api, fromJournal); got != before+1 {
		t.Errorf("%s = %v after reading one leaf, want %v: read from the journal, as the anchor appended it", fromJournal, got, before+1)
	}
	var la tapproof.Leaf
	if err := json.Unmarshal(b, &la); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(forged)
	var rec tapproof.SetAside
	if err := json.Unmarshal(la.Bytes, &rec); err != nil || rec.Type != tapproof.SetAsideRecordType ||
		rec.Reason != tapproof.SetAsideUnsealed || rec.Index != tombstone || rec.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("leaf %d = %s, want the tombstone of the unsealed entry", tombstone, la.Bytes)
	}
	for _, series := range []string{
		`tapproof_journal_set_aside_total{reason="unsealed",sink="anchor"}`,
		`tapproof_journal_set_aside_total{reason="unsealed",sink="influx"}`,
	} {
		if got := metricValue(t, in.api, series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
	// The forged alert has id "x" and level 0; a genuine page may well
	// contain "999" (sequence numbers are milliseconds).
	_, alertsBody := get(t, in.api+"/v1/alerts")
	var served []tapproof.Alert
	if err := json.Unmarshal(alertsBody, &served); err != nil {
		t.Fatalf("/v1/alerts: %v: %s", err, alertsBody)
	}
	for _, a := range served {
		if a.ID == "x" || a.Level == 0 {
			t.Errorf("/v1/alerts serves the forged alert: %+v", a)
		}
	}
	_, page := get(t, in.api+"/")
	if strings.Contains(string(page), "(level 0 ") {
		t.Errorf("the status page shows the forged alert")
	}

	// A sink that cannot progress with work pending fails readiness.
	if code, _ := get(t, in.api+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d before the outage", code)
	}
	if err := st.Stop(localstack.InfluxDB); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Publish(ctx, dev.js(s2), s2.Lead(4, time.Now())); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		code, b := get(t, in.api+"/readyz")
		if code == 200 || !strings.Contains(string(b), "stalled") || !strings.Contains(string(b), "influx") {
			return fmt.Errorf("/readyz = %d %s, want 503 naming the stalled influx sink", code, b)
		}
		return nil
	})
	if got := metricValue(t, in.api, `tapproof_consumer_stalled_seconds{consumer="influx",log="flint"}`); got < 2 {
		t.Errorf("tapproof_consumer_stalled_seconds of influx = %v, want at least 2", got)
	}
	if err := st.Restart(ctx, localstack.InfluxDB); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, func() error {
		if code, b := get(t, in.api+"/readyz"); code != 200 {
			return fmt.Errorf("/readyz = %d %s after InfluxDB came back", code, b)
		}
		if got := influxCount(t, st, `utility='flint'`); got != 4 {
			return errors.New("the reading written during the outage is not in InfluxDB")
		}
		return nil
	})
}

// TestForkedCheckpointStopsSigning: a checkpoint signed with the log's key
// over another tree of the same size (a second writer with a copy of the
// key, or a rewritten history) is never extended: tapproof stops signing
// that log's checkpoints, /readyz fails naming the inconsistency, and the
// readings behind it are still journaled and anchored, waiting for a
// person.
func TestForkedCheckpointStopsSigning(t *testing.T) {
	st := localstack.ForTest(t)
	dataDir := t.TempDir()
	in := startServeConfig(t, testServeConfig(t, st, dataDir))
	ctx := t.Context()
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 1, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	size := uint64(len(fleet.Sensors))
	poll.Until(t, 30*time.Second, func() error {
		if got := logInfo(t, in.api, "flint").Size; got != size {
			return fmt.Errorf("checkpoint size = %d, want %d", got, size)
		}
		return nil
	})
	if code, b := get(t, in.api+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s before the fork", code, b)
	}

	skey, err := os.ReadFile(filepath.Join(dataDir, "keys", "flint.note-key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	forked, err := anchor.SignCheckpoint(signer, size, bytes.Repeat([]byte{0xf1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	op := serviceUser(t, in)
	m := nats.NewMsg(journal.CheckpointsSubject + ".flint")
	m.Data = forked
	m.Header.Set(journal.HeaderSize, strconv.FormatUint(size, 10))
	if err := op.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if err := op.Flush(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		code, b := get(t, in.api+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "inconsistent") {
			return fmt.Errorf("/readyz = %d %s, want 503 naming the inconsistent log", code, b)
		}
		return nil
	})

	s := fleet.Sensors[0]
	if _, err := s.Publish(ctx, devicesOf(t, in).js(s), s.Lead(2, time.Now())); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if got := influxCount(t, st, `utility='flint'`); got != 1 {
			return fmt.Errorf("influx points = %d, want 1: readings still land", got)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // ten checkpoint intervals
	if code, b := get(t, in.api+"/v1/logs/flint/checkpoint"); code != 200 || !bytes.Equal(b, forked) {
		t.Errorf("latest checkpoint = %d %q, want the forked one left as the evidence, nothing signed over it", code, b)
	}
}
