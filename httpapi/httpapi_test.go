package httpapi_test

import (
	"bytes"
	"context"
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

type fakeLogs struct{}

func (fakeLogs) Logs(context.Context) ([]httpapi.LogSummary, error) {
	return []httpapi.LogSummary{{Utility: "u1", Origin: "o/u1", Size: 3}}, nil
}
func (fakeLogs) LatestCheckpoint(_ context.Context, u string) ([]byte, error) {
	if u != "u1" {
		return nil, tapproof.ErrNotFound
	}
	return []byte("o/u1\n3\nAAAA\n\n— sig\n"), nil
}
func (fakeLogs) Checkpoint(_ context.Context, u string, size uint64) ([]byte, error) {
	return nil, fmt.Errorf("checkpoint %d: %w", size, tapproof.ErrNotFound)
}
func (fakeLogs) ConsistencyProof(context.Context, string, uint64, uint64) ([][]byte, error) {
	return [][]byte{{1, 2}}, nil
}
func (fakeLogs) Leaves(_ context.Context, u string, start, count uint64) ([][]byte, error) {
	if u != "u1" {
		return nil, tapproof.ErrNotFound
	}
	var out [][]byte
	for i := start; i < min(start+count, 3); i++ {
		out = append(out, fmt.Appendf(nil, "leaf %d", i))
	}
	return out, nil
}
func (fakeLogs) Bundle(_ context.Context, device string, seq uint64) (any, error) {
	if seq == 9 {
		return nil, tapproof.ErrNotYetAnchored
	}
	if seq == 13 {
		return nil, fmt.Errorf("trillian at 127.0.0.1:8090 unreachable")
	}
	if seq == 14 {
		return nil, fmt.Errorf("checkpoints: %w", context.DeadlineExceeded)
	}
	return map[string]string{"leaf": "x"}, nil
}

func (fakeLogs) LeafBundle(_ context.Context, u string, index uint64) (any, error) {
	switch {
	case u != "u1":
		return nil, fmt.Errorf("log of %s: %w", u, tapproof.ErrNotFound)
	case index >= 3:
		return nil, fmt.Errorf("bundle of entry %d: %w", index, tapproof.ErrNotYetAnchored)
	}
	return map[string]string{"leaf": fmt.Sprintf("leaf %d", index)}, nil
}

type fakeDevices struct{ enrolled, revoked int }

func (f *fakeDevices) Revoke(_ context.Context, id, reason string) (tapproof.Device, error) {
	if id != "d1" {
		return tapproof.Device{}, tapproof.ErrNotFound
	}
	if reason == "" {
		return tapproof.Device{}, tapproof.Reject(tapproof.ReasonInvalid, "a reason is required")
	}
	f.revoked++
	return tapproof.Device{ID: "d1", Status: tapproof.DeviceDisabled}, nil
}

func (*fakeDevices) Devices() []tapproof.Device { return nil }
func (f *fakeDevices) Enroll(_ context.Context, env []byte) (tapproof.Device, error) {
	f.enrolled++
	return tapproof.Device{ID: "d1"}, nil
}

type fakeAlerts struct{}

func (fakeAlerts) Recent(context.Context, int) ([]tapproof.Alert, error) { return nil, nil }

// OpenAlerts returns one alert naming the utility and site it was asked for.
func (fakeAlerts) OpenAlerts(_ context.Context, utility, site string) ([]tapproof.Alert, error) {
	return []tapproof.Alert{{ID: "open-" + utility + "-" + site}}, nil
}

func server(t *testing.T, devs *fakeDevices, token string, logOut io.Writer) *httptest.Server {
	h := httpapi.Handler(httpapi.Config{
		Logs: fakeLogs{}, Devices: devs, Alerts: fakeAlerts{}, Gatherer: prometheus.NewRegistry(),
		AdminToken: token, Log: slog.New(slog.NewTextHandler(logOut, nil)),
	})
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestRoutes(t *testing.T) {
	var logs bytes.Buffer
	s := server(t, &fakeDevices{}, "s3cret", &logs)
	tests := []struct {
		method, path string
		want         int
		body         string // substring
	}{
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/readyz", 200, "ready"},
		{"GET", "/v1/logs", 200, `"origin": "o/u1"`},
		{"GET", "/v1/logs/u1/checkpoint", 200, "o/u1\n3\n"},
		{"GET", "/v1/logs/nope/checkpoint", 404, "not found"},
		{"GET", "/v1/logs/u1/checkpoints/2", 404, "not found"},
		{"GET", "/v1/logs/u1/checkpoints/x", 400, "whole number"},
		{"GET", "/v1/logs/u1/proof/consistency?from=1&to=3", 200, `"hashes"`},
		{"GET", "/v1/logs/u1/proof/consistency?from=4&to=3", 400, "from <= to"},
		{"GET", "/v1/logs/u1/leaves", 400, "start"},
		{"GET", "/v1/logs/u1/leaves?start=0&count=1001", 400, "count must be 1 to 1000"},
		{"GET", "/v1/logs/nope/leaves?start=0", 404, "not found"},
		{"GET", "/v1/readings/d1/1/bundle", 200, `"leaf"`},
		{"GET", "/v1/readings/d1/9/bundle", 404, "not yet covered"},
		{"GET", "/v1/readings/d1/13/bundle", 500, "internal error"},
		{"GET", "/v1/readings/d1/14/bundle", 503, "temporarily unavailable"},
		{"GET", "/v1/readings/D!/1/bundle", 400, ""},
		{"GET", "/v1/logs/u1/leaves/2/bundle", 200, `"leaf": "leaf 2"`},
		{"GET", "/v1/logs/u1/leaves/3/bundle", 404, "not yet covered"},
		{"GET", "/v1/logs/nope/leaves/0/bundle", 404, "not found"},
		{"GET", "/v1/logs/NOPE!/leaves/0/bundle", 404, "not found"},
		{"GET", "/v1/logs/u1/leaves/x/bundle", 400, "leaf index"},
		{"GET", "/v1/logs/u1/leaves/-1/bundle", 400, "leaf index"},
		{"GET", "/v1/alerts", 200, "[]"},
		{"GET", "/v1/alerts?state=open", 200, `"id": "open--"`},
		{"GET", "/v1/alerts?state=open&utility=u1&site=s1", 200, `"id": "open-u1-s1"`},
		{"GET", "/v1/alerts?state=open&site=s1", 400, "needs its utility"},
		{"GET", "/v1/alerts?state=open&utility=U*", 400, "must be ids"},
		{"GET", "/v1/alerts?state=closed", 400, "state must be open"},
		{"POST", "/v1/logs", 405, ""},
		{"DELETE", "/v1/logs/u1/checkpoint", 405, ""},
		{"GET", "/metrics", 200, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, s.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.Contains(string(b), tt.body) || strings.Contains(string(b), "unreachable") {
			t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, b, tt.want, tt.body)
		}
	}
	// An internal error is logged for the operator, never shown to the public.
	if !strings.Contains(logs.String(), "unreachable") {
		t.Errorf("internal error not logged: %s", logs.String())
	}
}

// TestLeaves checks whole bodies: the leaves asked for, as many as asked,
// each with its own index, and nothing past the log's end.
func TestLeaves(t *testing.T) {
	s := server(t, &fakeDevices{}, "s3cret", io.Discard)
	for query, want := range map[string]string{
		"start=1":         `{"index":1,"leaf":"bGVhZiAx"}` + "\n" + `{"index":2,"leaf":"bGVhZiAy"}` + "\n",
		"start=0&count=1": `{"index":0,"leaf":"bGVhZiAw"}` + "\n",
		"start=1&count=1": `{"index":1,"leaf":"bGVhZiAx"}` + "\n",
		"start=5":         "",
	} {
		resp, err := http.Get(s.URL + "/v1/logs/u1/leaves?" + query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want || resp.Header.Get("Content-Type") != "application/jsonl" {
			t.Errorf("GET leaves?%s = %d %s %q, want 200 application/jsonl %q", query, resp.StatusCode, resp.Header.Get("Content-Type"), b, want)
		}
	}
}

func TestAdminNeedsToken(t *testing.T) {
	var logs bytes.Buffer
	devs := &fakeDevices{}
	s := server(t, devs, "s3cret", &logs)
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"s3cret", 401}, {"Bearer s3cret", 201}} {
		req, _ := http.NewRequest("POST", s.URL+"/v1/admin/devices", strings.NewReader("{}"))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST /v1/admin/devices with %q = %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
	if devs.enrolled != 1 {
		t.Errorf("enrolled %d times, want 1 (only with the right token)", devs.enrolled)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("admin token appears in logs: %s", logs.String())
	}
	// Revocation is an admin action too.
	for _, tc := range []struct {
		auth, path, body string
		want             int
	}{
		{"", "/v1/admin/devices/d1/revoke", `{"reason":"stolen"}`, 401},
		{"Bearer wrong", "/v1/admin/devices/d1/revoke", `{"reason":"stolen"}`, 401},
		{"Bearer s3cret", "/v1/admin/devices/d1/revoke", `{"reason":"stolen"}`, 200},
		{"Bearer s3cret", "/v1/admin/devices/d1/revoke", `{"reason":""}`, 400},
		{"Bearer s3cret", "/v1/admin/devices/d1/revoke", `{"why":"stolen"}`, 400},
		{"Bearer s3cret", "/v1/admin/devices/nope/revoke", `{"reason":"stolen"}`, 404},
	} {
		req, _ := http.NewRequest("POST", s.URL+tc.path, strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST %s %s with %q = %d, want %d", tc.path, tc.body, tc.auth, resp.StatusCode, tc.want)
		}
	}
	if devs.revoked != 1 {
		t.Errorf("revoked %d times, want 1", devs.revoked)
	}
	if resp, err := http.Get(s.URL + "/v1/admin/devices/d1/revoke"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET revoke = %d, want 405: public endpoints are read-only, admin ones POST", resp.StatusCode)
		}
	}
	// Without a configured token the admin API is off.
	off := server(t, devs, "", &logs)
	req, _ := http.NewRequest("POST", off.URL+"/v1/admin/devices", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin with no token configured = %d, want 403", resp.StatusCode)
	}
}
