package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tapproof/tapproof/httpapi"
)

// TestClient: the client against the real handler: the reads, and the
// admin calls with and without the token.
func TestClient(t *testing.T) {
	devs := &fakeDevices{}
	s := server(t, devs, "s3cret", io.Discard)
	c := &httpapi.Client{BaseURL: s.URL + "/"}
	if cp, err := c.Checkpoint(t.Context(), "u1"); err != nil || !strings.HasPrefix(string(cp), "o/u1\n3\n") {
		t.Errorf("Checkpoint = %q, %v", cp, err)
	}
	if _, err := c.Checkpoint(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Checkpoint of a log that does not exist = %v, want a 404", err)
	}
	if p, err := c.ConsistencyProof(t.Context(), "u1", 1, 3); err != nil || len(p) != 1 || string(p[0]) != "\x01\x02" {
		t.Errorf("ConsistencyProof(1, 3) = %x, %v; want the one hash the server gives", p, err)
	}
	if _, err := c.ConsistencyProof(t.Context(), "u1", 3, 1); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("ConsistencyProof(3, 1) = %v, want the server's refusal", err)
	}
	ls, err := c.Log("u1").Leaves(t.Context(), 1, 10)
	if err != nil || len(ls) != 2 || ls[0].Index != 1 || string(ls[1].Bytes) != "leaf 2" {
		t.Errorf("Leaves from 1 = %+v, %v; want leaves 1 and 2", ls, err)
	}

	if err := c.Enroll(t.Context(), []byte(`{}`)); err == nil || devs.enrolled != 0 {
		t.Errorf("Enroll without a token = %v (enrolled %d), want an error before any request", err, devs.enrolled)
	}
	c.Token = "wrong"
	if err := c.Revoke(t.Context(), "d1", "stolen"); err == nil || !strings.Contains(err.Error(), "401") || devs.revoked != 0 {
		t.Errorf("Revoke with a wrong token = %v (revoked %d), want a 401", err, devs.revoked)
	}
	c.Token = "s3cret"
	if err := c.Enroll(t.Context(), []byte(`{}`)); err != nil || devs.enrolled != 1 {
		t.Errorf("Enroll = %v (enrolled %d)", err, devs.enrolled)
	}
	if err := c.Revoke(t.Context(), "d1", "stolen"); err != nil || devs.revoked != 1 {
		t.Errorf("Revoke = %v (revoked %d)", err, devs.revoked)
	}
	if err := c.Revoke(t.Context(), "d1", ""); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("Revoke without a reason = %v, want the server's refusal", err)
	}
}

// TestClientConsistencyProofOfOtherSizes: a proof the server gives for
// sizes other than those asked is refused, not handed on as the one asked.
func TestClientConsistencyProofOfOtherSizes(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"from":2,"to":3,"hashes":["AQI="]}`)
	}))
	defer s.Close()
	c := &httpapi.Client{BaseURL: s.URL}
	if p, err := c.ConsistencyProof(t.Context(), "u1", 1, 3); err == nil || !strings.Contains(err.Error(), "answered for 2 to 3") {
		t.Errorf("ConsistencyProof(1, 3) answered for 2 to 3 = %x, %v; want an error", p, err)
	}
}
