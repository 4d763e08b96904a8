package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/internal/browsertest"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/simulate"
)

// TestResidentJourneyOnServe is a resident's path through a whole tapproof
// serve on the real stack, in headless Chromium, with email through a real
// SMTP server (mailpit): find the site on the status page, subscribe,
// confirm from the email, receive the notice when a sensor there spikes.
// Then a regulator finds the notice's record, with one recipient and no
// address, in the log read back whole and checked against its checkpoint.
func TestResidentJourneyOnServe(t *testing.T) {
	browser := browsertest.Start(t)
	st := localstack.ForTest(t)
	mp := localstack.MailpitForTest(t, nil)
	cfg := testServeConfig(t, st, t.TempDir())
	cfg.SMTP = residents.SMTPConfig{Host: mp.SMTPHost, Port: mp.SMTPPort, From: "alerts@water.flint.example", TLS: residents.SMTPTLSNone}
	cfg.PublicTitle = "Flint water"
	in := startServeConfig(t, cfg)
	ctx := t.Context()

	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 2, LeadPerSite: 1, NIRSPerUtil: -1, UtilityNames: []string{"flint"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	sensor := fleet.Sensors[1]
	js := devicesOf(t, in).js(sensor)
	if sensor.Device.Site != "site-2" {
		t.Fatalf("sensor 1 is at %s, want site-2", sensor.Device.Site)
	}
	publish := func(ppb float64) tapproof.Reading {
		t.Helper()
		r := sensor.Lead(ppb, time.Now().UTC().Truncate(time.Millisecond))
		if _, err := sensor.Publish(ctx, js, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	publish(3.2)
	poll.Until(t, 30*time.Second, func() error {
		if n := influxCount(t, st, `device='`+sensor.Device.ID+`'`); n != 1 {
			return fmt.Errorf("readings of %s in InfluxDB = %d, want 1", sensor.Device.ID, n)
		}
		return nil
	})

	const resident = "resident@example.org"
	if text := browsertest.FindSite(t, browser, in.api, "flint", "site-2"); !strings.Contains(text, "3.2 µg/L (ppb)") {
		t.Errorf("readings table = %q, want the latest reading, 3.2 µg/L (ppb)", text)
	}
	browsertest.Subscribe(t, browser, mp, in.api, resident)
	mailCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	// The sensor spikes: the resident gets the notice.
	spike := publish(24)
	mail, err := mp.Wait(mailCtx, resident, "Water alert")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"24 µg/L (ppb)", notice.HealthEffectsLead, in.api + "/sites/flint/site-2"} {
		if !strings.Contains(mail.Text, want) {
			t.Errorf("notice lacks %q:\n%s", want, mail.Text)
		}
	}

	// The regulator's view: the record of that notice is in the log, which
	// reads back whole against its checkpoint, and names no one.
	alertID := tapproof.AlertID(tapproof.Screening, sensor.Device.ID, spike.Seq)
	v, err := note.NewVerifier(logInfo(t, in.api, "flint").VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	var record tapproof.NoticeRecord
	var raw []byte
	poll.Until(t, 30*time.Second, func() error {
		leaves, _, err := readLog(ctx, in.api, "flint", v)
		if err != nil {
			return err
		}
		for _, l := range leaves {
			if json.Unmarshal(l.Bytes, &record) == nil && record.AlertID == alertID {
				raw = l.Bytes
				return nil
			}
		}
		return fmt.Errorf("no notice record of %s among %d leaves read back", alertID, len(leaves))
	})
	if record.Type != tapproof.NoticeRecordType || record.Recipients != 1 || record.Channels[string(residents.ChannelEmail)] != 1 ||
		record.SentAt.Before(record.AlertRaisedAt) || record.TextSHA256 == "" {
		t.Errorf("notice record = %+v; want one email recipient, sent after the alert, with the text's hash", record)
	}
	if strings.Contains(string(raw), resident) || strings.Contains(string(raw), "example.org") {
		t.Errorf("the public log's notice record holds the resident's address: %s", raw)
	}
}
