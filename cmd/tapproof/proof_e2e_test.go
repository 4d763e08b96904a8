package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/journal"
	"github.com/tapproof/tapproof/signed"
	"github.com/tapproof/tapproof/simulate"
)

// TestProofLinksEndToEnd follows, on the real stack, the proof link of a
// lab sample's individual compliance alert and of a sensor's screening
// alert to the bundle, and checks the bundle with `tapproof verify`: the
// lab sample's with --lab-key, and without it saying the signature was not
// checked. The screening alert's link is in its CAP document (whose
// description is its notice) and the Atom feed; the lab sample's, a home's
// own result, in the notice its household receives, having subscribed
// with the code `tapproof household-code` printed, and on no public edge
// (its CAP document is 404, GET /v1/alerts and the feed do not list it).
// The system exceedance that sample raises links its period's report. The
// site page's latest readings link both bundles.
func TestProofLinksEndToEnd(t *testing.T) {
	st := localstack.ForTest(t)
	mp := localstack.MailpitForTest(t, nil)
	labPub, labKey, _ := ed25519.GenerateKey(rand.Reader)
	strangerPub, _, _ := ed25519.GenerateKey(rand.Reader)
	const lab, utility = "state-lab", "flint"
	cfg := testServeConfig(t, st, t.TempDir())
	cfg.ComplianceKeys, cfg.Rounding = compliance.KeySet{Labs: map[string][]ed25519.PublicKey{lab: {labPub}}}, compliance.HalfUp
	cfg.SMTP = residents.SMTPConfig{Host: mp.SMTPHost, Port: mp.SMTPPort, From: "alerts@water.flint.example", TLS: residents.SMTPTLSNone}
	in := startServeConfig(t, cfg)
	ctx := t.Context()
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 1, LeadPerSite: 1, NIRSPerUtil: -1, UtilityNames: []string{utility}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	dev := devicesOf(t, in)
	sensor := fleet.Sensors[0]

	// The household whose tap sample L-001 is drawn from gets its code
	// from the utility and subscribes to its result on the public form.
	t.Setenv("TAPPROOF_ADMIN_TOKEN", adminToken)
	out, err := runCmd(t, "household-code", "--server", in.api, "--utility", utility, "--lab", lab, "--sample", "L-001")
	m := regexp.MustCompile(`(?m)^sample: state-lab/L-001\ncode: +([0-9A-Z]{4}(-[0-9A-Z]{4}){3})$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("tapproof household-code = %v:\n%s", err, out)
	}
	const home = "home@example.org"
	form := url.Values{"target": {"site:" + utility + "/" + sensor.Device.Site}, "sample": {lab + "/L-001"}, "code": {m[1]},
		"channel": {"email"}, "address": {home}}
	resp, err := http.PostForm(in.api+"/subscribe", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /subscribe with the household code = %d", resp.StatusCode)
	}
	mailCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	mail := func(subject string) string {
		t.Helper()
		msg, err := mp.Wait(mailCtx, home, subject)
		if err != nil {
			t.Fatal(err)
		}
		full, err := mp.Message(mailCtx, msg.ID)
		if err != nil {
			t.Fatal(err)
		}
		return full.Text
	}
	confirm := regexp.MustCompile(`http://\S+/confirm\?token=[0-9a-f]{64}`).FindString(mail("Confirm"))
	if code, b := get(t, confirm); code != 200 {
		t.Fatalf("GET %s = %d %s", confirm, code, b)
	}

	// A sensor spikes; a lab reports a sample above the action level at
	// the same site.
	spike := sensor.Lead(24, time.Now().UTC())
	if _, err := sensor.Publish(ctx, dev.js(sensor), spike); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-2 * time.Hour)
	period := fmt.Sprintf("%dH%d", at.Year(), 1+(int(at.Month())-1)/6)
	s := tapproof.LabSample{Lab: lab, SampleID: "L-001", Utility: utility, Site: sensor.Device.Site, Tier: 1, Liter: tapproof.FirstLiter,
		Analyte: tapproof.Lead, Value: 22, Unit: tapproof.MicrogramsPerLiter, DetectionLimit: 0.5, CollectedAt: at, AnalyzedAt: at.Add(time.Hour), Period: period}
	p, _ := json.Marshal(s)
	raw, err := signed.Sign(ctx, labKey, tapproof.LabSamplePayloadType, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.party(broker.Lab, lab, labKey).Publish(ctx, journal.LabSamplesSubject+"."+utility+"."+lab, raw, jetstream.WithMsgID(s.SampleID)); err != nil {
		t.Fatal(err)
	}

	byClass := map[tapproof.AlertClass]tapproof.Alert{}
	poll.Until(t, 30*time.Second, func() error {
		_, b := get(t, in.api+"/v1/alerts")
		var as []tapproof.Alert
		if err := json.Unmarshal(b, &as); err != nil {
			return err
		}
		for _, a := range as {
			byClass[a.Class] = a
		}
		if len(byClass) != 2 || byClass[tapproof.Screening].ID == "" || byClass[tapproof.SystemExceedance].ID == "" {
			return fmt.Errorf("alerts = %+v, want a screening and, n being 1, a system exceedance alert (the individual result is not public)", as)
		}
		return nil
	})
	screening := byClass[tapproof.Screening]
	if screening.ID != tapproof.AlertID(tapproof.Screening, sensor.Device.ID, spike.Seq) {
		t.Fatalf("alert %s, want the spike's", screening.ID)
	}
	// The lab sample's result reaches its household, linking its proof.
	result := mail("Your lead result")
	lm := regexp.MustCompile(`Proof of the laboratory result: (\S+/leaves/(\d+)/bundle)`).FindStringSubmatch(result)
	if lm == nil || !strings.Contains(result, "22 µg/L (ppb)") {
		t.Fatalf("the household's notice lacks its result or its proof:\n%s", result)
	}
	labURL, index := lm[1], lm[2]
	individual := tapproof.IndividualAlertID(utility, lab, mustUint(t, index))
	if code, _ := get(t, in.api+"/v1/alerts/"+individual+"/cap.xml"); code != 404 {
		t.Errorf("CAP of the home's own result %s = %d, want 404", individual, code)
	}

	// Each alert's CAP resource is the proof; its notice links it too.
	proof := func(a tapproof.Alert) string {
		t.Helper()
		code, doc := get(t, in.api+"/v1/alerts/"+a.ID+"/cap.xml")
		// One info block per language, each linking the same proof.
		var c struct {
			Info []struct {
				Language    string `xml:"language"`
				Description string `xml:"description"`
				Resource    []struct {
					Desc string `xml:"resourceDesc"`
					URI  string `xml:"uri"`
				} `xml:"resource"`
			} `xml:"info"`
		}
		if err := xml.Unmarshal(doc, &c); code != 200 || err != nil || len(c.Info) < 2 {
			t.Fatalf("CAP of %s = %d, %v, %+v:\n%s", a.ID, code, err, c.Info, doc)
		}
		want := (notice.Links{Base: in.api}).Proof(a)
		u := ""
		for _, info := range c.Info {
			if len(info.Resource) != 1 || info.Resource[0].Desc != want.Desc || info.Resource[0].URI != want.URL || !strings.Contains(info.Description, want.URL) {
				t.Errorf("CAP of %s, %s: resources %+v, not the bundle its notice links:\n%s", a.ID, info.Language, info.Resource, info.Description)
				continue
			}
			u = info.Resource[0].URI
		}
		return u
	}
	sensorURL, reportURL := proof(screening), proof(byClass[tapproof.SystemExceedance])
	if want := in.api + "/v1/logs/" + utility + "/leaves/" + index + "/bundle"; labURL != want {
		t.Errorf("lab sample's proof = %s, want %s", labURL, want)
	}
	// The system exceedance's is its period's report.
	var rep compliance.Report
	if code, b := get(t, reportURL); code != 200 || json.Unmarshal(b, &rep) != nil || rep.Period != period || rep.P90 != 22 || !rep.Exceedance {
		t.Errorf("GET %s = %d %s, want %s's report, exceeded at 22", reportURL, code, b, period)
	}
	// The bundle is served once a checkpoint covers the leaf.
	bundle := func(u string) string {
		t.Helper()
		var b []byte
		poll.Until(t, 30*time.Second, func() error {
			var code int
			if code, b = get(t, u); code != 200 {
				return fmt.Errorf("GET %s = %d %s", u, code, b)
			}
			return nil
		})
		f := filepath.Join(t.TempDir(), "bundle.json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	logKey := logInfo(t, in.api, utility).VerifierKey
	labBundle := bundle(labURL)
	for _, tc := range []struct {
		name, key string
		fails     bool
		want      string
	}{
		{"with the lab's key", b64(labPub), false, "and is signed by lab " + lab},
		{"without a lab key", "", false, "but its signature was NOT CHECKED"},
		{"with another key", b64(strangerPub), true, "FAIL signature check failed"},
	} {
		args := []string{"verify", "--log-key", logKey, labBundle}
		if tc.key != "" {
			args = append(args, "--lab-key", lab+"="+tc.key)
		}
		out, err := runCmd(t, args...)
		if (err != nil) != tc.fails || !strings.Contains(out, tc.want) || (!tc.fails && !strings.Contains(out, "OK lab sample "+lab+"/L-001: lead 22 ug/L")) {
			t.Errorf("verify the lab sample's bundle %s = %v:\n%s\nwant %q", tc.name, err, out, tc.want)
		}
		if tc.key == "" && strings.Contains(out, "signed by lab") {
			t.Errorf("verify without a lab key claims the lab signed it:\n%s", out)
		}
	}
	if out, err := runCmd(t, "verify", "--log-key", logKey, bundle(sensorURL)); err != nil || !strings.Contains(out, fmt.Sprintf("OK reading %s seq %d: lead 24 ug/L", sensor.Device.ID, spike.Seq)) {
		t.Errorf("verify the screening alert's bundle = %v:\n%s", err, out)
	}

	// The feed links the screening alert's bundle, and does not list the
	// home's result; the site page's latest readings link the sensor's
	// bundle, never the home's lab result.
	_, feed := get(t, in.api+"/v1/alerts/feed.atom")
	if !strings.Contains(string(feed), `<link rel="related" type="application/json" title="proof bundle" href="`+sensorURL+`">`) {
		t.Errorf("feed lacks the proof link %s:\n%s", sensorURL, feed)
	}
	if strings.Contains(string(feed), individual) || strings.Contains(string(feed), labURL) {
		t.Errorf("feed lists the home's own result %s:\n%s", individual, feed)
	}
	poll.Until(t, 30*time.Second, func() error {
		_, page := get(t, in.api+"/sites/"+utility+"/"+sensor.Device.Site)
		if !strings.Contains(string(page), `<a class="proof" href="`+sensorURL+`"`) {
			return fmt.Errorf("site page lacks the proof link %s", sensorURL)
		}
		if strings.Contains(string(page), labURL) {
			t.Fatalf("site page shows the home's own lab result %s", labURL)
		}
		return nil
	})
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
