package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tapproof/tapproof"
)

// Client calls a tapproof server's HTTP API. Every command that reads a
// server, or administers one, goes through it, so that paths, limits and
// error messages are written once.
type Client struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:8480".
	BaseURL string
	// Token is the admin bearer token ($TAPPROOF_ADMIN_TOKEN); only the
	// admin calls send it.
	Token string
	// HTTP is the client requests go through; http.DefaultClient if nil.
	HTTP *http.Client
}

// Limits on what the client reads of a response, in bytes.
const (
	maxCheckpoint = 64 << 10
	maxProof      = 64 << 10
	maxLeafPage   = 1 << 30
	maxError      = 4 << 10
)

// Checkpoint returns the latest signed checkpoint of utility's log.
func (c *Client) Checkpoint(ctx context.Context, utility string) ([]byte, error) {
	return c.get(ctx, "/v1/logs/"+url.PathEscape(utility)+"/checkpoint", maxCheckpoint)
}

// ConsistencyProof returns the RFC 6962 consistency proof that the tree of
// utility's log of size to extends its tree of size from: the hashes, to
// be verified by the caller (proof.VerifyConsistency) against the roots of
// checkpoints it holds. An answer for other sizes than those asked is an
// error.
func (c *Client) ConsistencyProof(ctx context.Context, utility string, from, to uint64) ([][]byte, error) {
	path := fmt.Sprintf("/v1/logs/%s/proof/consistency?from=%d&to=%d", url.PathEscape(utility), from, to)
	b, err := c.get(ctx, path, maxProof)
	if err != nil {
		return nil, err
	}
	var p ConsistencyProof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("log %s consistency proof %d to %d: %w", utility, from, to, err)
	}
	if p.From != from || p.To != to {
		return nil, fmt.Errorf("log %s consistency proof %d to %d: the server answered for %d to %d", utility, from, to, p.From, p.To)
	}
	return p.Hashes, nil
}

// Leaves returns the leaves of utility's log from start on: at most count
// (and MaxLeaves), fewer past the end of the log.
func (c *Client) Leaves(ctx context.Context, utility string, start, count uint64) ([]tapproof.Leaf, error) {
	b, err := c.get(ctx, fmt.Sprintf("/v1/logs/%s/leaves?start=%d&count=%d", url.PathEscape(utility), start, min(count, MaxLeaves)), maxLeafPage)
	if err != nil {
		return nil, err
	}
	out, err := parseLeafLines(b)
	if err != nil {
		return nil, fmt.Errorf("log %s leaves from %d: %w", utility, start, err)
	}
	return out, nil
}

// Log returns utility's log as a source of leaves, for reading it back
// against a checkpoint (anchor.ReadBack).
func (c *Client) Log(utility string) *LogLeaves { return &LogLeaves{c: c, utility: utility} }

// LogLeaves serves the leaves of one log.
type LogLeaves struct {
	c       *Client
	utility string
}

// Leaves returns the log's leaves from start on, at most count.
func (l *LogLeaves) Leaves(ctx context.Context, start, count uint64) ([]tapproof.Leaf, error) {
	return l.c.Leaves(ctx, l.utility, start, count)
}

// Enroll enrolls a device: envelope is its self-signed enrollment. An
// admin call.
func (c *Client) Enroll(ctx context.Context, envelope []byte) error {
	_, err := c.admin(ctx, "/v1/admin/devices", envelope)
	return err
}

// Revoke revokes device id for reason, which the log records publicly. An
// admin call.
func (c *Client) Revoke(ctx context.Context, id, reason string) error {
	body, err := json.Marshal(RevokeRequest{Reason: reason})
	if err != nil {
		return err
	}
	_, err = c.admin(ctx, "/v1/admin/devices/"+url.PathEscape(id)+"/revoke", body)
	return err
}

// HouseholdCode returns the household code of sample sampleID of lab for
// utility: what the household types to subscribe to its own result. An
// admin call.
func (c *Client) HouseholdCode(ctx context.Context, utility, lab, sampleID string) (HouseholdCode, error) {
	body, err := json.Marshal(HouseholdCodeRequest{Utility: utility, Lab: lab, SampleID: sampleID})
	if err != nil {
		return HouseholdCode{}, err
	}
	b, err := c.admin(ctx, "/v1/admin/household-codes", body)
	if err != nil {
		return HouseholdCode{}, err
	}
	var hc HouseholdCode
	if err := json.Unmarshal(b, &hc); err != nil || hc.Code == "" {
		return HouseholdCode{}, fmt.Errorf("household code: the server's answer is not one")
	}
	return hc, nil
}

func (c *Client) admin(ctx context.Context, path string, body []byte) ([]byte, error) {
	if c.Token == "" {
		return nil, fmt.Errorf("POST %s: no admin token (TAPPROOF_ADMIN_TOKEN is not set)", path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, maxError)
}

func (c *Client) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, limit)
}

func (c *Client) url(path string) string { return strings.TrimSuffix(c.BaseURL, "/") + path }

// do sends req and returns the body of a 2xx answer of at most limit
// bytes; any other answer is an error with the server's message.
func (c *Client) do(req *http.Request, limit int64) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s %s: more than %d bytes", req.Method, req.URL.Path, limit)
	}
	return b, nil
}
