package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/audit"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/internal/localstack"
	"github.com/tapproof/tapproof/internal/poll"
	"github.com/tapproof/tapproof/simulate"
)

// TestAuditEndToEnd runs `tapproof audit` against the real platform: clean
// while InfluxDB holds what the log says; then, Flint's story, the two lab
// samples above the action level deleted from InfluxDB with one DELETE are
// named, a reading's value overwritten in InfluxDB is named, and a fake
// sample added is named, each with its device, seq and leaf index, and the
// audit exits 1. A point newer than the checkpoint is counted, not named;
// a checkpoint that does not verify fails the audit.
func TestAuditEndToEnd(t *testing.T) {
	st := localstack.ForTest(t)
	labPub, labKey, _ := ed25519.GenerateKey(rand.Reader)
	const labID, utility = "state-lab", "flint"
	cfg := testServeConfig(t, st, t.TempDir())
	cfg.ComplianceKeys = compliance.KeySet{Labs: map[string][]ed25519.PublicKey{labID: {labPub}}}
	cfg.AuditInterval = 300 * time.Millisecond // and serve audits on its own
	in := startServeConfig(t, cfg)
	ctx := t.Context()
	fleet, err := simulate.NewFleet(simulate.FleetConfig{Utilities: 1, Sites: 2, LeadPerSite: 1, NIRSPerUtil: -1, UtilityNames: []string{utility}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fleet.Enroll(ctx, in.api, adminToken); err != nil {
		t.Fatal(err)
	}
	dev := devicesOf(t, in)

	// Readings from two lead sensors, and a lab's samples of 2025H2, two
	// of them above 15 ug/L.
	const readings = 40
	t0 := time.Now().Add(-time.Hour)
	for i := range readings {
		s := fleet.Sensors[i%2]
		if _, err := s.Publish(ctx, dev.js(s), s.Lead(2+float64(i%5)/4, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	lab := &simulate.Lab{ID: labID, Key: labKey}
	period, err := tapproof.ParsePeriod("2025H2")
	if err != nil {
		t.Fatal(err)
	}
	values := []float64{3, 22, 5, 8, 31, 4}
	for _, s := range lab.Round(utility, period, values) {
		if err := lab.Publish(ctx, dev.party(broker.Lab, labID, labKey), s); err != nil {
			t.Fatal(err)
		}
	}
	points := readings + len(values)

	// Wait until InfluxDB has every point and a checkpoint covers them.
	poll.Until(t, 60*time.Second, func() error {
		if got := influxCount(t, st, `utility='flint'`); got != points {
			return fmt.Errorf("points in InfluxDB = %d, want %d", got, points)
		}
		last := influxRows(t, st, `SELECT max(leaf_index) FROM reading WHERE utility='flint'`)[0].int(t, "max")
		if size := logInfo(t, in.api, utility).Size; size <= uint64(last) {
			return fmt.Errorf("checkpoint size %d does not cover leaf %d yet", size, last)
		}
		return nil
	})
	key := logInfo(t, in.api, utility).VerifierKey
	code, cp := get(t, in.api+"/v1/logs/"+utility+"/checkpoint")
	if code != http.StatusOK {
		t.Fatalf("GET checkpoint = %d %s", code, cp)
	}
	cpFile := filepath.Join(t.TempDir(), "checkpoint")
	if err := os.WriteFile(cpFile, cp, 0o644); err != nil {
		t.Fatal(err)
	}
	auditArgs := []string{"audit", "--server", in.api, "--utility", utility, "--log-key", key,
		"--influx-url", st.InfluxURL, "--influx-db", st.InfluxDatabase}
	runAudit := func(extra ...string) (audit.Report, error) {
		t.Helper()
		out, err := runCmd(t, append(append(slices.Clone(auditArgs), extra...), "--checkpoint", cpFile, "--json")...)
		var rep audit.Report
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
			t.Fatalf("tapproof audit --json: %v (%v)\n%s", jerr, err, out)
		}
		return rep, err
	}

	// Clean, at the server's latest checkpoint and at the one kept.
	if out, err := runCmd(t, auditArgs...); err != nil || !strings.Contains(out, "CLEAN") {
		t.Fatalf("tapproof audit at the latest checkpoint: %v\n%s", err, out)
	}
	rep, err := runAudit()
	if err != nil || !rep.Clean() || rep.Leaves != points || rep.Points != points || rep.Newer != 0 || rep.Checkpoint != string(cp) {
		t.Fatalf("tapproof audit --checkpoint: %v; report %+v, want clean with %d leaves and points", err, rep, points)
	}

	// serve's own audit agrees.
	poll.Until(t, 30*time.Second, func() error {
		if got := metricValue(t, in.api, `tapproof_audit_log_size_leaves{log="flint"}`); got < float64(logInfo(t, in.api, utility).Size) || got == 0 {
			return fmt.Errorf("serve's audit at size %v, not yet at the checkpoint", got)
		}
		return nil
	})
	for _, k := range audit.Kinds {
		if got := metricValue(t, in.api, fmt.Sprintf(`tapproof_audit_findings{kind="%s",log="flint"}`, k)); got != 0 {
			t.Fatalf("serve's audit found %v %s before anything was changed", got, k)
		}
	}

	// At the checkpoint a regulator's monitor verified.
	state := t.TempDir()
	if out, err := runCmd(t, "monitor", "--once", "--server", in.api, "--log", utility+"="+key, "--state", state); err != nil {
		t.Fatalf("tapproof monitor --once: %v\n%s", err, out)
	}
	if out, err := runCmd(t, append(slices.Clone(auditArgs), "--monitor-state", state)...); err != nil || !strings.Contains(out, "CLEAN") {
		t.Fatalf("tapproof audit --monitor-state: %v\n%s", err, out)
	}
	if out, err := runCmd(t, append(slices.Clone(auditArgs), "--monitor-state", t.TempDir())...); err == nil || !strings.Contains(err.Error(), "verified no checkpoint") {
		t.Fatalf("tapproof audit --monitor-state of an empty state: %v\n%s", err, out)
	}

	// Flint: the two samples above 15 ug/L go, with one DELETE.
	type sample struct {
		site, device string
		index, seq   int64
		value        float64
	}
	var high []sample
	for _, r := range influxRows(t, st, `SELECT leaf_index, seq, value FROM reading WHERE utility='flint' AND method='lab' AND value > 15 GROUP BY site, device`) {
		high = append(high, sample{site: r.tags["site"], device: r.tags["device"], index: r.int(t, "leaf_index"), seq: r.int(t, "seq"), value: r.float(t, "value")})
	}
	if len(high) != 2 {
		t.Fatalf("lab points above 15 ug/L = %+v, want 2", high)
	}
	slices.SortFunc(high, func(a, b sample) int { return int(a.index - b.index) }) // as findings are
	influxQL(t, st, fmt.Sprintf(`DELETE FROM reading WHERE utility='flint' AND method='lab' AND (site='%s' OR site='%s')`, high[0].site, high[1].site))
	if got := influxCount(t, st, `utility='flint'`); got != points-2 {
		t.Fatalf("after the DELETE, %d points, want %d", got, points-2)
	}
	poll.Until(t, 30*time.Second, func() error {
		if got := metricValue(t, in.api, `tapproof_audit_findings{kind="missing",log="flint"}`); got != 2 {
			return fmt.Errorf("serve's audit counts %v missing points, want the 2 deleted", got)
		}
		return nil
	})
	rep, err = runAudit()
	if !foundDiscrepancies(err) || len(rep.Findings) != 2 || rep.Count(audit.Missing) != 2 {
		t.Fatalf("audit after the DELETE: %v, findings %+v; want exit 1 and the two samples missing", err, rep.Findings)
	}
	for i, f := range rep.Findings {
		h := high[i]
		if f.Device != tapproof.LabDevice(utility, labID) || f.Device != h.device || f.Seq != uint64(h.seq) || f.Index == nil ||
			*f.Index != uint64(h.index) || f.Seq != *f.Index || f.Site != h.site || f.Value != h.value || f.Method != "lab" {
			t.Errorf("finding %d = %+v, want %+v missing", i, f, h)
		}
	}
	out, _ := runCmd(t, append(slices.Clone(auditArgs), "--checkpoint", cpFile)...)
	for _, h := range high {
		if want := fmt.Sprintf("MISSING      device %s seq %d leaf %d: lab lead %g ug/L", h.device, h.seq, h.index, h.value); !strings.Contains(out, want) {
			t.Errorf("audit output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "2 FINDINGS: 2 missing, 0 changed, 0 without a leaf") {
		t.Errorf("audit summary:\n%s", out)
	}

	// A reading's value overwritten: the same series and time, another value.
	r := influxRows(t, st, `SELECT * FROM reading WHERE utility='flint' AND method='ASV' GROUP BY * LIMIT 1`)[0]
	was := r.float(t, "value")
	influxWrite(t, st, fmt.Sprintf("reading,%s value=%s,seq=%di,leaf_index=%di,detection_limit=%s %d", r.tagList(),
		strconv.FormatFloat(was+10, 'f', -1, 64), r.int(t, "seq"), r.int(t, "leaf_index"), r.raw("detection_limit"), r.int(t, "time")))
	// A fake sample, claiming the leaf of a sensor's enrollment; and a
	// point claiming a leaf the checkpoint does not cover.
	size := logInfo(t, in.api, utility).Size
	influxWrite(t, st, fmt.Sprintf("reading,analyte=lead,device=%s,method=lab,site=tap-99,unit=ug/L,utility=flint value=1,seq=1i,leaf_index=0i %d",
		tapproof.LabDevice(utility, labID), time.Date(2025, 9, 1, 7, 0, 0, 0, time.UTC).UnixNano()))
	influxWrite(t, st, fmt.Sprintf("reading,analyte=lead,device=%s,method=ASV,site=site-1,unit=ug/L,utility=flint value=2,seq=99999999999999i,leaf_index=%di %d",
		fleet.Sensors[0].Device.ID, size+1000, time.Now().UnixNano()))

	rep, err = runAudit()
	if !foundDiscrepancies(err) || rep.Count(audit.Missing) != 2 || rep.Count(audit.Changed) != 1 || rep.Count(audit.WithoutLeaf) != 1 ||
		rep.Newer != 1 || rep.NewestIndex == nil || *rep.NewestIndex != size+1000 || rep.Points != points {
		t.Fatalf("audit after the changes: %v; report %+v; want exit 1, 2 missing, 1 changed, 1 without a leaf, 1 newer", err, rep)
	}
	for _, f := range rep.Findings {
		switch f.Kind {
		case audit.Changed:
			if f.Device != r.tags["device"] || f.Seq != uint64(r.int(t, "seq")) || f.Index == nil || *f.Index != uint64(r.int(t, "leaf_index")) ||
				len(f.Diffs) != 1 || f.Diffs[0] != (audit.Diff{What: "field value", Want: strconv.FormatFloat(was, 'g', -1, 64), Got: strconv.FormatFloat(was+10, 'g', -1, 64)}) {
				t.Errorf("changed = %+v, want %s seq %d with value %g → %g", f, r.tags["device"], r.int(t, "seq"), was, was+10)
			}
		case audit.WithoutLeaf:
			if f.Device != tapproof.LabDevice(utility, labID) || f.Seq != 1 || f.Index == nil || *f.Index != 0 || f.Site != "tap-99" ||
				f.Note != "leaf 0 is not a reading or lab sample" {
				t.Errorf("without a leaf = %+v, want the fake sample claiming leaf 0", f)
			}
		}
	}

	out, _ = runCmd(t, append(slices.Clone(auditArgs), "--checkpoint", cpFile)...)
	t.Logf("tapproof audit:\n%s", out)

	// A checkpoint that does not verify, or another log's key: no audit.
	forged := filepath.Join(t.TempDir(), "forged")
	if err := os.WriteFile(forged, []byte(strings.Replace(string(cp), fmt.Sprintf("\n%d\n", rep.Size), fmt.Sprintf("\n%d\n", rep.Size-1), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, otherKey := newTestLogKey(t)
	for name, args := range map[string][]string{
		"forged checkpoint": append(slices.Clone(auditArgs), "--checkpoint", forged),
		"another log's key": append(slices.Clone(auditArgs[:6]), otherKey, "--influx-url", st.InfluxURL, "--influx-db", st.InfluxDatabase),
	} {
		if out, err := runCmd(t, args...); err == nil || foundDiscrepancies(err) {
			t.Errorf("tapproof audit with a %s: %v, want an error, not a report\n%s", name, err, out)
		}
	}
}

// foundDiscrepancies reports whether err is the exit status of an audit
// that found discrepancies.
func foundDiscrepancies(err error) bool {
	var ec exitCode
	return errors.As(err, &ec) && ec == exitWrong
}

// influxRow is one row of an InfluxQL answer.
type influxRow struct {
	tags map[string]string
	cols map[string]json.RawMessage
}

func (r influxRow) raw(col string) string { return string(r.cols[col]) }

func (r influxRow) int(t *testing.T, col string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(r.raw(col), 10, 64)
	if err != nil {
		t.Fatalf("column %s = %q: %v", col, r.raw(col), err)
	}
	return n
}

func (r influxRow) float(t *testing.T, col string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(r.raw(col), 64)
	if err != nil {
		t.Fatalf("column %s = %q: %v", col, r.raw(col), err)
	}
	return v
}

// tagList is the row's tags in line protocol, empty ones left out.
func (r influxRow) tagList() string {
	var kv []string
	for k, v := range r.tags {
		if v != "" {
			kv = append(kv, k+"="+v)
		}
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

// influxRows runs a SELECT on the stack's InfluxDB, times in nanoseconds.
func influxRows(t *testing.T, st *localstack.Stack, q string) []influxRow {
	t.Helper()
	var res struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Tags    map[string]string   `json:"tags"`
				Columns []string            `json:"columns"`
				Values  [][]json.RawMessage `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	code, b := get(t, st.InfluxURL+"/query?"+url.Values{"db": {st.InfluxDatabase}, "q": {q}, "epoch": {"ns"}}.Encode())
	if err := json.Unmarshal(b, &res); code != http.StatusOK || err != nil || len(res.Results) != 1 || res.Results[0].Error != "" {
		t.Fatalf("influx %q: %d %s", q, code, b)
	}
	var out []influxRow
	for _, s := range res.Results[0].Series {
		for _, vs := range s.Values {
			r := influxRow{tags: s.Tags, cols: map[string]json.RawMessage{}}
			for i, c := range s.Columns {
				r.cols[c] = vs[i]
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatalf("influx %q: no rows", q)
	}
	return out
}

// influxQL runs a statement that changes InfluxDB, as someone with write
// access to it would.
func influxQL(t *testing.T, st *localstack.Stack, q string) {
	t.Helper()
	resp, err := http.PostForm(st.InfluxURL+"/query", url.Values{"db": {st.InfluxDatabase}, "q": {q}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || len(res.Results) != 1 || res.Results[0].Error != "" {
		t.Fatalf("influx %q: %s %+v %v", q, resp.Status, res, err)
	}
}

// influxWrite writes a point in line protocol, nanosecond times.
func influxWrite(t *testing.T, st *localstack.Stack, line string) {
	t.Helper()
	resp, err := http.Post(st.InfluxURL+"/write?"+url.Values{"db": {st.InfluxDatabase}, "precision": {"ns"}}.Encode(), "text/plain", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("influx write %q: %s", line, resp.Status)
	}
}

// TestAuditFlags: the read-only InfluxDB credentials come from their own
// variable, not serve's, and an audit without the log's key does not start.
func TestAuditFlags(t *testing.T) {
	t.Setenv("TAPPROOF_INFLUX_TOKEN", "tapproof:writer")
	t.Setenv("TAPPROOF_AUDIT_INFLUX_TOKEN", "auditor:reader")
	t.Setenv("TAPPROOF_LOG_KEY", "")
	cmd := newAuditCmd()
	if err := bindEnv(cmd.Flags()); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("influx-token").Value.String(); got != "auditor:reader" {
		t.Errorf("--influx-token = %q, want $TAPPROOF_AUDIT_INFLUX_TOKEN's", got)
	}
	out, err := runCmd(t, "audit", "--utility", "flint", "--server", "http://127.0.0.1:1")
	if err == nil || foundDiscrepancies(err) || !strings.Contains(err.Error(), "--log-key") {
		t.Errorf("audit without --log-key: %v\n%s", err, out)
	}
}
