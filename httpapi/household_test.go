package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/httpapi"
)

// fakeHouseholds issues a code that names its sample, refusing ids that
// are not ones.
type fakeHouseholds struct{}

func (fakeHouseholds) Code(utility, lab, sampleID string) (string, error) {
	if !tapproof.ValidID(utility) || !tapproof.ValidSampleKey(tapproof.LabSampleKey(lab, sampleID)) {
		return "", tapproof.Reject(tapproof.ReasonInvalid, "not ids")
	}
	return "K7QD-" + strings.ToUpper(sampleID), nil
}

// mixedAlerts has, newest first, a home's own lab result and a screening
// alert at the same site, both open.
type mixedAlerts struct{}

func (mixedAlerts) all() []tapproof.Alert {
	return []tapproof.Alert{
		{ID: tapproof.IndividualAlertID("u1", "acme-labs", 41), Class: tapproof.IndividualCompliance, Utility: "u1", Site: "s1", Sample: "acme-labs/L1"},
		{ID: "screening-d1-7", Class: tapproof.Screening, Utility: "u1", Site: "s1"},
	}
}
func (m mixedAlerts) Recent(context.Context, int) ([]tapproof.Alert, error) { return m.all(), nil }
func (m mixedAlerts) OpenAlerts(context.Context, string, string) ([]tapproof.Alert, error) {
	return m.all(), nil
}

func householdServer(t *testing.T, h httpapi.Households, logOut io.Writer) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(httpapi.Handler(httpapi.Config{
		Logs: fakeLogs{}, Devices: &fakeDevices{}, Alerts: mixedAlerts{}, Gatherer: prometheus.NewRegistry(),
		AdminToken: "s3cret", Households: h, Log: slog.New(slog.NewTextHandler(logOut, nil)),
	}))
	t.Cleanup(s.Close)
	return s
}

// TestHouseholdCodeAdminOnly: the household code of a sample is issued
// to the admin token only, through the client the CLI uses, with no-store
// and without the code in the server's log.
func TestHouseholdCodeAdminOnly(t *testing.T) {
	var logs bytes.Buffer
	s := householdServer(t, fakeHouseholds{}, &logs)
	const good = `{"utility":"u1","lab":"acme-labs","sample_id":"L2026-00123"}`
	for _, tc := range []struct {
		auth, body string
		want       int
	}{
		{"", good, 401},
		{"Bearer wrong", good, 401},
		{"Bearer s3cret", good, 200},
		{"Bearer s3cret", `{"utility":"u1","lab":"acme-labs","sample_id":"L1/2"}`, 400},
		{"Bearer s3cret", `{"utility":"u1","sample":"acme-labs/L1"}`, 400},
	} {
		req, _ := http.NewRequest("POST", s.URL+"/v1/admin/household-codes", strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST household-codes %s with %q = %d %s, want %d", tc.body, tc.auth, resp.StatusCode, b, tc.want)
		}
		if tc.want != 200 && strings.Contains(string(b), "K7QD") {
			t.Errorf("refused request got a code: %s", b)
		}
		if tc.want == 200 && resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", resp.Header.Get("Cache-Control"))
		}
	}
	if resp, err := http.Get(s.URL + "/v1/admin/household-codes?utility=u1&lab=acme-labs&sample_id=L1"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET household-codes = %d, want 405", resp.StatusCode)
		}
	}

	c := &httpapi.Client{BaseURL: s.URL, Token: "s3cret"}
	hc, err := c.HouseholdCode(t.Context(), "u1", "acme-labs", "L2026-00123")
	if err != nil || hc.Code != "K7QD-L2026-00123" || hc.Sample != "acme-labs/L2026-00123" || hc.Utility != "u1" {
		t.Errorf("Client.HouseholdCode = %+v, %v", hc, err)
	}
	if _, err := (&httpapi.Client{BaseURL: s.URL, Token: "wrong"}).HouseholdCode(t.Context(), "u1", "acme-labs", "L1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Client.HouseholdCode with a wrong token = %v, want 401", err)
	}
	if strings.Contains(logs.String(), "K7QD") {
		t.Errorf("the code appears in the server's log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "household code issued") {
		t.Errorf("issuing a code is not logged:\n%s", logs.String())
	}

	// Without HouseholdCodes there is no such endpoint.
	off := householdServer(t, nil, io.Discard)
	req, _ := http.NewRequest("POST", off.URL+"/v1/admin/household-codes", strings.NewReader(good))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("POST household-codes without households = %d, want 404", resp.StatusCode)
	}
}

// TestAlertsListNoPrivateResult: GET /v1/alerts, the newest messages and
// the open alerts alike, never lists a home's own lab result.
func TestAlertsListNoPrivateResult(t *testing.T) {
	s := householdServer(t, fakeHouseholds{}, io.Discard)
	for _, q := range []string{"", "?state=open", "?state=open&utility=u1&site=s1"} {
		resp, err := http.Get(s.URL + "/v1/alerts" + q)
		if err != nil {
			t.Fatal(err)
		}
		var as []tapproof.Alert
		err = json.NewDecoder(resp.Body).Decode(&as)
		resp.Body.Close()
		if err != nil || len(as) != 1 || as[0].ID != "screening-d1-7" {
			t.Errorf("GET /v1/alerts%s = %+v, %v; want the screening alert only", q, as, err)
		}
	}
}
