package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

type fakeCompliance struct{}

func (fakeCompliance) Report(_ context.Context, utility, period, analyte string) (any, error) {
	switch {
	case utility == "nolog":
		return nil, fmt.Errorf("log %q: %w", utility, tapproof.ErrNotFound)
	case period == "bad":
		return nil, tapproof.Reject(tapproof.ReasonInvalid, "monitoring period %q", period)
	case analyte == "broken":
		return nil, errors.New("leaf 7: secret internals")
	}
	return map[string]string{"utility": utility, "period": period, "analyte": analyte}, nil
}

func (fakeCompliance) Leaves(_ context.Context, utility string, w io.Writer) error {
	switch utility {
	case "nolog":
		return fmt.Errorf("log %q: %w", utility, tapproof.ErrNotFound)
	case "empty":
		return nil
	case "cut":
		fmt.Fprintln(w, `{"index":1,"leaf":"AQ=="}`)
		return errors.New("journal went away")
	}
	fmt.Fprintln(w, `{"index":1,"leaf":"AQ=="}`)
	fmt.Fprintln(w, `{"index":4,"leaf":"Ag=="}`)
	return nil
}

func complianceServer(t *testing.T, c httpapi.Compliance) *httptest.Server {
	h := httpapi.Handler(httpapi.Config{
		Logs: fakeLogs{}, Devices: &fakeDevices{}, Alerts: fakeAlerts{}, Compliance: c,
		Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestComplianceRoutes(t *testing.T) {
	s := complianceServer(t, fakeCompliance{})
	tests := []struct {
		path        string
		want        int
		body        string // substring
		contentType string
	}{
		{"/v1/compliance/u1/2026H2?analyte=lead", 200, `"analyte": "lead"`, "application/json"},
		{"/v1/compliance/u1/2026H2", 200, `"period": "2026H2"`, "application/json"},
		{"/v1/compliance/u1/bad", 400, "monitoring period", "application/json"},
		{"/v1/compliance/nolog/2026H2", 404, "not found", "application/json"},
		{"/v1/compliance/U!/2026H2", 404, "not found", "application/json"},
		{"/v1/compliance/u1/2026H2?analyte=broken", 500, "internal error", "application/json"},
		{"/v1/compliance/u1/leaves", 200, "{\"index\":1,\"leaf\":\"AQ==\"}\n{\"index\":4,\"leaf\":\"Ag==\"}\n", "application/jsonl"},
		{"/v1/compliance/empty/leaves", 200, "", "application/jsonl"},
		{"/v1/compliance/nolog/leaves", 404, "not found", "application/json"},
	}
	for _, tt := range tests {
		resp, err := http.Get(s.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.Contains(string(b), tt.body) || strings.Contains(string(b), "secret") ||
			resp.Header.Get("Content-Type") != tt.contentType {
			t.Errorf("GET %s = %d %s %q, want %d %s containing %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.want, tt.contentType, tt.body)
		}
	}
}

// TestComplianceLeavesCutShort: a list of leaves that fails part way must
// fail for the client, never look complete with fewer leaves.
func TestComplianceLeavesCutShort(t *testing.T) {
	s := complianceServer(t, fakeCompliance{})
	resp, err := http.Get(s.URL + "/v1/compliance/cut/leaves")
	if err != nil {
		return // aborted before the headers: also a failure the client sees
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("reading a cut-short list of leaves succeeded; want an error")
	}
}

func TestComplianceNotConfigured(t *testing.T) {
	s := complianceServer(t, nil)
	for _, path := range []string{"/v1/compliance/u1/2026H2", "/v1/compliance/u1/leaves"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !bytes.Contains(b, []byte("not found")) {
			t.Errorf("GET %s without compliance = %d %q, want 404", path, resp.StatusCode, b)
		}
	}
}
